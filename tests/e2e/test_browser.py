"""The privacy officer's first afternoon, driven through headless Chromium against the live server.

Run with: .venv/bin/python -m pytest tests/e2e/test_browser.py -m browser
Chromium comes from Debian (/usr/bin/chromium), not from `playwright install`.
"""

import datetime as dt
import os
import re
import shutil

import pytest
from django.utils import timezone

from governance import models as m

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect

CHROMIUM = os.environ.get("PROVENANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]
PASSWORD = "correct-horse-battery-9"  # what tests/conftest.py gives every persona

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(shutil.which(CHROMIUM) is None, reason=f"no Chromium at {CHROMIUM} (make browser-deps)"),
]


@pytest.fixture(scope="module")
def _async_unsafe_allowed():
    """Playwright's sync API keeps an asyncio loop running on the main thread, so Django would refuse
    the ORM calls the fixtures make (creating personas, flushing the database) while it is up."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(_async_unsafe_allowed):
    with playwright_sync.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(10_000)
    page = context.new_page()
    page.csp_violations = []
    page.on("console", lambda msg: "Content Security Policy" in msg.text and page.csp_violations.append(msg.text))
    yield page
    context.close()


def log_in(page, base_url, username):
    """The password, then, for legal, privacy and admin (who need a second factor) or anyone with an
    authenticator, the code it shows now, computed from the device's key (governance.mfa)."""
    from django.contrib.auth import get_user_model
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from governance import mfa
    from tests.conftest import second_factor_device, totp_code

    user = get_user_model().objects.get(username=username)
    device = second_factor_device(user) if mfa.requires_second_factor(user) else TOTPDevice.objects.filter(user=user).first()
    page.goto(f"{base_url}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.get_by_role("button", name="Log in").click()
    if device is not None:
        page.wait_for_url(re.compile(r"/account/second-factor/verify/"))
        TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # a second login in one 30-second step reuses the code
        page.fill("#id_code", totp_code(device))
        page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{base_url}/")
    expect(page.locator("header .who")).to_contain_text(user.get_full_name() or username)


def save(page):
    page.locator("main form").get_by_role("button", name="Save").click()
    page.wait_for_load_state()


def field_error(page, field):
    """The error paragraph inside the same .field block as the input it is about."""
    block = page.locator(f"div.field:has(#id_{field})")
    expect(block).to_have_class(re.compile(r"\bhas-error\b"))
    return block.locator(f"p.error#id_{field}_error")


def test_privacy_officer_records_a_data_class_a_processor_and_its_dpa(
    transactional_db, live_server, privacy, page, tmp_path
):
    base = live_server.url
    log_in(page, base, privacy.username)

    # ---------------------------------------------------------------- a data class, first with a mistake
    page.goto(f"{base}/governance/data-classes/new/")
    expect(page.locator("h1")).to_have_text("New data class")
    page.fill("#id_name", "Clinical notes")
    page.fill("#id_description", "Free-text notes written by clinicians during consultations.")
    page.select_option("#id_tier", "restricted")
    for value in ("personal", "special_category"):
        page.check(f'input[name="categories"][value="{value}"]')
    for value in ("GDPR", "HIPAA"):
        page.check(f'input[name="regulations"][value="{value}"]')
    page.select_option("#id_fine_tuning_use", "allowed")
    page.check("#id_redaction_required")
    page.check("#id_dp_required")
    page.fill("#id_max_epsilon", "")  # differential privacy required, but no ε: refused
    page.fill("#id_max_delta", "0.00001")
    page.check('input[name="allowed_compute_kinds"][value="on_premises"]')
    page.check('input[name="allowed_compute_kinds"][value="private_cloud"]')
    page.fill("#id_allowed_regions", "eu-west-1, eu-central-1")
    page.fill("#id_retention_days", "365")
    page.fill("#id_extra_approvals_required", "1")
    save(page)

    assert page.url == f"{base}/governance/data-classes/new/", "an invalid form must not redirect"
    expect(field_error(page, "max_epsilon")).to_contain_text("Set a maximum ε")
    expect(page.locator("p.error")).to_have_count(1)
    assert not m.DataClass.objects.exists()
    # What was typed survives the round trip.
    expect(page.locator("#id_name")).to_have_value("Clinical notes")
    expect(page.locator("#id_tier")).to_have_value("restricted")
    expect(page.locator('input[name="regulations"][value="HIPAA"]')).to_be_checked()
    expect(page.locator("#id_allowed_regions")).to_have_value("eu-west-1, eu-central-1")

    page.fill("#id_max_epsilon", "4")
    save(page)
    data_class = m.DataClass.objects.get(name="Clinical notes")
    page.wait_for_url(f"{base}/governance/data-classes/{data_class.pk}/")
    expect(page.locator("ul.messages")).to_contain_text("Created Clinical notes.")
    assert data_class.tier == m.Tier.RESTRICTED
    assert data_class.categories == ["personal", "special_category"]
    assert data_class.regulations == ["GDPR", "HIPAA"]
    assert (data_class.dp_required, data_class.redaction_required) == (True, True)
    assert (data_class.max_epsilon, data_class.max_delta) == (4.0, 0.00001)
    assert data_class.allowed_compute_kinds == ["on_premises", "private_cloud"]
    assert data_class.allowed_regions == ["eu-west-1", "eu-central-1"]
    assert (data_class.retention_days, data_class.extra_approvals_required) == (365, 1)

    page.goto(f"{base}/governance/data-classes/")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="Clinical notes", exact=True))
    expect(row).to_have_count(1)
    expect(row.locator("td")).to_have_text(["Clinical notes", "Restricted", "Allowed for fine-tuning", "yes", "4.0", "GDPR, HIPAA"])

    # ---------------------------------------------------------------- the processor
    page.goto(f"{base}/governance/processors/new/")
    page.fill("#id_name", "Northwind GPU Cloud")
    page.fill("#id_legal_entity", "Northwind Compute SAS")
    page.fill("#id_country", "France")
    page.fill("#id_contact_email", "dpo@northwind.example")
    page.fill("#id_services", "Rents GPU nodes for fine-tuning runs.")
    save(page)
    processor = m.Processor.objects.get(name="Northwind GPU Cloud")
    page.wait_for_url(f"{base}/governance/processors/{processor.pk}/")
    expect(page.locator("ul.messages")).to_contain_text("Created Northwind GPU Cloud.")

    # ---------------------------------------------------------------- its DPA
    today = timezone.localdate()
    signed = today - dt.timedelta(days=14)
    page.goto(f"{base}/governance/dpas/new/")
    page.select_option("#id_processor", label="Northwind GPU Cloud")
    page.fill("#id_title", "GPU training DPA")
    page.fill("#id_version", "1")
    page.fill("#id_signed_on", signed.isoformat())
    page.fill("#id_effective_from", signed.isoformat())
    page.fill("#id_expires_on", (signed + dt.timedelta(days=365)).isoformat())
    page.fill("#id_subject_matter", "Fine-tuning language models on our support data.")
    page.fill("#id_duration", "One year from signature")
    page.fill("#id_nature_and_purpose", "Compute only: the processor runs our training jobs.")
    page.fill("#id_data_types", "Contact details, ticket text")
    page.fill("#id_data_subject_categories", "Customers")
    page.fill("#id_documented_instructions", "Only jobs we submit, as configured by us.")
    page.fill("#id_security_measures", "Encryption at rest and in transit; no egress from training hosts.")
    for box in ("confidentiality_commitment", "assists_with_data_subject_rights", "assists_with_security_and_dpia",
                "audit_rights", "no_retention_of_training_data", "no_training_on_customer_data"):
        page.check(f"#id_{box}")
    page.select_option("#id_deletion_at_end", "delete")
    page.fill("#id_breach_notification_hours", "24")
    page.fill("#id_processing_regions", "eu-west-1")
    save(page)
    dpa = m.DataProcessingAgreement.objects.get(title="GPU training DPA")
    page.wait_for_url(f"{base}/governance/dpas/{dpa.pk}/")
    assert dpa.processor == processor
    assert (dpa.signed_on, dpa.effective_from) == (signed, signed)
    assert dpa.processing_regions == ["eu-west-1"]
    assert dpa.in_force_on(today)

    page.goto(f"{base}/governance/dpas/")
    row = page.locator("tbody tr", has=page.get_by_role("link", name="GPU training DPA v1"))
    expect(row).to_have_count(1)
    expect(row.locator("td").nth(1)).to_have_text("Northwind GPU Cloud")
    expect(row.locator("td").last).to_have_text("in force")  # exact: not "not in force: …"

    screenshot = tmp_path / "dpa-list.png"
    page.screenshot(path=screenshot, full_page=True)
    assert screenshot.stat().st_size > 0

    assert page.csp_violations == [], "the pages broke their own Content Security Policy"
