from django.conf import settings
from django.core.management.base import BaseCommand
from django.db import transaction
from tqdm import tqdm

from governance.trail import record_event
from training.engine.model_files import describe_model
from training.engine.tiny_base import build_tiny_base
from training.models import BaseModel, BaseModelSource


class Command(BaseCommand):
    help = "Train a tiny GPT-2-style base model and tokenizer offline from a seed, and register it (for tests and benchmarks)."

    def add_arguments(self, parser):
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--steps", type=int, default=1500, help="pretraining steps (about 90 s per 1,500 on two cores)")
        parser.add_argument("--name", default="")

    def handle(self, *args, seed, steps, name, **options):
        name = name or f"tiny-gpt2-seed{seed}"
        directory = settings.PROVENANT_DATA_DIR / "models" / name
        with tqdm(total=steps, unit="step", desc="pretraining", disable=options.get("verbosity", 1) == 0) as bar:
            build_tiny_base(directory, seed=seed, n_layer=2, n_embd=128, n_head=4, train_steps=steps,
                            progress=lambda done, total: bar.update(done - bar.n))
        facts = describe_model(directory)
        with transaction.atomic():
            model, created = BaseModel.objects.update_or_create(name=name, defaults={
                "source": BaseModelSource.LOCAL_DIRECTORY, "location": str(directory), "licence": "Apache-2.0 (generated here)",
                **facts,
            })
            record_event(None, "basemodel.registered", model, f"Base model “{name}” registered ({facts['parameter_count']:,} parameters)",
                         {"weight_hashes": facts["weight_hashes"], "architecture": facts["architecture"], "steps": steps, "seed": seed})
        self.stdout.write(self.style.SUCCESS(f"{name}: {facts['parameter_count']:,} parameters at {directory}"))
