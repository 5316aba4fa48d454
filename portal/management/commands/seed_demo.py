from django.core.management.base import BaseCommand

from portal.demo import DEMO_USERS, demo_passwords_path, ensure_demo_records, ensure_demo_users


class Command(BaseCommand):
    help = "Create one demo user per role and the demo records (idempotent), and print the logins."

    def handle(self, *args, **options):
        from portal.celery import ensure_broker_folders

        ensure_broker_folders()  # the uploads queue their PII profiles for the worker that starts next
        passwords = ensure_demo_users()
        ensure_demo_records()
        self.stdout.write("Demo logins (also in %s, mode 0600):" % demo_passwords_path())
        for username, full_name, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username:<6} {passwords.get(username, '(set before; see the file)')}  ({full_name})")
