import os
import socket
import time

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from portal import demo


class Command(BaseCommand):
    help = ("The demo's request that goes all the way: approved, trained on the demo base and audited by the worker, "
            "its model card approved, its evidence pack built and shared with the demo regulator. Idempotent; shows "
            "the run's progress while it waits for the worker.")

    def add_arguments(self, parser):
        parser.add_argument("--base", default=demo.DEMO_BASE_MODEL, help="base model name (default: the demo base)")
        parser.add_argument("--in-process", action="store_true", help="train and audit here instead of waiting for a worker")
        parser.add_argument("--timeout", type=float, default=3 * 3600, help="seconds to wait for the worker")

    def handle(self, *args, base, in_process, timeout, **options):
        from portal.celery import ensure_broker_folders

        ensure_broker_folders()  # approval enqueues the run, even when this command then runs it here
        if demo.demo_story_finished():
            self.stdout.write("The demo story is complete: see the request “%s”." % demo.DEMO_REQUEST_TITLE)
            return
        try:
            request = demo.ensure_demo_request(base)
        except LookupError as exc:
            raise CommandError(str(exc)) from None
        if request.run is None:
            raise CommandError(f"The demo request is {request.get_state_display().lower()}; it has no run: {request.findings}")
        quiet = options.get("verbosity", 1) == 0
        if in_process:
            self._run_here(request.run, quiet)
        else:
            self._wait_for_worker(request.run, timeout, quiet)
        request.refresh_from_db()
        pack = demo.finish_demo_story(request)
        request.refresh_from_db()
        self._deploy_and_ask(request, in_process)
        self.stdout.write(self.style.SUCCESS(
            f"Demo story complete: request {request.pk} ({request.get_state_display().lower()}), evidence pack {pack.pk} "
            "shared with rory."))

    def _deploy_and_ask(self, request, in_process):
        """Released: deployed at the gateway, and one question asked through it. Under `make run` the
        model server is the portal's own process; with --in-process one runs here for the call."""
        deployment = demo.deploy_demo_adapter(request)
        if deployment is None:
            self.stdout.write("The demo adapter was not released, so it is not deployed: see its audit on the run's page.")
            return
        try:
            if in_process:
                answer = self._ask_with_a_model_server_here(deployment)
            else:
                answer = demo.ask_demo_deployment(deployment)
        except RuntimeError as exc:
            self.stderr.write(f"The demo adapter is deployed as '{deployment.name}', but its first request failed: {exc}")
            return
        text = answer["choices"][0]["message"]["content"]
        self.stdout.write(f"Deployed as '{deployment.name}' at /v1/; the helpdesk app asked “{demo.DEMO_QUESTION}” and got "
                          f"({answer['usage']['completion_tokens']} tokens, filtered): {text.strip()[:300]}\n"
                          f"Its key is in {demo.demo_consumer_key_path()}: call /v1/chat/completions with any OpenAI client.")

    def _run_here(self, run, quiet):
        from audits.runner import execute_audit
        from training.pipeline import execute_run

        worker = f"{socket.gethostname()}:{os.getpid()} (demo_story)"
        bar = tqdm(desc="training the demo adapter", unit="step", disable=quiet)

        def echo(state):
            bar.total = state["steps"]
            bar.update(state["step"] - bar.n)

        run = execute_run(run, worker, echo=echo)
        bar.close()
        if run.state != "succeeded":
            raise CommandError(f"The demo run {run.state}: {run.failure_reason}")
        audit = run.audits.filter(state="queued").first()
        if audit is not None:
            audit = execute_audit(audit, worker)
            if audit.state != "completed":
                raise CommandError(f"The demo audit {audit.state}: {audit.failure_reason}")

    def _wait_for_worker(self, run, timeout, quiet):
        """Poll the run and then its audit, with progress bars, until the worker is done."""
        deadline = time.monotonic() + timeout
        training = tqdm(desc=f"run {run.pk}: training on the demo base", unit="step", disable=quiet)
        auditing = None
        while time.monotonic() < deadline:
            run.refresh_from_db()
            if run.total_steps:
                training.total = run.total_steps
                training.update(run.step - training.n)
                training.set_postfix_str(run.phase or run.state)
            if run.state in ("failed", "cancelled"):
                raise CommandError(f"The demo run {run.state}: {run.failure_reason}")
            audit = run.audits.first() if run.state == "succeeded" else None
            if audit is not None:
                if auditing is None:
                    training.close()
                    auditing = tqdm(desc=f"audit {audit.pk}: attacks on the adapter", unit="phase", disable=quiet)
                if audit.total:
                    auditing.total = audit.total
                    auditing.update(audit.done - auditing.n)
                    auditing.set_postfix_str(audit.phase)
                if audit.state == "failed":
                    raise CommandError(f"The demo audit failed: {audit.failure_reason}")
                if audit.state == "completed":
                    auditing.close()
                    return
            time.sleep(2)
        raise CommandError(f"Gave up waiting for the worker after {timeout:.0f} s; run `python manage.py demo_story` again.")

    def _ask_with_a_model_server_here(self, deployment) -> dict:
        from django.conf import settings
        from django.test import override_settings

        from serving.engine.model_server import ModelServer
        from serving.model_resolver import DeploymentResolver

        resolver = DeploymentResolver()
        server, url = ModelServer(resolver, api_key=settings.PROVENANT_INFERENCE_API_KEY or None).start_in_thread()
        try:
            with override_settings(PROVENANT_INFERENCE_URL=f"{url}/v1"):
                return demo.ask_demo_deployment(deployment)
        finally:
            server.shutdown()
            resolver.close()
