"""Redaction quality and speed: vanilla Presidio against ours, on the same labelled corpus.

Corpus (bench/pii_corpus.py): presidio-evaluator's generator with a fixed seed plus our own
templates (support transcripts, contracts, clinical notes, CRM exports), with gold spans.

Both systems use the same spaCy NER model. Vanilla Presidio: `AnalyzerEngine` with its default
recognizers, threshold 0.35, one `analyze` call per record, spans replaced by `<TYPE>` (the
anonymizer's default). Ours: `training.engine.redaction.run_redaction` measured with 1 and with 2
worker processes, with every type masked as `[TYPE]` like Presidio's output. (Pseudonymizing
detects the same spans; masking keeps the leak check honest, since a realistic surrogate such
as "Jordan" could otherwise be counted as the leak of another record's real "Jordan".)

How it is scored (the same for both):
- recall: a gold span of a personal-data type (PII_TYPES in pii_corpus) counts as found when at
  least half of its characters are covered by predicted spans of any type; the headline recall is
  over all such spans. Organisations, cities, dates, ages and titles are labelled but not counted.
- precision: a predicted span is right when it overlaps a gold personal-data span, wrong when it
  overlaps no gold span at all; one that overlaps only non-counted gold spans (a city, an
  organisation, a date) is left out of both counts.
- leak rate: the share of gold personal-data values that still appear verbatim in the output
  text of their record.
- throughput: records per second of the redaction itself, after models are loaded.

    python bench/redaction.py [--model PATH_OR_NAME] [--evaluator 600] [--per-family 150] [--seed N]

The last line prints our recall, our leak rate and our throughput against Presidio's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from bench.pii_corpus import PII_TYPES, build_corpus  # noqa: E402
from training.engine.pii.detector import DetectorConfig, default_ner_model  # noqa: E402
from training.engine.redaction import Record, RedactionPolicy, run_redaction  # noqa: E402


def vanilla_presidio(model: str):
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import NlpEngineProvider

    import training.engine.pii.detector  # noqa: F401  (offline public-suffix list for tldextract, as ours)

    provider = NlpEngineProvider(nlp_configuration={"nlp_engine_name": "spacy", "models": [{"lang_code": "en", "model_name": model}]})
    return AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])


def run_vanilla(corpus, model):
    from presidio_anonymizer import AnonymizerEngine

    analyzer, anonymizer = vanilla_presidio(model), AnonymizerEngine()
    analyzer.analyze(text="warm up John Smith", language="en")
    started = time.perf_counter()
    predicted, outputs = {}, {}
    for record in corpus:
        results = analyzer.analyze(text=record.text, language="en", score_threshold=0.35)
        predicted[record.id] = [(r.start, r.end, r.entity_type) for r in results]
        outputs[record.id] = anonymizer.anonymize(text=record.text, analyzer_results=results).text
    return predicted, outputs, time.perf_counter() - started


def run_ours(corpus, model, workers):
    import json

    from training.engine.redaction import WorkerPool

    from training.engine.redaction import MASK

    config, key = DetectorConfig(ner_model=model), b"bench-key-0123456789abcdef"
    policy = RedactionPolicy(default_action=MASK)
    with tempfile.TemporaryDirectory() as tmp, WorkerPool(workers, config, policy, key) as pool:
        out, spans = Path(tmp) / "out.jsonl", Path(tmp) / "spans.jsonl"
        # Warm up: load the models in every worker before the clock starts, as for Presidio.
        warm = [Record(f"w{i}", f"warm up {i} John Smith") for i in range(workers * 4)]
        run_redaction(warm, out=None, detector_config=config, policy=policy, key=key, workers=pool, batch_size=1)
        started = time.perf_counter()
        # No de-duplication here: every record must come out, so both systems are scored on all of them.
        report = run_redaction([Record(r.id, r.text) for r in corpus], out=out, spans_out=spans, detector_config=config,
                               policy=policy, key=key, workers=pool, batch_size=16, deduplicate=False)
        seconds = time.perf_counter() - started
        predicted = {}
        for line in spans.read_text().splitlines():
            row = json.loads(line)
            predicted[row["id"]] = [(s["start"], s["end"], s["type"]) for s in row["spans"]]
        outputs = {json.loads(line)["id"]: json.loads(line)["text"] for line in out.read_text().splitlines()}
    return predicted, outputs, seconds, report


def score(corpus, predicted, outputs):
    found, total, leaked = Counter(), Counter(), Counter()
    right, wrong = Counter(), Counter()
    for record in corpus:
        spans = predicted.get(record.id, [])
        covered = [False] * len(record.text)
        for start, end, _ in spans:
            for i in range(start, min(end, len(covered))):
                covered[i] = True
        output = outputs.get(record.id, "")
        for gold in record.spans:
            if gold.type not in PII_TYPES:
                continue
            total[gold.type] += 1
            chars = max(1, gold.end - gold.start)
            if sum(covered[gold.start:gold.end]) * 2 >= chars:
                found[gold.type] += 1
            if gold.value in output:
                leaked[gold.type] += 1
        for start, end, entity in spans:
            overlapping = [g for g in record.spans if g.start < end and start < g.end]
            if any(g.type in PII_TYPES for g in overlapping):
                right[entity] += 1
            elif not overlapping:
                wrong[entity] += 1
    return found, total, leaked, right, wrong


def summary(found, total, leaked, right, wrong):
    recall = sum(found.values()) / max(1, sum(total.values()))
    precision = sum(right.values()) / max(1, sum(right.values()) + sum(wrong.values()))
    leak = sum(leaked.values()) / max(1, sum(total.values()))
    return recall, precision, leak


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="", help="spaCy model name or path; default: the md model if installed")
    parser.add_argument("--evaluator", type=int, default=600)
    parser.add_argument("--per-family", type=int, default=150)
    parser.add_argument("--seed", type=int, default=20261122, help="corpus seed; another seed gives unseen values")
    args = parser.parse_args()
    model = args.model or default_ner_model()
    corpus = build_corpus(n_evaluator=args.evaluator, n_per_template_family=args.per_family, seed=args.seed)
    sources = Counter(r.source for r in corpus)
    gold_counts = Counter(g.type for r in corpus for g in r.spans if g.type in PII_TYPES)
    print(f"corpus: {len(corpus)} records ({', '.join(f'{k} {v}' for k, v in sorted(sources.items()))}); "
          f"{sum(gold_counts.values())} gold personal-data spans; NER model {Path(model).name if os.sep in model else model}")

    v_pred, v_out, v_seconds = run_vanilla(corpus, model)
    o1_pred, o1_out, o1_seconds, _ = run_ours(corpus, model, workers=1)
    o2_pred, o2_out, o2_seconds, report = run_ours(corpus, model, workers=2)
    assert o1_out == o2_out, "one and two workers must give the same output"
    v = score(corpus, v_pred, v_out)
    o = score(corpus, o2_pred, o2_out)

    print(f"\n{'gold type':<24}{'spans':>7}{'recall P':>10}{'recall ours':>13}{'leak P':>9}{'leak ours':>11}")
    for entity in sorted(gold_counts):
        n = gold_counts[entity]
        print(f"{entity:<24}{n:>7}{v[0][entity] / n:>10.3f}{o[0][entity] / n:>13.3f}{v[2][entity] / n:>9.3f}{o[2][entity] / n:>11.3f}")
    print(f"\n{'predicted type':<24}{'P right':>8}{'P wrong':>8}{'P prec':>8}{'ours right':>11}{'ours wrong':>11}{'ours prec':>10}")
    for entity in sorted(set(v[3]) | set(v[4]) | set(o[3]) | set(o[4])):
        vp = v[3][entity] / max(1, v[3][entity] + v[4][entity])
        op = o[3][entity] / max(1, o[3][entity] + o[4][entity])
        print(f"{entity:<24}{v[3][entity]:>8}{v[4][entity]:>8}{vp:>8.3f}{o[3][entity]:>11}{o[4][entity]:>11}{op:>10.3f}")
    v_recall, v_precision, v_leak = summary(*v)
    o_recall, o_precision, o_leak = summary(*o)
    n = len(corpus)
    print(f"\n{'':<22}{'recall':>8}{'precision':>11}{'leak rate':>11}{'records/s':>11}")
    print(f"{'vanilla Presidio':<22}{v_recall:>8.3f}{v_precision:>11.3f}{v_leak:>11.3f}{n / v_seconds:>11.1f}")
    print(f"{'ours, 1 process':<22}{summary(*score(corpus, o1_pred, o1_out))[0]:>8.3f}{'':>11}{'':>11}{n / o1_seconds:>11.1f}")
    print(f"{'ours, 2 processes':<22}{o_recall:>8.3f}{o_precision:>11.3f}{o_leak:>11.3f}{n / o2_seconds:>11.1f}")
    print(f"records changed by ours: {report.records_changed} of {report.records_in}")
    print(f"ours: recall {o_recall:.3f}, leak rate {o_leak:.3%}, precision {o_precision:.3f} (Presidio {v_precision:.3f}); "
          f"throughput {n / o2_seconds:.1f} rec/s = {v_seconds / o2_seconds:.2f}x Presidio "
          f"({v_seconds / o1_seconds:.2f}x on 1 process)")


if __name__ == "__main__":
    main()
