from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from serving import actions
from serving.models import FilterMode
from training.models import TrainingRun


class Command(BaseCommand):
    help = ("Deploy a run's released adapter at the gateway (/v1/) under a name, as the privacy officer named by --as. "
            "Refused for an adapter that is not released. Issue keys with `issue_consumer_key`.")

    def add_arguments(self, parser):
        parser.add_argument("run", type=int, metavar="RUN_ID")
        parser.add_argument("--name", required=True, help="what clients send as `model`")
        parser.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="the privacy officer deploying it")
        parser.add_argument("--purpose", default="")
        parser.add_argument("--max-output-tokens", type=int, default=256)
        parser.add_argument("--filter-mode", choices=FilterMode.values, default=FilterMode.MASK)
        parser.add_argument("--log-prompts", action="store_true", help="keep prompts (redacted) in the query log")

    def handle(self, *args, run, name, as_user, purpose, max_output_tokens, filter_mode, log_prompts, **options):
        actor = get_user_model().objects.filter(username=as_user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user '{as_user}'.")
        record = TrainingRun.objects.filter(pk=run).first()
        if record is None:
            raise CommandError(f"No training run {run}.")
        try:
            deployment = actions.deploy_adapter(actor, record, name=name, purpose=purpose, max_output_tokens=max_output_tokens,
                                                filter_mode=filter_mode, log_prompts=log_prompts)
        except (actions.DeploymentRefused, PermissionError) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(f"Deployed the adapter of run {run} as '{deployment.name}' (deployment {deployment.pk})."))
