"""A training request from draft to a verified evidence pack, through headless Chromium against the
live server: the engineer drafts it (the findings follow the form) and submits it, legal counsel
approves it from the inbox, the privacy officer approves it and the run is queued. Training and the
audit are seeded (tests/audits/pack_factory.py: no model is trained), then the adapter released and
an evidence pack built and shared with the regulator; the engineer downloads the released adapter,
and the regulator opens the shared pack, downloads it and verifies it on the verification page.

The live server answers outside any test transaction: every page here is on the real path.

Run with: .venv/bin/python -m pytest tests/e2e/test_request_story.py -m browser
"""

import hashlib
import io
import shutil
import urllib.request
import zipfile
from pathlib import Path

import pytest

from governance.models import AuditEvent
from workflow.models import RequestState, TrainingRequest
from tests.e2e.test_browser import PASSWORD, CHROMIUM, _async_unsafe_allowed, browser, expect, page  # noqa: F401 - fixtures
from tests.e2e.test_browser import log_in as browser_log_in
from tests.e2e.test_real_path import enqueued  # noqa: F401 - fixture: no message reaches a broker
from tests.governance.request_factory import good_base_model, good_compute_target, good_dataset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM} (make browser-deps)"),
]


def log_in(page, base, user):
    browser_log_in(page, base, user.username)  # the password, then the second factor for legal and privacy
    expect(page.locator("header .who")).to_contain_text(user.get_full_name() or user.username)


def log_out(page):
    page.locator("header .who").get_by_role("button", name="Log out").click()
    page.wait_for_load_state()


def approve_from_inbox(page, base, title, comment):
    page.goto(f"{base}/governance/requests/inbox/")
    page.get_by_role("link", name=title).click()
    page.check('input[name="decision"][value="approve"]')
    page.fill("#id_comment", comment)
    page.get_by_role("button", name="Record my decision").click()
    page.wait_for_load_state()


def download(page, link_name: str, folder: Path) -> Path:
    """Click the link and keep the file the browser receives, under the name the server gave it."""
    with page.expect_download() as info:
        page.get_by_role("link", name=link_name).click()
    path = folder / info.value.suggested_filename
    info.value.save_as(path)
    return path


def seed_released_and_shared(run, privacy, regulator):
    """What the workers and the privacy officer do after dispatch, without training: the run
    trained and audited (fake figures, a fake adapter), the adapter released, a pack built and
    shared with the regulator."""
    from audits.actions import release_adapter
    from audits.sharing import share_pack
    from tests.audits.pack_factory import complete_audit, finish_run
    from workflow.actions import build_pack

    run = finish_run(run)
    complete_audit(run)
    release_adapter(privacy, run)
    pack = build_pack(privacy, run)
    share_pack(privacy, pack, regulator, note="Annual review")
    return run, pack


