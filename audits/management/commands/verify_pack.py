from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audits.pack_records import recorded_at
from audits.verify import PackUnreadable, verify_pack, verify_pack_with_keys
from governance.signing_keys import key_history


class Command(BaseCommand):
    help = ("Verify an evidence pack: the Ed25519 signature over manifest.json, the SHA-256 of every file, nothing unlisted. "
            "Exit status 1 if invalid. Without --public-key, the portal's key the pack names (current or past), and that "
            "the portal recorded the pack while that key was current.")

    def add_arguments(self, parser):
        parser.add_argument("pack", type=Path)
        parser.add_argument("--public-key", type=Path, help="PEM public key (default: this portal's signing keys)")

    def handle(self, *args, pack: Path, public_key: Path | None, **options):
        try:
            if public_key:
                result = verify_pack(pack, public_key.read_bytes())
            else:
                result = verify_pack_with_keys(pack, key_history(), recorded_at=recorded_at)
        except (OSError, PackUnreadable) as exc:
            raise CommandError(f"UNREADABLE: {exc}") from None
        if not result.valid:
            raise CommandError("INVALID: " + pack.name + "\n" + "\n".join(f"  - {p}" for p in result.problems))
        note = f" ({result.key_note})" if result.key_note else ""
        key = "the given key" if public_key else f"the portal's key {result.key_fingerprint}{note}"
        self.stdout.write(self.style.SUCCESS(f"VALID: {pack} — signature verifies with {key}; "
                                             f"{len(result.manifest.get('files', {}))} files match the manifest."))
