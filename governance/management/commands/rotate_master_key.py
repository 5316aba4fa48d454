from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from governance import key_rotation


class Command(BaseCommand):
    help = ("Rotate the master key: a new version of the Tink keyset becomes primary, every wrapped data key and sealed "
            "value in the database is re-wrapped under it in one transaction, then the old versions are disabled. The "
            "keyset must come from a file (PROVENANT_MASTER_KEY_FILE or the development file), which is replaced "
            "atomically. Every web and worker process reading the same file reloads it; any other must be given the new "
            "file and restarted. Recorded in the audit trail. --check lists rows not under the current version.")

    def add_arguments(self, parser):
        parser.add_argument("--reason", help="why the key is rotated (kept in the audit trail)")
        parser.add_argument("--as", dest="as_user", metavar="USERNAME",
                            help="the administrator or privacy officer who rotates it (recorded in the trail)")
        parser.add_argument("--check", action="store_true",
                            help="only list the stored values that are not under the keyset's primary version")

    def handle(self, *args, reason, as_user, check, **options):
        if check:
            return self._check()
        if not reason or not as_user:
            raise CommandError("Give --reason \"…\" and --as USERNAME (an administrator or the privacy officer).")
        actor = get_user_model().objects.filter(username=as_user, is_active=True).first()
        if actor is None:
            raise CommandError(f"No active user named “{as_user}”.")
        with tqdm(desc="re-wrapping", unit="value", disable=None, file=self.stderr) as bar:
            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            try:
                result = key_rotation.rotate_master_key(actor, reason, progress=progress)
            except (key_rotation.KeyRotationNotAllowed, key_rotation.KeyRotationRefused, key_rotation.KeyRotationFailed,
                    key_rotation.KeyRotationIncomplete) as exc:
                raise CommandError(str(exc)) from None
        self.stdout.write(self.style.SUCCESS(result.summary()))
        for label, count in result.rewrapped.items():
            self.stdout.write(f"  {label}: {count} re-wrapped, {result.left_empty.get(label, 0)} without a key (shredded or deleted)")
        if result.late_rows:
            self.stdout.write(f"  {result.late_rows} values written during the rotation were re-wrapped afterwards")
        self.stdout.write(f"Keyset file: {result.keyset}. Processes that read another copy of it must be given the new "
                          "file and restarted.")

    def _check(self):
        stale = key_rotation.rows_not_under_primary()
        if not stale:
            self.stdout.write(self.style.SUCCESS("Every stored key and sealed value is under the keyset's primary version."))
            return
        for label, pks in stale.items():
            shown = ", ".join(str(pk) for pk in pks[:20]) + (" …" if len(pks) > 20 else "")
            self.stdout.write(f"{label}: {len(pks)} not under the primary version (ids {shown})")
        raise CommandError("Some stored values are not under the primary version: under a disabled one they cannot be "
                           "opened (re-enable that version in the keyset to recover them, then rotate again).")
