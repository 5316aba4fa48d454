from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audits.verify import PackUnreadable, verify_pack
from governance.keys import public_key_fingerprint, public_key_pem


class Command(BaseCommand):
    help = ("Verify an evidence pack: the Ed25519 signature over manifest.json, the SHA-256 of every file, nothing unlisted. "
            "Exit status 1 if invalid. Without --public-key, the portal's own key.")

    def add_arguments(self, parser):
        parser.add_argument("pack", type=Path)
        parser.add_argument("--public-key", type=Path, help="PEM public key (default: this portal's signing key)")

    def handle(self, *args, pack: Path, public_key: Path | None, **options):
        try:
            pem = public_key.read_bytes() if public_key else public_key_pem().encode()
            result = verify_pack(pack, pem)
        except (OSError, PackUnreadable) as exc:
            raise CommandError(f"UNREADABLE: {exc}") from None
        if not result.valid:
            raise CommandError("INVALID: " + pack.name + "\n" + "\n".join(f"  - {p}" for p in result.problems))
        key = "the given key" if public_key else f"the portal's key {public_key_fingerprint()}"
        self.stdout.write(self.style.SUCCESS(f"VALID: {pack} — signature verifies with {key}; "
                                             f"{len(result.manifest.get('files', {}))} files match the manifest."))
