"""Evidence pack build time: a realistic run, rendered to PDF, signed, zipped and encrypted.

    .venv/bin/python bench/evidence_pack.py [--events 500] [--repeat 3] [--pdf-out report.pdf] [--keep]

One process, a fresh data dir (SQLite database, blobs, keys) under a temporary directory,
migrated in-process. An engineer's training request on a data class that asks for five extra
approvers goes through the real actions: submitted, signed by three people, edited (which voids
those signatures), resubmitted and signed by seven: 10 approvals. Its run looks trained and
audited as tests/audits/pack_factory.py leaves it (stored encrypted curves and adapter, a completed
audit with the ROC and exposure charts: 4 charts in all), and audit events about the run are
added until the pack's audit-trail excerpt holds `--events` events. Then
`workflow.actions.build_pack` runs `--repeat` times (each a full build: gather, WeasyPrint, sign,
zip, encrypt, record); the time of each phase of the fastest build is printed.

Anchor: the issue's target of 5 s for this pack on the development machine (2 cores). The last
line prints the build time, the page count and the ratio to the 5 s target.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
TARGET_SECONDS = 5.0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=500, help="audit events in the pack's audit-trail excerpt")
    parser.add_argument("--repeat", type=int, default=3, help="builds to time (the fastest is reported)")
    parser.add_argument("--pdf-out", type=Path, help="write the PDF of the last build here")
    parser.add_argument("--zip-out", type=Path, help="write the zip of the last build here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary data dir")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one WeasyPrint render")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="provenant-bench-pack-"))
    data_dir = work / "var"
    data_dir.mkdir()
    os.environ.update(PROVENANT_DATA_DIR=str(data_dir), DATABASE_URL=f"sqlite:///{data_dir / 'provenant.sqlite3'}",
                      DJANGO_SETTINGS_MODULE="portal.settings", LOG_LEVEL="WARNING")
    for name in ("PROVENANT_SIGNING_KEY", "PROVENANT_SIGNING_KEY_FILE"):
        os.environ.pop(name, None)
    try:
        import django

        django.setup()
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.core.management import call_command
        from django.db import transaction

        call_command("migrate", verbosity=0)
        from portal.celery import ensure_broker_folders

        ensure_broker_folders()  # the actions queue work (a PII profile, the run) on commit: it waits there, unconsumed
        from workflow import evidence
        from workflow import actions
        from governance.trail import record_event
        from governance.models import AuditEvent
        from governance import roles
        from tests.audits import pack_factory
        from tests.governance.request_factory import good_data_class, good_dataset, make_good_request

        def user(name, role, **extra):
            u = get_user_model().objects.create_user(name, f"{name}@example.test", "bench-password-9", first_name=name.title(), **extra)
            u.groups.add(Group.objects.get(name=role))
            return u

        engineer = user("erin", roles.ENGINEER)
        legal = [user(f"legal{i}", roles.LEGAL) for i in range(3)]
        privacy = [user(f"privacy{i}", roles.PRIVACY) for i in range(3)]
        admins = [user(f"admin{i}", roles.ADMIN, is_staff=True) for i in range(2)]

        started = time.perf_counter()
        data_class = good_data_class(extra_approvals_required=5)
        request = make_good_request(engineer, datasets=[good_dataset(engineer, data_class)],
                                    intended_use="Drafting replies to support tickets, reviewed by an agent before sending. "
                                                 "<b>Markup typed here</b> stays text.")
        actions.submit_request(engineer, request)
        for approver in (legal[0], privacy[0], admins[0]):
            actions.decide_request(approver, request, "approve", comment=f"First round: {approver.username}.")
        actions.update_request(engineer, request, {"out_of_scope": "Any use without an agent reviewing the draft."})
        actions.submit_request(engineer, request)
        for approver in (legal[0], privacy[0], legal[1], legal[2], privacy[1], privacy[2], admins[1]):
            actions.decide_request(approver, request, "approve", comment=f"Second round: {approver.username}.",
                                   conditions="Internal use only." if approver is privacy[0] else "")
        request.refresh_from_db()
        assert request.run is not None and request.approvals.count() == 10, request.approvals.count()
        run = pack_factory.finish_run(request.run)
        audit = pack_factory.complete_audit(run, passed=True)
        charts = len(audit.charts) + run.artifacts.filter(kind="curve").count()
        have = len(evidence.gather(run, audit)["audit_trail"]["events"])
        with transaction.atomic():
            for i in range(max(0, args.events - have)):
                record_event(None, "trainingrun.progress", run, f"Run {run.pk}: step {i + 1}, loss {2.5 - i / 400:.3f}, ε {i / 130:.3f}",
                             {"step": i + 1})
        facts = evidence.gather(run, audit)
        events = len(facts["audit_trail"]["events"])
        print(f"set-up {time.perf_counter() - started:.1f} s: run {run.pk}, {len(facts['approvals'])} approvals, {events} audit events "
              f"in the excerpt ({AuditEvent.objects.count()} in the trail), {charts} charts", flush=True)

        # Phases of one build, then whole builds through the action.
        from governance.keys import public_key_fingerprint, public_key_pem

        t0 = time.perf_counter()
        facts = evidence.gather(run, audit)
        t1 = time.perf_counter()
        pdf, pages = evidence.render_pdf(facts, public_key_fingerprint(), public_key_pem())
        t2 = time.perf_counter()
        if args.profile:
            import cProfile
            import pstats

            profile = cProfile.Profile()
            profile.runcall(evidence.render_pdf, facts, public_key_fingerprint(), public_key_pem())
            pstats.Stats(profile).sort_stats("cumulative").print_stats(40)
        print(f"phases: gather {t1 - t0:.2f} s, WeasyPrint {t2 - t1:.2f} s ({pages} pages, {len(pdf) / 1024:.0f} KiB)", flush=True)
        best, pack, first = None, None, None
        for i in range(args.repeat):
            t = time.perf_counter()
            pack = actions.build_pack(privacy[0], run)
            elapsed = time.perf_counter() - t
            print(f"build {i + 1}: {elapsed:.2f} s, {pack.pages} pages, zip {pack.size_bytes / 1024:.0f} KiB, "
                  f"manifest {'identical' if first is None or pack.manifest == first else 'DIFFERENT'}", flush=True)
            first = first or pack.manifest
            best = elapsed if best is None else min(best, elapsed)
        data = evidence.read_pack_bytes(pack)
        if args.zip_out:
            args.zip_out.write_bytes(data)
        if args.pdf_out:
            import io
            import zipfile

            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                args.pdf_out.write_bytes(archive.read("report.pdf"))
        print(f"evidence pack: {best:.2f} s, {pack.pages} pages (target {TARGET_SECONDS:.0f} s: ratio {best / TARGET_SECONDS:.2f})")
        return 0
    finally:
        if args.keep:
            print(f"(kept {work})", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
