"""`manage.py demo_totp USERNAME`: the current authenticator code of a demo user, so that `make run`
is usable without a phone. Only for the demo users `seed_demo` gave an authenticator (their secret
is in the demo file, mode 0600, beside the keys) and never in production."""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Print the current authenticator code of a demo user (development only)."

    def add_arguments(self, parser):
        parser.add_argument("username")

    def handle(self, *args, username, **options):
        import json
        from base64 import b32encode

        from django_otp.oath import totp
        from django_otp.plugins.otp_totp.models import TOTPDevice

        from portal.demo import demo_second_factors_path

        if settings.PRODUCTION:
            raise CommandError("demo_totp is for the demo only: it does not run with PROVENANT_ENV=production.")
        path = demo_second_factors_path()
        kept = json.loads(path.read_text()) if path.exists() else {}
        if username not in kept:
            raise CommandError(f"{username} is not a demo user with an authenticator made by seed_demo "
                               f"(those are: {', '.join(sorted(kept)) or 'none; run seed_demo'}).")
        user = get_user_model().objects.filter(username=username).first()
        device = TOTPDevice.objects.filter(user=user, confirmed=True).first() if user else None
        if device is None or b32encode(device.bin_key).decode() != kept[username]["secret"]:
            raise CommandError(f"{username}'s authenticator is no longer the one seed_demo made (it was reset): "
                               "set it up again on the Second factor page with an app.")
        self.stdout.write(f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}")