def test_a_request_goes_from_draft_to_a_downloaded_adapter_and_a_verified_pack(
    transactional_db, live_server, engineer, legal, privacy, regulator, page, enqueued, tmp_path  # noqa: F811 - fixture
):
    dataset, base_model, target = good_dataset(engineer), good_base_model(), good_compute_target()
    base, title = live_server.url, "Support reply drafts"
    # The first request imports the redaction engine (presidio, seconds on a busy machine): not the browser's wait.
    urllib.request.urlopen(f"{base}/login/", timeout=120).close()

    # ---------------------------------------------------------------- the engineer drafts and submits
    log_in(page, base, engineer)
    page.get_by_role("link", name="Requests", exact=True).click()
    page.get_by_role("link", name="New training request").click()
    findings = page.locator("#findings")
    expect(findings).to_contain_text("Choose a base model")
    page.fill("#id_title", title)
    page.fill("#id_intended_use", "Drafting replies to support tickets, reviewed by an agent before sending.")
    page.select_option("#id_base_model", label=base_model.name)
    page.check(f'input[name="datasets"][value="{dataset.pk}"]')
    page.fill("#id_leak_definition", "Any customer name, e-mail address or account number appearing in output.")
    page.check('input[name="adversaries"][value="external_attacker"]')
    page.check('input[name="audience"][value="internal"]')
    page.select_option("#id_compute_target", label=target.name)
    page.fill("#id_target_epsilon", "4")
    expect(findings).to_contain_text("No blocker and no warning")

    page.uncheck("#id_dp")  # the data class requires DP: the panel says so while the form is edited
    expect(findings.locator("ul.blockers")).to_contain_text("requires differential privacy")
    page.screenshot(path=tmp_path / "request-form-blocker.png", full_page=True)
    page.check("#id_dp")
    expect(findings).to_contain_text("No blocker and no warning")

    page.get_by_role("button", name="Save draft").click()
    request = TrainingRequest.objects.get(title=title)
    page.wait_for_url(f"{base}{request.get_absolute_url()}")
    page.get_by_role("button", name="Submit for approval").click()
    expect(page.locator("ul.messages")).to_contain_text("Submitted")
    expect(page.locator(".state")).to_have_text("Submitted")
    log_out(page)

    # ---------------------------------------------------------------- legal counsel, then the privacy officer
    log_in(page, base, legal)
    expect(page.locator("main")).to_contain_text("Pending approvals (1)")
    approve_from_inbox(page, base, title, "The support contract covers drafting replies.")
    expect(page.locator(".state").first).to_have_text("In review")
    log_out(page)

    log_in(page, base, privacy)
    approve_from_inbox(page, base, title, "DP at ε = 4 with redaction is proportionate.")
    request.refresh_from_db()
    assert request.state == RequestState.QUEUED and request.run is not None
    expect(page.locator(".state").first).to_have_text("Queued")
    expect(page.get_by_role("link", name=f"Training run {request.run.pk}")).to_be_visible()
    expect(page.locator("main")).to_contain_text("has every approval it needs")  # the timeline

    screenshot = tmp_path / "request-queued.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0
    assert [m.name for m in enqueued if m.name.endswith("run_training")] == ["training.tasks.run_training"]
    log_out(page)

    # ---------------------------------------------------------------- trained, audited, released, packed, shared (seeded)
    run, pack = seed_released_and_shared(request.run, privacy, regulator)
    request.refresh_from_db()
    assert request.state == RequestState.RELEASED

    # ---------------------------------------------------------------- the engineer downloads the released adapter
    log_in(page, base, engineer)
    page.goto(f"{base}{request.get_absolute_url()}")
    page.get_by_role("link", name=f"Training run {run.pk}").click()
    adapter = download(page, "Download the adapter (PEFT, zip)", tmp_path)
    with zipfile.ZipFile(io.BytesIO(adapter.read_bytes())) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    stored = {a.name: a.sha256 for a in run.artifacts.filter(kind="adapter")}
    assert {"adapter_model.safetensors", "adapter_config.json"} <= set(stored)
    assert {name: hashlib.sha256(files[f"adapter/{name}"]).hexdigest() for name in stored} == stored
    assert files["adapter/SHA256SUMS"].decode().splitlines() == [f"{sha}  {name}" for name, sha in stored.items()]
    assert AuditEvent.objects.filter(action="adapter.downloaded", actor=engineer, object_id=str(run.pk)).count() == 1
    log_out(page)

    # ---------------------------------------------------------------- the regulator opens, downloads and verifies the pack
    log_in(page, base, regulator)
    page.get_by_role("link", name="Shared with me").click()
    page.get_by_role("link", name=f"Evidence pack {pack.pk}").click()
    expect(page.locator("h1")).to_contain_text(f"Evidence pack {pack.pk}")
    pack_file = download(page, "Download the pack (zip)", tmp_path)
    assert hashlib.sha256(pack_file.read_bytes()).hexdigest() == pack.sha256
    page.get_by_role("link", name="Verify a pack").click()
    page.set_input_files("#id_pack", pack_file)
    page.get_by_role("button", name="Verify").click()
    expect(page.locator("h2 .state-succeeded")).to_have_text("VALID")
    expect(page.locator("main")).not_to_contain_text("INVALID")
    for action in ("evidencepack.viewed", "evidencepack.downloaded"):
        assert AuditEvent.objects.filter(action=action, actor=regulator, object_id=str(pack.pk)).count() == 1, action

    assert AuditEvent.verify_chain().ok
    assert page.csp_violations == [], "the pages broke their own Content Security Policy"
