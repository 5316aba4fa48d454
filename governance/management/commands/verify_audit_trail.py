from django.core.management.base import BaseCommand, CommandError

from governance.models import AuditEvent


class Command(BaseCommand):
    help = "Walk the audit trail's hash chain and name the first broken link. Exit status 1 if broken."

    def handle(self, *args, **options):
        result = AuditEvent.verify_chain()
        if not result.ok:
            raise CommandError(f"Audit trail BROKEN after {result.checked} good events: {result.reason}.")
        self.stdout.write(self.style.SUCCESS(f"Audit trail intact: {result.checked} events verified."))
