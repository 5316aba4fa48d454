from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from governance import key_rotation, signing_keys


class Command(BaseCommand):
    help = ("Rotate the evidence-pack signing key: a new Ed25519 key signs from now on; the old one is retired and kept, "
            "with the period it was valid, on the key page, so the packs it signed still verify. The key must come from "
            "a file (PROVENANT_SIGNING_KEY_FILE or the development file), which is replaced atomically. Recorded in the "
            "audit trail.")

    def add_arguments(self, parser):
        parser.add_argument("--reason", required=True, help="why the key is rotated (kept in the audit trail)")
        parser.add_argument("--as", dest="as_user", required=True, metavar="USERNAME",
                            help="the administrator or privacy officer who rotates it (recorded in the trail)")

    def handle(self, *args, reason, as_user, **options):
        actor = get_user_model().objects.filter(username=as_user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user named “{as_user}”.")
        try:
            result = signing_keys.rotate_signing_key(actor, reason)
        except (key_rotation.KeyRotationNotAllowed, key_rotation.KeyRotationRefused) as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(result.summary()))
        self.stdout.write(f"Key file: {result.key_file}. Processes that read another copy of it must be given the new "
                          "file and restarted; regulators find every key on the portal's key page.")
