import os
import socket

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from training.models import RunState, TrainingRun
from training.runs import InvalidRunSettings, RunSettings


class Command(BaseCommand):
    help = "Run a queued training run in this process (for debugging), with a progress bar. The Celery worker does the same."

    def add_arguments(self, parser):
        parser.add_argument("--run", type=int, required=True, help="TrainingRun id")

    def handle(self, *args, run, **options):
        from training.pipeline import execute_run

        record = TrainingRun.objects.filter(pk=run).first()
        if record is None:
            raise CommandError(f"No training run {run}.")
        if record.state != RunState.QUEUED:
            raise CommandError(f"Run {run} is {record.get_state_display().lower()}, not queued: only a queued run can start.")
        try:  # the same check the worker makes first; here it answers before anything starts
            RunSettings.from_dict(record.config)
        except InvalidRunSettings as exc:
            raise CommandError(f"Run {run} cannot start: its settings are not valid: {exc}") from None
        bar = tqdm(unit="step", desc=f"run {run}", disable=options.get("verbosity", 1) == 0)

        def echo(state):
            bar.total = state["steps"]
            bar.update(state["step"] - bar.n)
            postfix = {"epoch": f"{state['epoch']:.2f}"}
            if state.get("loss") is not None:
                postfix["loss"] = f"{state['loss']:.3f}"
            if state.get("epsilon") is not None:
                postfix["ε"] = f"{state['epsilon']:.2f}"
            bar.set_postfix(postfix)

        ended = execute_run(record, f"{socket.gethostname()}:{os.getpid()} (manage.py train)", echo=echo)
        bar.close()
        if ended.state != RunState.SUCCEEDED:
            raise CommandError(f"Run {run} {ended.state}: {ended.failure_reason}")
        result = ended.result
        privacy = (f"ε = {result['epsilon']:.3f} (δ = {result['delta']:.2e}, {result['accountant']})"
                   if result.get("epsilon") is not None else "no DP")
        self.stdout.write(self.style.SUCCESS(f"Run {run} trained: {result['steps']} steps, {privacy}"))
