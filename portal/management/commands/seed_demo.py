from django.core.management.base import BaseCommand

from portal.demo import (DEMO_USERS, demo_passwords_path, demo_second_factors_path, ensure_demo_records,
                         ensure_demo_second_factors, ensure_demo_users)


class Command(BaseCommand):
    help = ("Create one demo user per role and the demo records (idempotent), and print the logins and the demo "
            "authenticators of the roles that need a second factor.")

    def handle(self, *args, **options):
        from portal.celery import ensure_broker_folders

        ensure_broker_folders()  # the uploads queue their PII profiles for the worker that starts next
        passwords = ensure_demo_users()
        ensure_demo_records()
        self.stdout.write("Demo logins (also in %s, mode 0600):" % demo_passwords_path())
        for username, full_name, role in DEMO_USERS:
            self.stdout.write(f"  {role:<10} {username:<6} {passwords.get(username, '(set before; see the file)')}  ({full_name})")
        factors = ensure_demo_second_factors()
        if factors:
            self.stdout.write("Legal, privacy and admin sign in with a code from an authenticator app too. Add these to one "
                              "(or print a current code with `python manage.py demo_totp USERNAME`); their recovery codes "
                              f"are in {demo_second_factors_path()} (mode 0600):")
            for username, factor in factors.items():
                self.stdout.write(f"  {username:<6} {factor['otpauth']}")
