"""Text generation for the gateway: a base model and its LoRA adapter, sampled with transformers. No Django here.

`Generator(base_dir, adapter_dir)` loads the base model and the adapter (PEFT format, merged into
the weights once: the same model, without LoRA's extra matrix products at every step) on CUDA when
there is one, else the CPU. It turns chat messages into a prompt (`chat_prompt`), and generates a
`Completion` at once (`generate`) or piece by piece (`stream`), optionally with the deployment's
watermark (`serving.engine.watermark`).

Sampling follows OpenAI's parameters: `temperature` (0 is greedy decoding), `top_p`, `stop`
strings (cut from the text, like OpenAI's), `max_new_tokens`; no top-k. It draws from the OS's
entropy unless the caller gives a `seed`: torch's default generator starts from the same fixed seed
in every process, so without a fresh seed two servers would answer the same prompt identically.

Sampling uses torch's process-wide random generator, and on a CPU one generation already uses
every core: generations in one process run one at a time (`_GENERATION_LOCK`), which is also what
makes a seeded request reproducible.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

MAX_NEW_TOKENS_LIMIT = 4096
MAX_STOP_SEQUENCES = 4  # as OpenAI's API
MAX_STOP_CHARS = 200
MAX_SEED = 2**63 - 1

# One generation at a time in a process: see the module docstring.
_GENERATION_LOCK = threading.Lock()


@dataclass(frozen=True)
class GenerationSettings:
    """What the caller asks of one generation. Invalid values raise ValueError with a sentence the
    client can act on (the model server answers it as a 400)."""

    max_new_tokens: int
    temperature: float = 1.0
    top_p: float = 1.0
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self):
        if isinstance(self.max_new_tokens, bool) or not isinstance(self.max_new_tokens, int):
            raise ValueError("max_tokens must be a whole number.")
        if not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS_LIMIT:
            raise ValueError(f"max_tokens must be between 1 and {MAX_NEW_TOKENS_LIMIT}; it is {self.max_new_tokens}.")
        for name, value, low, high in (("temperature", self.temperature, 0.0, 2.0), ("top_p", self.top_p, 0.0, 1.0)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(f"{name} must be a number.")
            if not low <= value <= high:
                raise ValueError(f"{name} must be between {low:g} and {high:g}; it is {value:g}.")
        if self.top_p == 0:
            raise ValueError("top_p must be above 0 (1 keeps the whole distribution; use temperature 0 for greedy decoding).")
        if isinstance(self.stop, str) or not isinstance(self.stop, tuple):
            raise ValueError("stop must be a tuple of strings.")
        if len(self.stop) > MAX_STOP_SEQUENCES:
            raise ValueError(f"stop may hold at most {MAX_STOP_SEQUENCES} sequences; it has {len(self.stop)}.")
        for sequence in self.stop:
            if not isinstance(sequence, str) or not sequence or len(sequence) > MAX_STOP_CHARS:
                raise ValueError(f"Each stop sequence must be a non-empty string of at most {MAX_STOP_CHARS} characters.")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed <= MAX_SEED):
            raise ValueError(f"seed must be a whole number between 0 and {MAX_SEED}.")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end of text or a stop sequence) or "length" (max_new_tokens reached)


def _fresh_seed() -> int:
    return int.from_bytes(os.urandom(8), "big") & MAX_SEED


def _longest_partial_stop(text: str, stops: tuple[str, ...]) -> int:
    """The length of the longest end of `text` that begins some stop sequence: text that may still
    turn into a stop sequence with the next piece, so it is held back."""
    longest = 0
    for stop in stops:
        for length in range(min(len(stop) - 1, len(text)), longest, -1):
            if text.endswith(stop[:length]):
                longest = length
                break
    return longest


def _first_stop(text: str, stops: tuple[str, ...], start: int = 0) -> int:
    """Where the earliest stop sequence begins in `text` (searching from `start`), or -1."""
    found = [i for i in (text.find(s, start) for s in stops) if i >= 0]
    return min(found) if found else -1


class CompletionStream:
    """The pieces of one generation, as the model produces them (iterate over it), then its
    `completion()`. The joined pieces are exactly `completion().text`: stop sequences are cut, and
    text that might begin one is held back until the next piece decides it.

    `cancel()` stops the generation at the next token (a client that went away)."""

    def __init__(self, start_generation, streamer, stops: tuple[str, ...], prompt_tokens: int, max_new_tokens: int):
        self._streamer = streamer
        self._stops = stops
        self._prompt_tokens = prompt_tokens
        self._max_new_tokens = max_new_tokens
        self.cancelled = threading.Event()
        self._result: dict = {}
        self._completion: Completion | None = None
        self._thread = threading.Thread(target=start_generation, args=(self,), name="generation", daemon=True)
        self._iterator = self._pieces()
        self._thread.start()

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        return next(self._iterator)

    def cancel(self) -> None:
        self.cancelled.set()

    def _pieces(self) -> Iterator[str]:
        received, released, stopped_at = "", 0, -1
        for piece in self._streamer:
            if not piece or stopped_at >= 0:
                continue  # after a stop sequence: drain what the model still emits, release nothing
            received += piece
            # A stop sequence can begin in the text held back from earlier pieces.
            stopped_at = _first_stop(received, self._stops, max(0, released - MAX_STOP_CHARS)) if self._stops else -1
            end = stopped_at if stopped_at >= 0 else len(received) - _longest_partial_stop(received, self._stops)
            if end > released:
                yield received[released:end]
                released = end
        self._thread.join()
        if "error" in self._result:
            raise self._result["error"]
        if stopped_at < 0 and len(received) > released:
            yield received[released:]
        text = received[:stopped_at] if stopped_at >= 0 else received
        new_tokens = self._result["new_tokens"]
        hit_length = new_tokens >= self._max_new_tokens and not self._result["ended"] and stopped_at < 0
        self._completion = Completion(text=text, prompt_tokens=self._prompt_tokens, completion_tokens=new_tokens,
                                      finish_reason="length" if hit_length else "stop")

    def completion(self) -> Completion:
        """The finished generation; raises RuntimeError if the stream has not been read to its end."""
        if self._completion is None:
            raise RuntimeError("The stream has not been read to its end yet.")
        return self._completion


class Generator:
    """A base model with its adapter, ready to generate. Load it once and keep it."""

    def __init__(self, base_dir: Path, adapter_dir: Path | None = None, device: str | None = None):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.tokenizer = AutoTokenizer.from_pretrained(base_dir)
        model = AutoModelForCausalLM.from_pretrained(base_dir)
        if adapter_dir is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
        self.model = model.to(self.device).eval()
        config = self.model.config
        self.context_length = (getattr(config, "max_position_embeddings", None) or getattr(config, "n_positions", None)
                               or self.tokenizer.model_max_length)
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(self.tokenizer.eos_token_id)
        self.eos_token_ids = sorted(eos_ids)
        self.pad_token_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else self.eos_token_ids[0]

    @property
    def model_config(self):
        """The model's config, as the watermark detector needs it (vocabulary size, BOS)."""
        return self.model.config

    def chat_prompt(self, messages: list[dict]) -> str:
        """The prompt for a chat: the tokenizer's chat template when it has one, else one
        "role: content" line per message and a last line "assistant:" for the model to continue."""
        if not isinstance(messages, list) or not messages:
            raise ValueError("messages must be a non-empty list of {\"role\", \"content\"} objects.")
        for i, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("system", "user", "assistant"):
                raise ValueError(f"messages[{i}] needs a role of system, user or assistant.")
            if not isinstance(message.get("content"), str):
                raise ValueError(f"messages[{i}].content must be a string.")
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(plain, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in plain) + "assistant:"

    def prompt_ids(self, prompt: str) -> list[int]:
        """The prompt's token ids. A prompt that already starts with the BOS text (a chat template's
        output) gets no second one; an empty prompt starts from BOS (or EOS): a model needs a token."""
        if not isinstance(prompt, str):
            raise ValueError("The prompt must be a string.")
        bos = self.tokenizer.bos_token
        ids = self.tokenizer(prompt, add_special_tokens=not (bos and prompt.startswith(bos)))["input_ids"]
        if not ids:
            first = self.tokenizer.bos_token_id if self.tokenizer.bos_token_id is not None else self.eos_token_ids[0]
            ids = [first]
        return ids

    def generate(self, prompt: str, settings: GenerationSettings, watermark=None) -> Completion:
        """Generate the whole completion (`watermark`: a `WatermarkKey`, or None for none)."""
        stream = self.stream(prompt, settings, watermark)
        for _ in stream:
            pass
        return stream.completion()

    def stream(self, prompt: str, settings: GenerationSettings, watermark=None) -> CompletionStream:
        """Start generating in a thread and return the stream of its text pieces; bad input (a
        prompt too long for the model's context) raises ValueError here, before anything starts."""
        import torch
        from transformers import GenerationConfig, StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        ids = self.prompt_ids(prompt)
        if len(ids) + settings.max_new_tokens > self.context_length:
            raise ValueError(f"The prompt has {len(ids)} tokens and max_tokens is {settings.max_new_tokens}: together "
                             f"more than this model's context of {self.context_length} tokens. Shorten the prompt or "
                             "lower max_tokens.")
        config = GenerationConfig(max_new_tokens=settings.max_new_tokens, do_sample=not settings.greedy,
                                  eos_token_id=self.eos_token_ids, pad_token_id=self.pad_token_id,
                                  **({} if settings.greedy else {"temperature": float(settings.temperature),
                                                                 "top_p": float(settings.top_p), "top_k": 0}))
        if watermark is not None:
            from serving.engine.watermark import watermarking_config

            config.watermarking_config = watermarking_config(watermark)
        # No timeout on the streamer's queue: the generation may wait for the lock behind another one,
        # and the thread always ends the stream (generate() does, or the except clause below).
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        prompt_length, tokenizer, stops = len(ids), self.tokenizer, settings.stop
        # A stop sequence that just appeared lies in the last few tokens: a byte-level token can hold
        # a single byte, so 4 tokens per character (UTF-8's longest) always cover it.
        tail_tokens = 4 * max(map(len, stops), default=0) + 4

        class _StopOrCancel(StoppingCriteria):
            """Stop when a stop sequence appears in the new text, or when the stream is cancelled.
            (The stream cuts the text at the sequence; this only ends the generation.)"""

            def __init__(self, stream: CompletionStream):
                self.stream = stream

            def __call__(self, input_ids, scores, **kwargs):
                done = self.stream.cancelled.is_set()
                if not done and stops:
                    tail = input_ids[0, max(prompt_length, input_ids.shape[1] - tail_tokens):]
                    done = _first_stop(tokenizer.decode(tail, skip_special_tokens=True), stops) >= 0
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        def run(stream: CompletionStream) -> None:
            try:
                with _GENERATION_LOCK, torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
                    torch.manual_seed(settings.seed if settings.seed is not None else _fresh_seed())
                    inputs = torch.tensor([ids], device=self.device)
                    with torch.no_grad():
                        output = self.model.generate(input_ids=inputs, attention_mask=torch.ones_like(inputs),
                                                     generation_config=config, streamer=streamer,
                                                     stopping_criteria=StoppingCriteriaList([_StopOrCancel(stream)]))
                new = output[0, prompt_length:].tolist()
                ended = next((i for i, token in enumerate(new) if token in self.eos_token_ids), None)
                stream._result.update(new_tokens=len(new) if ended is None else ended + 1, ended=ended is not None)
            except BaseException as error:  # noqa: BLE001 - handed to the reader, which raises it
                stream._result["error"] = error
                streamer.end()  # unblock the reader; generate() did not get to end the stream itself

        return CompletionStream(run, streamer, stops, prompt_length, settings.max_new_tokens)
