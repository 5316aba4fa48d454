import signal
from urllib.parse import urlsplit

from django.conf import settings
from django.core.management.base import BaseCommand


def _stop(signum, frame):
    raise KeyboardInterrupt


class Command(BaseCommand):
    help = ("Serve the active deployments' adapters with the embedded OpenAI-compatible model server (transformers + PEFT), "
            "where PROVENANT_INFERENCE_URL points (default 127.0.0.1:8001). The gateway under /v1/ forwards to it. Adapters "
            "are decrypted into a private scratch directory only while they load; Ctrl-C or SIGTERM stops it.")

    def add_arguments(self, parser):
        url = urlsplit(settings.PROVENANT_INFERENCE_URL)
        parser.add_argument("--host", default=url.hostname or "127.0.0.1")
        parser.add_argument("--port", type=int, default=url.port or 8001)
        parser.add_argument("--cache-size", type=int, default=2, help="how many deployments stay loaded at once")

    def handle(self, *args, host, port, cache_size, **options):
        from serving.engine.model_server import ModelServer
        from serving.model_resolver import DeploymentResolver, sweep_stale_scratch

        signal.signal(signal.SIGTERM, _stop)
        sweep_stale_scratch()
        resolver = DeploymentResolver()
        server = ModelServer(resolver, host=host, port=port, list_models=resolver.names, cache_size=cache_size,
                             api_key=settings.PROVENANT_INFERENCE_API_KEY or None)
        self.stdout.write(f"Model server on {server.url}/v1 (deployments: {', '.join(resolver.names()) or 'none yet'})")
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.httpd.server_close()
            resolver.close()
