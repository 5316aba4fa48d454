from django.core.management.base import BaseCommand, CommandError

from governance import users


class Command(BaseCommand):
    help = ("Make USERNAME an administrator from the command line (created if new, with no password): for a fresh "
            "install, and only while fewer than two active administrators exist; after that, roles are granted in "
            "the portal (Users), a second person confirming. Recorded in the audit trail. Prints a one-time link "
            "through which the user chooses their password.")

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--email", default="")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="Where the portal is served, to print the reset link in full.")

    def handle(self, *args, username, email, base_url, **options):
        try:
            user, link = users.bootstrap_admin(username, email)
        except users.UserActionRefused as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{user.username} is an administrator."))
        if link:
            self.stdout.write(f"Open this link once to choose the password (it expires): {base_url.rstrip('/')}{link}")
