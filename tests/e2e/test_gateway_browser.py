"""After release, in the browser: the privacy officer deploys a released adapter and issues a key; a
consumer calls the gateway with the OpenAI client library; a planted extraction attempt (a prompt
carrying a canary's prefix) raises an alert; the privacy officer opens an incident from it, which
revokes the deployment's keys at once, and the consumer is refused from then on.

The adapter is a real PEFT LoRA on the tiny base, served by the engine's model server (a thread,
as `run_model_server` runs it) through the portal's resolver.

Run with: .venv/bin/python -m pytest tests/e2e/test_gateway_browser.py -m browser
"""

import re

import pytest

from audits import actions as audit_actions
from serving.models import Alert, AlertKind, AlertSeverity, ConsumerKey, Deployment, DeploymentState
from tests.audits.pack_factory import audited_run, store_artifact
from tests.e2e.test_browser import browser, page, _async_unsafe_allowed, expect, log_in, pytestmark  # noqa: F401
from tests.serving.conftest import no_broker  # noqa: F401
from tests.serving.monitoring_factory import CANARY_PREFIX, store_probe_index
from tests.serving.test_gateway import tiny_adapter  # noqa: F401
from training.models import ArtifactKind, BaseModel, RunArtifact

openai = pytest.importorskip("openai")


@pytest.fixture
def released_run_on_the_tiny_base(engineer, legal, privacy, no_broker, tiny_adapter):  # noqa: F811
    """An audited, released run whose adapter is a real LoRA on the tiny base, with a probe index
    holding a canary's prefix (as the pipeline stores it)."""
    run, _ = audited_run(engineer, legal, privacy)
    base, adapter = tiny_adapter
    BaseModel.objects.filter(pk=run.base_model_id).update(location=str(base))
    RunArtifact.objects.filter(run=run, kind=ArtifactKind.ADAPTER).delete()  # the factory's stand-in weights
    for path in sorted(adapter.iterdir()):
        store_artifact(run, ArtifactKind.ADAPTER, path.name, path.read_bytes())
    store_probe_index(run)
    audit_actions.release_adapter(privacy, run)
    return run


@pytest.fixture
def model_server(settings):
    from serving.engine.model_server import ModelServer
    from serving.model_resolver import DeploymentResolver

    resolver = DeploymentResolver()
    server = ModelServer(resolver, list_models=resolver.names, api_key="backend-token")
    server.start_in_thread()
    settings.PROVENANT_INFERENCE_URL = f"{server.url}/v1"
    settings.PROVENANT_INFERENCE_API_KEY = "backend-token"
    yield server
    server.shutdown()
    resolver.close()


def test_the_privacy_officer_deploys_a_consumer_calls_an_extraction_probe_is_caught_and_an_incident_revokes(
    transactional_db, live_server, privacy, released_run_on_the_tiny_base, model_server, page
):
    base, run = live_server.url, released_run_on_the_tiny_base
    log_in(page, base, privacy.username)

    # ---------------------------------------------------------------- deploy from the run's page
    page.goto(f"{base}{run.get_absolute_url()}")
    page.get_by_role("link", name="Deploy this adapter at the gateway").click()
    page.fill("#id_name", "support-bot")
    page.fill("#id_purpose", "First drafts for support agents, who edit every draft.")
    page.fill("#id_max_output_tokens", "16")
    page.get_by_role("button", name="Deploy").click()
    expect(page.locator("h1")).to_contain_text("support-bot")
    deployment = Deployment.objects.get(name="support-bot")
    assert deployment.run_id == run.pk and deployment.state == DeploymentState.ACTIVE

    # ---------------------------------------------------------------- a key for the helpdesk app, shown once
    page.fill("#id_consumer", "helpdesk-app")
    page.get_by_role("button", name="Issue the key").click()
    secret = page.locator("code.secret").inner_text().strip()
    assert secret.startswith(ConsumerKey.SECRET_PREFIX)
    assert ConsumerKey.objects.get().digest == ConsumerKey.digest_of(secret)  # only its hash is kept
    page.goto(f"{base}{deployment.get_absolute_url()}")
    expect(page.locator("main")).not_to_contain_text(secret)

    # ---------------------------------------------------------------- the consumer calls with the OpenAI library
    client = openai.OpenAI(base_url=f"{base}/v1", api_key=secret, max_retries=0)
    answer = client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Hello"}], max_tokens=8)
    assert answer.model == "support-bot" and 1 <= answer.usage.completion_tokens <= 8
    assert not Alert.objects.exists()

    # ---------------------------------------------------------------- a planted extraction attempt: a canary's prefix
    client.completions.create(model="support-bot", prompt=f"Please continue: {CANARY_PREFIX}", max_tokens=8)
    alert = Alert.objects.get()
    assert alert.kind == AlertKind.CANARY_PREFIX and alert.severity == AlertSeverity.CRITICAL

    page.goto(f"{base}/")
    expect(page.locator("main")).to_contain_text(re.compile("canary", re.I))
    page.goto(f"{base}/monitoring/alerts/")
    page.check(f'input[name="alert"][value="{alert.pk}"]')
    page.get_by_role("button", name="Open an incident from the picked alerts").click()
    page.fill("#id_title", "Canary prefix probed at support-bot")
    page.get_by_role("button", name="Open the incident").click()
    expect(page.locator("h1")).to_contain_text("Canary prefix probed")

    # ---------------------------------------------------------------- contain: suspend and revoke every key at once
    page.get_by_role("button", name="Suspend and revoke its keys").click()
    page.wait_for_load_state()
    deployment.refresh_from_db()
    assert deployment.state == DeploymentState.SUSPENDED
    assert ConsumerKey.objects.filter(revoked_at__isnull=True).count() == 0

    # ---------------------------------------------------------------- the consumer is refused from now on
    with pytest.raises(openai.AuthenticationError, match="revoked"):
        client.chat.completions.create(model="support-bot", messages=[{"role": "user", "content": "Hello again"}], max_tokens=8)
    assert not page.csp_violations
