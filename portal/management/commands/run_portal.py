import signal
import subprocess
import sys
import time

from django.conf import settings
from django.core.management.base import BaseCommand

from portal.celery import ensure_broker_folders


def _stop(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = "Run the web server and a Celery worker (queues default and gpu) together; Ctrl-C stops both."

    def add_arguments(self, parser):
        parser.add_argument("--addr", default="127.0.0.1:8000")

    def handle(self, *args, addr, **options):
        # SIGTERM (a service manager, `kill`) stops both children just as Ctrl-C does.
        signal.signal(signal.SIGTERM, _stop)
        ensure_broker_folders()
        worker = subprocess.Popen([
            sys.executable, "-m", "celery", "-A", "portal", "worker", "-Q", "default,gpu", "--concurrency", "1",
            "--loglevel", "INFO", "--hostname", "provenant@%h",
        ])
        server = subprocess.Popen([sys.executable, "manage.py", "runserver", addr, "--noreload"])
        self.stdout.write(self.style.SUCCESS(f"\nDemo logins are printed above.\nProvenant is at http://{addr}/  (data in {settings.PROVENANT_DATA_DIR}; Ctrl-C stops)\n"))
        children = [worker, server]
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            for child in children:
                if child.poll() is None:
                    child.send_signal(signal.SIGTERM)
            for child in children:
                try:
                    child.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    child.kill()
        failed = [c for c in children if c.returncode not in (0, -signal.SIGTERM, None)]
        if failed:
            sys.exit(1)
