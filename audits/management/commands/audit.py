import os
import socket

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from audits import actions
from audits.models import AuditState
from training.models import TrainingRun


class Command(BaseCommand):
    help = ("Audit a trained run's adapter in this process, with a progress bar: the queued audit if there is one, "
            "otherwise a new one. Prints the verdict and the figures. The Celery worker does the same.")

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, help="TrainingRun id")

    def handle(self, *args, run, **options):
        from audits.runner import execute_audit

        record = TrainingRun.objects.filter(pk=run).first()
        if record is None:
            raise CommandError(f"No training run {run}.")
        item = record.audits.filter(state=AuditState.QUEUED).first()
        if item is None:
            try:
                item = actions.queue_audit(None, record, enqueue=False)
            except ValueError as exc:
                raise CommandError(str(exc)) from None
        bar = tqdm(unit="phase", desc=f"audit of run {run}", disable=options.get("verbosity", 1) == 0)

        def echo(state):
            bar.total = state.get("total")
            bar.update(int(state.get("done") or 0) - bar.n)
            bar.set_postfix_str(str(state.get("phase", "")))

        ended = execute_audit(item, f"{socket.gethostname()}:{os.getpid()} (manage.py audit)", echo=echo)
        bar.close()
        if ended.state != AuditState.COMPLETED:
            raise CommandError(f"Audit {ended.pk} of run {run} {ended.state}: {ended.failure_reason}")
        self.stdout.write(format_verdict(ended.verdict))
        if ended.outcome != "pass":
            # Exit status as the engine's CLI: 1 fail, 3 inconclusive.
            word = "FAILED" if ended.outcome == "fail" else "INCONCLUSIVE"
            raise CommandError(f"Audit {ended.pk} of run {run} {word}: the adapter cannot be released without an override.",
                               returncode=1 if ended.outcome == "fail" else 3)
        self.stdout.write(self.style.SUCCESS(f"Audit {ended.pk} of run {run} PASSED."))


def format_verdict(verdict: dict) -> str:
    from audits.engine.audit import check_mark, verdict_outcome

    lines = [f"verdict: {verdict_outcome(verdict).upper()}"]
    for check in verdict.get("checks", []):
        lines.append(f"  [{check_mark(check)}] {check.get('label')}: {check.get('reason')}")
    return "\n".join(lines)
