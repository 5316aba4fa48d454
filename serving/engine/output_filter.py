"""The gateway's output filter: personal data in a completion is masked, or the completion withheld. No Django here.

`OutputFilter(detect, originals, mode)` runs the redaction detector over a completion
(`detect(texts)`, e.g. `training.engine.pii.detector.PiiDetector(config).detect`, which returns per
text the detections with `.type .start .end`) and looks up the run's keyed index of original values
(`training.engine.pii.value_index.ValueIndex`: HMAC digests of what redaction removed from the
training data). In "mask" mode each span becomes `[TYPE]`; in "withhold" mode a completion with
anything found is replaced by `WITHHELD_MESSAGE`. A hit on the index is always reported
(`original_hits`), and masked even where the detector missed it (a name in lower case): it is the
one thing the adapter must never emit, since it can only have come from the training data.

The index gives digests, not places: the filter finds where a hit is by walking the same candidate
spans the index is queried with (`candidate_values`: word n-grams, digit runs, email-like tokens),
with their offsets. If a hit cannot be placed (which the tests say does not happen), mask mode fails
closed and withholds the completion.

An oracle to be aware of: a consumer who gets the model to repeat a guessed value ("repeat after me:
jane doe") would learn from the mask whether the value was in the training data. Pass the request's
`prompt`: an indexed value that the prompt itself contains is then not masked beyond what the
detector masks (the answer is the same whether or not the value is indexed), and is counted in
`echoed_original_hits` instead of `original_hits`, so the probe is still visible to monitoring.

`StreamingOutputFilter` does the same for a stream: see its docstring for the trade-off.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

# The patterns `candidate_values` uses, so that every value the index finds is also placed here.
from training.engine.pii.value_index import _DIGIT_RUN, _EMAIL, ValueIndex, normalise_value

MASK, WITHHOLD = "mask", "withhold"
MODES = (MASK, WITHHOLD)
WITHHELD_MESSAGE = "This response was withheld by the privacy filter because it contained personal data."
# The label of a span masked only because it is an indexed original value (the detector saw nothing there).
UNDETECTED_PERSONAL_DATA = "PERSONAL_DATA"
MAX_WORDS = 6  # as candidate_values' default
_EDGE = re.compile(r"[\W_]")


class Finding(NamedTuple):
    type: str
    start: int
    end: int


@dataclass(frozen=True)
class FilteredText:
    text: str  # what may leave: masked, WITHHELD_MESSAGE, or the completion unchanged
    findings: list[Finding]  # the spans found, with offsets in the unfiltered completion
    original_hits: int  # distinct indexed original values in the completion (not counting echoed ones)
    withheld: bool
    echoed_original_hits: int = 0  # indexed values that the request's prompt contained (a probe, not a leak)
    notes: tuple[str, ...] = field(default=())

    @property
    def flagged(self) -> bool:
        return bool(self.findings or self.original_hits)

    def counts_by_type(self) -> dict[str, int]:
        return dict(Counter(f.type for f in self.findings))


def _as_finding(detection) -> Finding:
    if isinstance(detection, tuple) and len(detection) == 3 and isinstance(detection[0], str):
        return Finding(*detection)
    return Finding(str(detection.type), int(detection.start), int(detection.end))


def _trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """The span without the punctuation around it, as `normalise_value` strips it."""
    while start < end and _EDGE.match(text[start]):
        start += 1
    while end > start and _EDGE.match(text[end - 1]):
        end -= 1
    return start, end


def candidate_spans(text: str, max_words: int = MAX_WORDS) -> list[tuple[int, int]]:
    """Every span of `text` that `candidate_values` would look up in the index, with its offsets."""
    words = [(m.start(), m.end()) for m in re.finditer(r"\S+", text)]
    spans = {_trimmed(text, words[i][0], words[i + n - 1][1])
             for n in range(1, max_words + 1) for i in range(len(words) - n + 1)}
    spans |= {(m.start(), m.end()) for m in _DIGIT_RUN.finditer(text)}
    spans |= {(m.start(), m.end()) for m in _EMAIL.finditer(text)}
    return sorted(s for s in spans if s[0] < s[1])


def original_value_spans(text: str, originals: ValueIndex) -> tuple[list[tuple[int, int]], set[str], int]:
    """(spans of indexed values in `text`, their normalised values, how many index hits there are)."""
    located = [(s, e) for s, e in candidate_spans(text) if text[s:e] in originals]
    values = {normalise_value(text[s:e]) for s, e in located}
    return located, values, len(originals.found(text))


def _merge(findings: list[Finding]) -> list[Finding]:
    """Overlapping spans become one, named after its widest detector finding."""
    merged: list[Finding] = []
    for finding in sorted(findings, key=lambda f: (f.start, -(f.end - f.start))):
        if merged and finding.start < merged[-1].end:
            last = merged[-1]
            kind = last.type if last.type != UNDETECTED_PERSONAL_DATA else finding.type
            merged[-1] = Finding(kind, last.start, max(last.end, finding.end))
        else:
            merged.append(finding)
    return merged


def _mask(text: str, findings: list[Finding]) -> str:
    out, position = [], 0
    for finding in findings:
        out.append(text[position:finding.start])
        out.append(f"[{finding.type}]")
        position = finding.end
    out.append(text[position:])
    return "".join(out)


class OutputFilter:
    def __init__(self, detect: Callable[[list[str]], list[list]], originals: ValueIndex | None = None, mode: str = MASK):
        if mode not in MODES:
            raise ValueError(f"The output filter's mode is {MODES[0]!r} or {MODES[1]!r}, not {mode!r}.")
        self.detect = detect
        self.originals = originals
        self.mode = mode

    def findings(self, text: str, prompt: str | None = None) -> tuple[list[Finding], set[str], set[str], bool]:
        """(merged findings, leaked original values, echoed original values, every hit placed)."""
        found = [_as_finding(d) for d in (self.detect([text])[0] if text else [])]
        leaked: set[str] = set()
        echoed: set[str] = set()
        placed = True
        if self.originals is not None and text:
            spans, values, hits = original_value_spans(text, self.originals)
            placed = len(values) >= hits
            prompt_values = {normalise_value(prompt[s:e]) for s, e in candidate_spans(prompt)} if prompt else set()
            for start, end in spans:
                value = normalise_value(text[start:end])
                if value in prompt_values:
                    echoed.add(value)
                else:
                    leaked.add(value)
                    found.append(Finding(UNDETECTED_PERSONAL_DATA, start, end))
        return _merge(found), leaked, echoed, placed

    def filter(self, text: str, prompt: str | None = None) -> FilteredText:
        """The completion as it may leave (see the module docstring; `prompt`: the request's own text)."""
        findings, leaked, echoed, placed = self.findings(text, prompt)
        notes = () if placed else ("An indexed original value could not be placed in the text; it was withheld.",)
        withhold = (self.mode == WITHHOLD and (findings or leaked)) or not placed
        return FilteredText(text=WITHHELD_MESSAGE if withhold else _mask(text, findings), findings=findings,
                            original_hits=len(leaked), withheld=bool(withhold), echoed_original_hits=len(echoed), notes=notes)


_BOUNDARY = re.compile(r"[.!?…](?=\s)|\n")


class StreamingOutputFilter:
    """The output filter for a stream of pieces: `feed(piece)` returns the text that may leave now,
    `finish()` the rest, `result()` the whole `FilteredText` (its text: all that was released).

    Trade-off. A span is only safe to release once it is complete, and a piece can end in the middle
    of an email address or a name. The filter therefore holds text back and releases it a sentence
    or a line at a time: at the last boundary (".", "!", "?" or "…" followed by a space, or a line
    break) it filters the segment up to there and releases it masked. Each segment is filtered with
    the `context_chars` before it, so that "Dr. Smith" split after "Dr." is still seen as a name
    (a span that began in text already released is masked from the boundary on). The client sees
    text a sentence late instead of a token late, and a span that crosses a sentence boundary
    ("J. Smith") can be cut in two; the final `result()` filters the whole text again, so the review
    queue and the counts see what the non-streaming filter would have seen. In "withhold" mode
    nothing is released before `finish()`: withholding needs the whole answer, so the stream
    becomes a single piece.
    """

    def __init__(self, detect: Callable[[list[str]], list[list]], originals: ValueIndex | None = None, mode: str = MASK, *,
                 prompt: str | None = None, context_chars: int = 200):
        self.filter = OutputFilter(detect, originals=originals, mode=mode)
        self.prompt = prompt
        self.context_chars = context_chars
        self._raw = ""
        self._released_upto = 0  # offset in the raw text up to which segments have been released
        self._released: list[str] = []
        self._masked: list[tuple[int, int]] = []  # raw spans that were masked in the stream
        self._finished = False
        self._result: FilteredText | None = None

    @classmethod
    def wrapping(cls, output_filter: OutputFilter, **options) -> "StreamingOutputFilter":
        return cls(output_filter.detect, originals=output_filter.originals, mode=output_filter.mode, **options)

    def feed(self, piece: str) -> str:
        if self._finished:
            raise RuntimeError("The stream was already finished.")
        self._raw += piece or ""
        if self.filter.mode == WITHHOLD:
            return ""
        cut = None
        for match in _BOUNDARY.finditer(self._raw, self._released_upto):
            cut = match.end()
        return self._release(cut) if cut is not None else ""

    def finish(self) -> str:
        if self._finished:
            raise RuntimeError("The stream was already finished.")
        self._finished = True
        whole = self.filter.filter(self._raw, self.prompt)
        if self.filter.mode == WITHHOLD:
            rest = whole.text  # nothing was released before: the whole answer, or WITHHELD_MESSAGE
            self._released.append(rest)
        elif whole.withheld:  # mask mode failing closed: an indexed value could not be placed
            rest = WITHHELD_MESSAGE
            self._released.append(rest)
        else:
            rest = self._release(len(self._raw))
        self._result = FilteredText(text="".join(self._released), findings=whole.findings, original_hits=whole.original_hits,
                                    withheld=whole.withheld, echoed_original_hits=whole.echoed_original_hits, notes=whole.notes)
        return rest

    def result(self) -> FilteredText:
        if self._result is None:
            raise RuntimeError("Call finish() first: the result covers the whole stream.")
        return self._result

    def missed_in_stream(self) -> list[Finding]:
        """Spans the final pass found that the stream released unmasked (a span across a boundary)."""
        findings = self.result().findings if self._result else []
        return [f for f in findings if not any(s <= f.start and f.end <= e for s, e in self._masked)]

    def _release(self, end: int) -> str:
        start = self._released_upto
        if end <= start:
            return ""
        context_start = max(0, start - self.context_chars)
        window = self._raw[context_start:end]
        findings, _, _, placed = self.filter.findings(window, self.prompt)
        if not placed:  # fail closed, as the whole-text filter does
            findings = [Finding(UNDETECTED_PERSONAL_DATA, 0, len(window))]
        clipped = [Finding(f.type, max(f.start + context_start, start), f.end + context_start)
                   for f in findings if f.end + context_start > start]
        self._masked += [(f.start, f.end) for f in clipped]
        released = _mask(self._raw[start:end], [Finding(f.type, f.start - start, f.end - start) for f in clipped])
        self._released.append(released)
        self._released_upto = end
        return released
