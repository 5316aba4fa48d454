import json
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance.models import DataClass
from training import redaction
from training.engine.redaction import AtomicWriter, MalformedInput, read_jsonl_records, run_redaction


class Command(BaseCommand):
    help = ("Redact a JSONL file (lines with `id` and `text`) with a data class's rules and its pseudonymisation "
            "key; write the redacted JSONL, optional spans and a report. Nothing is written if any line is malformed.")

    def add_arguments(self, parser):
        parser.add_argument("input", type=Path)
        parser.add_argument("--out", type=Path, required=True)
        parser.add_argument("--spans", type=Path, help="one line per record: id and spans with offsets into the original text")
        parser.add_argument("--report", type=Path, help="JSON report: counts per entity type and action, hashes, a redacted sample")
        parser.add_argument("--data-class", help="the data class whose actions, deny-lists, patterns and key apply")
        parser.add_argument("--workers", type=int, default=2)

    def handle(self, *args, input, out, spans, report, data_class, workers, **options):
        if not input.exists():
            raise CommandError(f"{input} does not exist.")
        classes = []
        if data_class:
            found = DataClass.objects.filter(name=data_class).first()
            if found is None:
                names = ", ".join(DataClass.objects.values_list("name", flat=True)) or "none"
                raise CommandError(f"No data class is called “{data_class}”. Data classes: {names}.")
            classes = [found]
        records, problems = read_jsonl_records(input)
        if problems:
            raise CommandError(str(MalformedInput(problems)))
        with tqdm(total=len(records), unit="rec", desc="redacting", disable=options.get("verbosity", 1) == 0) as bar:
            result = run_redaction(
                records, out=out, spans_out=spans, detector_config=redaction.detector_config_for(classes),
                policy=redaction.policy_for(classes), key=redaction.pseudonym_key_for(classes), workers=workers,
                total=len(records), progress=lambda done, total: bar.update(done - bar.n),
            )
        if report:
            with AtomicWriter(report) as writer:
                writer.write_line(result.as_dict())
        self.stdout.write(
            f"{result.records_in} records in, {result.records_out} out ({result.records_changed} changed, "
            f"{result.records_dropped} dropped, {result.exact_duplicates} exact and {result.near_duplicates} near duplicates "
            f"removed); output SHA-256 {result.output_sha256}"
        )
        self.stdout.write(json.dumps(result.entities))
