"""Training-data extraction: does the adapter reproduce what it was trained on? No Django here.

Two probes, both with greedy decoding, the setting under which memorised text comes out most
readily (Carlini et al. 2021, "Extracting Training Data from Large Language Models"; Carlini et
al. 2023, "Quantifying Memorization Across Neural Language Models", which defines a record as
extractable when a k-token prefix taken from it makes the model emit its true continuation):

- `canary_extraction`: prompt with a planted canary's prefix and see whether the secret comes out
  (Carlini et al. 2019, "The Secret Sharer": exposure measures the secret's rank; extraction is the
  stronger, practical failure in which the secret is simply generated).
- `verbatim_extraction`: prompt with the first `prefix_tokens` tokens of training records and
  compare what follows with the truth: exact reproduction, longest common substring, and 4-gram
  overlap, which also catch approximate memorisation (Ippolito et al. 2023, "Preventing Verbatim
  Memorization in Language Models Gives a False Sense of Privacy": exact-match filters miss
  near-verbatim copies).

A model reproduces some text of any familiar distribution (templates, boilerplate) without having
memorised any record. `extraction_against_holdout` therefore measures held-out records of the
same data too; only the gap between members and holdout is evidence of memorisation.

Reports hold numbers only: the secrets and the records are what the audit protects, so neither
they nor what the model generated ever enter a result.
"""

from __future__ import annotations

import random

METRICS = ("exact_match_rate", "lcs_mean", "lcs_max", "lcs_tokens_mean", "lcs_tokens_max", "ngram4_overlap_mean")


# --- Decoding --------------------------------------------------------------------------------------


def _pad_id(tokenizer) -> int:
    # GPT-2 and Llama tokenizers often have no pad token; the eos token is the usual stand-in.
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id


def prompt_ids(tokenizer, prompt: str) -> list[int]:
    """The prompt's token ids as training saw such text (special tokens included, e.g. Llama's BOS).
    An empty prompt starts from BOS (or eos, GPT-2's document separator): a model needs one token."""
    ids = tokenizer(prompt)["input_ids"]
    if not ids:
        ids = [tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id]
    return ids


def generate_ids(model, tokenizer, id_lists: list[list[int]], max_new_tokens: int, *, batch_size: int = 16,
                 device=None, seed: int | None = None, **generate_kwargs) -> list[list[int]]:
    """The newly generated token ids after each prompt, batched, cut at the first eos.

    Prompts are padded on the LEFT, with an attention mask, so every prompt's last token sits at the
    end of the row and generation continues right after it; a decoder-only model padded on the
    right would continue from the pad tokens. We pad the ids ourselves, so the tokenizer's settings
    (padding_side, pad token) are left as they were. With `seed`, sampling is reproducible without
    disturbing the caller's random state (`fork_rng`)."""
    import torch

    device = torch.device(device) if device is not None else next(model.parameters()).device
    pad, eos = _pad_id(tokenizer), tokenizer.eos_token_id
    model.eval()
    out: list[list[int]] = []
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        if seed is not None:
            torch.manual_seed(seed)
        for start in range(0, len(id_lists), batch_size):
            chunk = id_lists[start:start + batch_size]
            width = max(len(ids) for ids in chunk)
            ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in chunk], device=device)
            mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in chunk], device=device)
            with torch.no_grad():
                generated = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens,
                                           pad_token_id=pad, eos_token_id=eos, **generate_kwargs)
            for row in generated[:, width:].tolist():
                out.append(row[:row.index(eos)] if eos in row else row)
    return out


def decode_new(tokenizer, prompt: list[int], new: list[int]) -> str:
    """The text of the `new` tokens as they read after the prompt. SentencePiece (Llama) drops a
    leading space when decoding tokens alone ("▁John" → "John"), so decode prompt and continuation
    together and cut the prompt's text off."""
    return tokenizer.decode(prompt + new, skip_special_tokens=True)[len(tokenizer.decode(prompt, skip_special_tokens=True)):]


def greedy_continuations(model, tokenizer, prompts: list[str], max_new_tokens: int, batch_size: int = 16,
                         device=None) -> list[str]:
    """The greedy continuation of each prompt (the new text only), batched with left padding."""
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    new = generate_ids(model, tokenizer, ids, max_new_tokens, batch_size=batch_size, device=device, do_sample=False)
    return [decode_new(tokenizer, p, x) for p, x in zip(ids, new)]


# --- Canaries --------------------------------------------------------------------------------------


