"""A training request from draft to queued run, through headless Chromium against the live server:
the engineer drafts it (the findings follow the form) and submits it, legal counsel approves it from
the inbox, the privacy officer approves it and the run is queued.

Run with: .venv/bin/python -m pytest tests/e2e/test_request_story.py -m browser
"""

import shutil
import urllib.request

import pytest

from governance.models import RequestState, TrainingRequest
from tests.e2e.test_browser import PASSWORD, CHROMIUM, _async_unsafe_allowed, browser, expect, page  # noqa: F401 - fixtures
from tests.governance.request_factory import good_base_model, good_compute_target, good_dataset

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM} (make browser-deps)"),
]


def log_in(page, base, user):
    page.goto(f"{base}/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{base}/")
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


def test_a_request_is_drafted_submitted_approved_twice_and_queued(
    transactional_db, live_server, engineer, legal, privacy, page, monkeypatch, tmp_path  # noqa: F811 - fixture
):
    from training import runs

    monkeypatch.setattr(runs, "enqueue_run", lambda run, queue="gpu": None)  # the live server runs in this process
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
    assert page.csp_violations == [], "the pages broke their own Content Security Policy"
