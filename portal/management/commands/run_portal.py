import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.celery import ensure_broker_folders


def _stop(signum, frame):
    raise KeyboardInterrupt


def _tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class Command(BaseCommand):
    help = ("Run the web server and a Celery worker (queues default and gpu, with beat for the scheduled tasks) "
            "together; Ctrl-C stops both.")

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr, **options):
        # SIGTERM (a service manager, `kill`) stops both children just as Ctrl-C does.
        signal.signal(signal.SIGTERM, _stop)
        ensure_broker_folders()
        # A person reads this terminal: the logins, the URL, the demo's progress bars and the
        # warnings that need them. Every task the worker takes and every page served goes to a
        # log file instead (a thousand lines in the first five minutes, otherwise).
        logs = Path(settings.PROVENANT_LOG_DIR)
        worker_log, web_log = logs / "worker.log", logs / "web.log"
        worker = subprocess.Popen([
            sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "default,gpu", "--concurrency", "1",
            "--loglevel", "INFO", "--hostname", "provenant@%h",
            # Celery beat inside this one worker: the query log's retention and the scheduled re-audits
            # (CELERY_BEAT_SCHEDULE). With several workers, run one `celery -A portal beat` instead.
            "--beat", "--schedule", str(settings.CELERY_BEAT_SCHEDULE_FILENAME),
        ], stdout=(worker_out := open(worker_log, "ab")), stderr=subprocess.STDOUT)
        # The embedded model server behind the gateway (/v1/), on loopback with a bearer token only
        # the web server knows. Not vital to the portal: if it stops, the portal goes on and says so.
        if not settings.PROVENANT_INFERENCE_API_KEY:
            os.environ["PROVENANT_INFERENCE_API_KEY"] = secrets.token_urlsafe(32)
        model_log = logs / "model_server.log"
        model_server = subprocess.Popen([sys.executable, "manage.py", "run_model_server"], stdout=(model_out := open(model_log, "ab")),
                                        stderr=subprocess.STDOUT)
        # The web server's own banner goes to its log; its warnings and errors stay on the terminal.
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", addr, "--noreload"],
                                  stdout=(web_out := open(web_log, "ab")))
        self.stdout.write(self.style.SUCCESS(
            f"\nDemo logins are printed above.\nProvenant is at http://{addr}/  (data in {settings.PROVENANT_DATA_DIR}; "
            f"Ctrl-C stops)\nLogs: {worker_log}, {web_log}, {model_log} and {logs / 'provenant.log'}\n"))
        children = [worker, server]
        story = self._demo_story()
        if story is not None:
            self.stdout.write("The demo request is training on the demo base and being audited: follow it on the "
                              "Requests page, or in the bars below.\n")
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
                if story is not None and story.poll() is not None:
                    story = None  # done (or failed, saying why): the portal keeps running
        except KeyboardInterrupt:
            pass
        finally:
            if story is not None and story.poll() is None:
                story.terminate()
            for child in (*children, model_server):
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in (*children, model_server):
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
        worker_out.close()
        web_out.close()
        model_out.close()
        if model_server.returncode not in (0, -signal.SIGTERM, None):
            self.stderr.write(f"The model server behind /v1/ had stopped (exit code {model_server.returncode}). "
                              f"The end of {model_log}:\n{_tail(model_log)}")
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        for child, log in ((worker, worker_log), (server, web_log)):
            if child in failed:
                name = "worker" if child is worker else "web server"
                self.stderr.write(f"The {name} stopped (exit code {child.returncode}). The end of {log}:\n{_tail(log)}")
        if failed:
            sys.exit(1)

    def _demo_story(self):
        """With the demo seeded and its story not finished, follow it to the end beside the worker."""
        from django.contrib.auth import get_user_model

        from portal import demo

        from django.db import DatabaseError

        if os.environ.get("PROVENANT_DEMO_STORY", "1") == "0":
            return None
        try:
            if not get_user_model().objects.filter(username="erin").exists() or demo.demo_story_finished():
                return None
        except DatabaseError:  # not migrated yet: no demo to follow
            return None
        return subprocess.Popen([sys.executable, "manage.py", "demo_story"])