def canary_extraction(model, tokenizer, canaries: list[dict], batch_size: int = 16, device=None) -> list[dict]:
    """For each canary {"prefix", "secret"}: is the secret what greedy decoding produces after the prefix?

    We decode as many tokens as the secret has, plus 4 of slack for a tokenisation that splits it
    differently. Greedy decoding is deterministic token by token, so decoding every canary for the
    largest budget and cutting each to its own is the same as decoding each alone. Returns, per
    canary in order, {"extracted": bool, "matching_prefix_chars": int}: how much of the secret came
    out, never the secret itself nor the generated text."""
    if not canaries:
        return []
    # Canaries are written "My code is " + "48159273". BPE and SentencePiece tokenizers attach that
    # space to the next word (" 4815…"), so training never saw a lone trailing-space token: a prompt
    # ending in one asks the model for a continuation it never learned and hides the memorisation.
    # Prompt with the prefix up to its last word, and let the space come with the secret.
    prompts = [c["prefix"].rstrip() for c in canaries]
    budgets = [len(tokenizer(c["prefix"][len(p):] + c["secret"], add_special_tokens=False)["input_ids"]) + 4
               for c, p in zip(canaries, prompts)]
    ids = [prompt_ids(tokenizer, p) for p in prompts]
    new = generate_ids(model, tokenizer, ids, max(budgets), batch_size=batch_size, device=device, do_sample=False)
    results = []
    for canary, budget, prompt, generated in zip(canaries, budgets, ids, new):
        generated = decode_new(tokenizer, prompt, generated[:budget]).lstrip()
        secret = canary["secret"].lstrip()
        results.append({"extracted": bool(secret) and generated.startswith(secret),
                        "matching_prefix_chars": _common_prefix(generated, secret)})
    return results


def _common_prefix(a: str, b: str) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


# --- Verbatim extraction of records --------------------------------------------------------------------


def longest_common_substring(a: list, b: list) -> int:
    """Length of the longest run of consecutive tokens shared by `a` and `b` (dynamic programming)."""
    best, previous = 0, [0] * (len(b) + 1)
    for x in a:
        current = [0] * (len(b) + 1)
        for j, y in enumerate(b, 1):
            if x == y:
                current[j] = previous[j - 1] + 1
                best = max(best, current[j])
        previous = current
    return best


def ngram_overlap(reference: list, candidate: list, n: int = 4) -> float:
    """Share of the reference's distinct n-grams that appear anywhere in the candidate."""
    wanted = {tuple(reference[i:i + n]) for i in range(len(reference) - n + 1)}
    if not wanted:
        return 0.0
    found = {tuple(candidate[i:i + n]) for i in range(len(candidate) - n + 1)}
    return len(wanted & found) / len(wanted)


def verbatim_extraction(model, tokenizer, records: list[str], *, prefix_tokens: int = 16, continuation_tokens: int = 32,
                        sample: int = 50, seed: int = 0, batch_size: int = 16, device=None) -> dict:
    """Prompt with each sampled record's first `prefix_tokens` tokens; compare the greedy
    continuation with the record's true next tokens (up to `continuation_tokens`).

    Records shorter than prefix + 8 tokens are skipped: with fewer true tokens to reproduce, a match
    says little. Everything is compared on token ids, never on re-tokenised text, so a continuation
    decoded and encoded again cannot drift."""
    tokenised = [tokenizer(r)["input_ids"] for r in records]
    eligible = [ids for ids in tokenised if len(ids) >= prefix_tokens + 8]
    chosen = random.Random(seed).sample(eligible, min(sample, len(eligible)))
    prompts = [ids[:prefix_tokens] for ids in chosen]
    truths = [ids[prefix_tokens:prefix_tokens + continuation_tokens] for ids in chosen]
    generated = generate_ids(model, tokenizer, prompts, continuation_tokens, batch_size=batch_size, device=device,
                             do_sample=False) if chosen else []
    exact, lcs, overlap = [], [], []
    for truth, gen in zip(truths, generated):
        gen = gen[:len(truth)]  # the same number of tokens as the truth
        exact.append(gen == truth)
        lcs.append(longest_common_substring(truth, gen))
        overlap.append(ngram_overlap(truth, gen, 4))
    n = len(chosen)
    if not n:
        return {"records": 0, **{m: None for m in METRICS}}
    shares = [length / len(truth) for length, truth in zip(lcs, truths)]
    return {"records": n, "exact_match_rate": sum(exact) / n, "lcs_mean": sum(shares) / n, "lcs_max": max(shares),
            "lcs_tokens_mean": sum(lcs) / n, "lcs_tokens_max": max(lcs), "ngram4_overlap_mean": sum(overlap) / n}


def extraction_against_holdout(model, tokenizer, members: list[str], holdout: list[str], **kwargs) -> dict:
    """Verbatim extraction on training records and on held-out records of the same data; the holdout
    is the baseline (what the model produces on text it never saw), and `gap` = members − holdout."""
    on_members = verbatim_extraction(model, tokenizer, members, **kwargs)
    on_holdout = verbatim_extraction(model, tokenizer, holdout, **kwargs)
    gap = {m: None if on_members[m] is None or on_holdout[m] is None else on_members[m] - on_holdout[m] for m in METRICS}
    return {"members": on_members, "holdout": on_holdout, "gap": gap}
