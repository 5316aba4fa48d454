from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from serving import actions
from serving.models import Deployment


class Command(BaseCommand):
    help = ("Issue a consumer key for a deployment (by name or id), as the privacy officer named by --as. The key is printed "
            "once, on standard output; the portal keeps only its hash.")

    def add_arguments(self, parser):
        parser.add_argument("deployment", metavar="DEPLOYMENT", help="the deployment's name or id")
        parser.add_argument("--consumer", required=True, help="the application or team that will call with it")
        parser.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="the privacy officer issuing it")
        parser.add_argument("--days", type=int, default=90)
        parser.add_argument("--requests-per-minute", type=int, default=60)
        parser.add_argument("--tokens-per-day", type=int, default=100_000)

    def handle(self, *args, deployment, consumer, as_user, days, requests_per_minute, tokens_per_day, **options):
        actor = get_user_model().objects.filter(username=as_user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user '{as_user}'.")
        found = Deployment.objects.filter(name=deployment).first()
        if found is None and deployment.isdigit():
            found = Deployment.objects.filter(pk=int(deployment)).first()
        if found is None:
            raise CommandError(f"No deployment named '{deployment}'.")
        try:
            key, secret = actions.issue_consumer_key(actor, found, consumer, days=days, requests_per_minute=requests_per_minute,
                                                     tokens_per_day=tokens_per_day)
        except (actions.DeploymentRefused, PermissionError) as exc:
            raise CommandError(str(exc)) from None
        self.stderr.write(f"Key {key.prefix}… for {consumer} on '{found.name}', valid until {key.expires_at:%Y-%m-%d %H:%M} UTC. "
                          "It is printed once, below; the portal keeps only its hash.")
        self.stdout.write(secret)
