"""Every view that writes, on the real path: outside the test's transaction.

pytest-django runs a test inside a transaction, so the trail writer's "am I inside a transaction?"
check always passes there, and an action that forgot `@transaction.atomic` works in every test
and returns 500 in production (it happened: the released adapter's download). Here each test is
transactional (`django_db(transaction=True)`: the database is flushed instead, see
tests/conftest.py `_audit_triggers`), so a request runs as it does behind a real server: in
autocommit, each action opening its own transaction, `on_commit` callbacks firing.

`WRITES` is the table of every route and method that writes: each POST/PUT/PATCH/DELETE of the
pages and the REST API, and each GET that records a trail event (downloads, exports, pack
openings, review items); each row must succeed (2xx/3xx) and record the trail events it names.
`READS` holds the routes that only read; they, and the form pages of the writing routes, are
rendered on the real path too and must record nothing. Paths are written out, not reversed from
URL names, so that moving a view between apps does not change what is walked.
`test_every_route_is_walked` fails when a route (or a method of one) is in neither table.

The gateway's rows (`who="consumer"`) call /v1/ as an application does: its consumer key as a bearer
token, a JSON body, no session, against a fake OpenAI-compatible backend (tests/serving/conftest.py).
The gateway never lets a logging failure turn an answer into an error, so those rows also check
that the call was logged.

Nothing reaches a Celery broker (`enqueued`): on the real path `on_commit` fires, and the broker
configured at import is the checkout's `var/`, where a running demo's worker would take the job.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import json
import re
import string
import types
import uuid
import zipfile
from collections.abc import Callable
from functools import cached_property
from pathlib import Path

import pytest
from celery import Celery
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import URLResolver, get_resolver, resolve
from django.utils import timezone

from governance import forms as gforms
from governance import models as m
from tests.conftest import api_client_for, client_for, make_dpa, make_record, second_factor_device, totp_code

pytestmark = pytest.mark.django_db(transaction=True)

PDF = b"%PDF-1.7\nSIGNED-BY-BOTH-PARTIES\n%%EOF\n"
DATASET_LINES = b'{"text": "Order 1 arrived broken."}\n{"text": "Please reset my password."}\n'
PLANTED_PHONE = "555-010-4477"
FLAGGED_ORIGINAL = "Call Margaret Okonkwo on 555-010-4477 about the refund."


def model(label: str):
    """Models by app label: views and models are moving between apps, their labels stay."""
    return apps.get_model(label)


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(autouse=True)
def enqueued(monkeypatch):
    """Every Celery message a request would send, kept here instead of reaching a broker (a task's
    `apply_async` sends through `send_task` too)."""
    sent = []

    def send_task(app, name, args=None, kwargs=None, **options):
        sent.append(types.SimpleNamespace(name=name, args=tuple(args or ()), queue=options.get("queue")))
        return types.SimpleNamespace(id=str(uuid.uuid4()))

    monkeypatch.setattr(Celery, "send_task", send_task)
    return sent


@pytest.fixture(autouse=True)
def trail_writes(monkeypatch):
    """Each trail write, with whether it ran inside a transaction. Independent of the writer's own
    check, so the guard holds even if that check is weakened."""
    writes = []
    append = m.AuditEvent.append.__func__

    def recording_append(cls, **fields):
        writes.append((fields["action"], connection.in_atomic_block))
        return append(cls, **fields)

    monkeypatch.setattr(m.AuditEvent, "append", classmethod(recording_append))
    return writes


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory):
    """The tiny base model's directory (training.engine.tiny_base), built on first use only: the
    watermark detection row loads its tokenizer and config."""
    built = []

    def directory() -> Path:
        if not built:
            from training.engine.tiny_base import build_tiny_base

            built.append(build_tiny_base(tmp_path_factory.mktemp("real-path-tiny-base"), seed=0))
        return built[0]
    return directory


@pytest.fixture
def world(engineer, other_engineer, legal, privacy, regulator, admin_user, enqueued, settings, tiny_base):
    from serving import gateway

    gateway._filter_parts.cache_clear()  # per process and run id; the flush between tests reuses run ids
    made = World(enqueued, engineer=engineer, other_engineer=other_engineer, legal=legal, privacy=privacy, regulator=regulator,
                 admin_user=admin_user)
    made.settings, made.tiny_base = settings, tiny_base
    yield made
    if "backend" in made.__dict__:
        made.backend.close()
    gateway._filter_parts.cache_clear()


class World:
    """The records a walk needs, each made on first use (through the actions and the shared
    factories, never through the views under test), so that a row builds only what it names.
    The apps above governance are imported where used: a module that moves breaks its rows, not
    the collection of the whole table."""

    def __init__(self, enqueued, **personas):
        self.enqueued, self.personas = enqueued, personas
        for name, user in personas.items():
            setattr(self, name, user)

    @cached_property
    def engineer_api_token(self):
        from governance import users

        return users.rotate_api_token(self.engineer)[0]

    # -- governance records
    @cached_property
    def data_class(self):
        from tests.governance.request_factory import good_data_class

        return good_data_class()

    @cached_property
    def other_data_class(self):
        return make_record(self.privacy, m.DataClass(name="Public FAQ", tier=m.Tier.PUBLIC, max_epsilon=8.0))

    @cached_property
    def processor(self):
        return make_record(self.legal, m.Processor(name="Northwind GPU Cloud", contact_email="dpo@northwind.example"))

    @cached_property
    def attestation(self):
        today = timezone.localdate()
        return make_record(self.legal, m.Attestation(processor=self.processor, kind=m.AttestationKind.SOC2_TYPE2, issued_by="Auditor LLP",
                                                     issued_on=today - dt.timedelta(days=10), expires_on=today + dt.timedelta(days=300)))

    @cached_property
    def dpa(self):
        return make_record(self.legal, make_dpa(self.processor))

    @cached_property
    def dpa_with_document(self):
        from governance import actions
        from governance.uploads import encrypt_stream
        from governance.views import dpa_document_rules

        upload = encrypt_stream(io.BytesIO(PDF), dpa_document_rules()["document"], "dpa.pdf")
        return actions.attach_dpa_document(self.legal, self.dpa, upload)

    @cached_property
    def compute_target(self):
        from tests.governance.request_factory import good_compute_target

        return good_compute_target()

    @cached_property
    def redaction_rule(self):
        return make_record(self.privacy, m.RedactionRule(data_class=self.data_class, entity_type="CUSTOMER_ID", kind="pattern",
                                                         regex=r"\bCUST-\d{6}\b"))

    @cached_property
    def base_model(self):
        from tests.governance.request_factory import good_base_model

        return good_base_model()

    @cached_property
    def dataset(self):
        from tests.governance.request_factory import good_dataset

        return good_dataset(self.engineer, self.data_class)

    @cached_property
    def first_event(self):
        return m.AuditEvent.objects.order_by("sequence").first().sequence

    # -- requests, one in each state (a row acting on one leaves the others as they are)
    def _request(self, title):
        from tests.governance.request_factory import make_good_request

        return make_good_request(self.engineer, title=title, datasets=[self.dataset], base_model=self.base_model,
                                 compute_target=self.compute_target)

    def _submitted(self, title):
        from workflow import actions

        return actions.submit_request(self.engineer, self._request(title))

    @cached_property
    def draft_request(self):
        return self._request("Support reply drafts")

    @cached_property
    def submitted_request(self):
        return self._submitted("Ticket triage")

    @cached_property
    def request_approved_by_legal(self):
        from workflow import actions

        request = self._submitted("Ticket summaries")
        actions.decide_request(self.legal, request, "approve", comment="The support contract covers it.")
        return request

    @cached_property
    def queued_request(self):
        from workflow import actions

        request = self._submitted("Reply suggestions")
        actions.decide_request(self.legal, request, "approve", comment="The support contract covers it.")
        actions.decide_request(self.privacy, request, "approve", comment="Proportionate.")
        request.refresh_from_db()
        assert request.run is not None, "the last approval should have queued a run"
        return request

    @cached_property
    def queued_run(self):
        return self.queued_request.run

    # -- trained, audited, released; its model card and evidence pack
    @cached_property
    def audited_run(self):
        from tests.audits.pack_factory import complete_audit, finish_run

        run = finish_run(self.queued_run)
        complete_audit(run)
        return run

    @cached_property
    def card(self):
        from workflow import actions

        return actions.draft_model_card(self.audited_run)

    @cached_property
    def released_run(self):
        from audits import actions

        actions.release_adapter(self.privacy, self.audited_run)
        return self.audited_run

    @cached_property
    def curve(self):
        return self.audited_run.artifacts.get(name="loss.svg")

    @cached_property
    def audit(self):
        return self.audited_run.audits.get()

    @cached_property
    def pack(self):
        from workflow import actions

        return actions.build_pack(self.privacy, self.audited_run)

    @cached_property
    def pack_zip(self) -> bytes:
        from workflow import evidence

        return evidence.read_pack_bytes(self.pack)

    @cached_property
    def share(self):
        from audits import sharing

        return sharing.share_pack(self.privacy, self.pack, self.regulator, note="Annual review")

    # -- accounts and roles (governance.users)
    @cached_property
    def account(self):
        from governance import users

        return users.create_user(self.admin_user, username="nina", email="nina@example.test", base_url="http://testserver/")[0]

    @cached_property
    def deactivated_account(self):
        from governance import users

        return users.deactivate_user(self.admin_user, self.account, "Left the company.")

    @cached_property
    def pending_grant(self):
        from governance import roles, users

        return users.propose_role(self.admin_user, self.account, roles.PRIVACY, "Second privacy officer.")

    @cached_property
    def reset_link(self) -> list[str]:
        from governance import users

        users.issue_password_reset(self.admin_user, self.account, base_url="http://testserver/")
        self.account.refresh_from_db()  # the token covers the new (void) password
        return users.reset_path(self.account).strip("/").split("/")[-2:]  # what the mail holds

    @cached_property
    def reset_uid(self) -> str:
        return self.reset_link[0]

    @cached_property
    def reset_token(self) -> str:
        return self.reset_link[1]

    # -- redaction review
    @cached_property
    def review_item(self):
        RedactionReview = model("training.RedactionReview")
        text = "Patient Amelia Novak, DOB: 1984-03-12."
        item = RedactionReview(dataset=self.dataset, record_id="1", entity_type="PERSON", start=8, end=20, score=0.55,
                               recognizer="test", reason="low_confidence", snippet_offset=0)
        item.snippet_sealed = RedactionReview.seal_snippet(item.snippet_id, text)
        item.save()
        return item

    # -- second factors (governance.mfa)
    @cached_property
    def pending_authenticator(self):
        from governance import mfa

        return mfa.start_enrolment(self.other_engineer)

    @cached_property
    def engineer_authenticator(self):
        return second_factor_device(self.engineer)

    @cached_property
    def second_admin(self):
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group

        user = get_user_model().objects.create_user("ada", "ada@example.test", "correct-horse-battery-9", is_staff=True)
        user.groups.add(Group.objects.get(name="admin"))
        return user

    @cached_property
    def pending_second_factor_reset(self):
        from governance import mfa

        second_factor_device(self.privacy)
        return mfa.propose_reset(self.second_admin, self.privacy, "A new phone.")

    # -- serving: a deployment of the released adapter, its consumer keys, the gateway's backend
    @cached_property
    def deployment(self):
        from serving import actions

        return actions.deploy_adapter(self.privacy, self.released_run, name="support-bot", purpose="Answers support agents.",
                                      max_output_tokens=32)

    @cached_property
    def suspended_deployment(self):
        from serving import actions

        return actions.suspend_deployment(self.privacy, self.deployment, "Paused while the prompts are reviewed.")

    @cached_property
    def issued_key(self):
        from serving import actions

        return actions.issue_consumer_key(self.privacy, self.deployment, "helpdesk-app")

    @cached_property
    def consumer_key(self):
        return self.issued_key[0]

    @cached_property
    def consumer_secret(self) -> str:
        return self.issued_key[1]

    @cached_property
    def backend(self):
        """A fake OpenAI-compatible server behind the gateway (tests/serving/conftest.py), answering
        a fixed text; closed by the `world` fixture."""
        from tests.serving.conftest import FixedBackend

        backend = FixedBackend("The weather is fine today.")
        self.settings.PROVENANT_INFERENCE_URL = backend.url
        return backend

    @cached_property
    def leaking_backend(self):
        """The backend answering with an original value the run's redaction removed (planted in the
        run's keyed index of originals, as training.pipeline stores it)."""
        import json
        import os

        from tests.audits.pack_factory import store_artifact
        from training.engine.pii.value_index import ValueIndex
        from training.models import ArtifactKind

        key = os.urandom(32)
        originals, surrogates = ValueIndex(key), ValueIndex(key)
        originals.add(PLANTED_PHONE)
        store_artifact(self.deployment.run, ArtifactKind.PII_INDEX, "pii_index.json",
                       json.dumps({"key": key.hex(), "originals": originals.to_dict(), "surrogates": surrogates.to_dict()}).encode())
        self.backend.text = f"Sure, call the customer on {PLANTED_PHONE} about the refund."
        return self.backend

    @cached_property
    def flagged_output(self):
        """An answer the output filter masked, filed for review with its original sealed (as the
        gateway's query log does)."""
        from serving import actions
        from serving.models import QueryOutcome, QueryRecord

        record = QueryRecord.objects.create(deployment=self.deployment, key=self.consumer_key, consumer_pseudonym="c1",
                                            endpoint="chat.completions", outcome=QueryOutcome.MASKED,
                                            output_redacted="Call <PHONE_NUMBER> about the refund.", findings={"PHONE_NUMBER": 1})
        return actions.flag_output(record, FLAGGED_ORIGINAL)

    # -- incidents (incidents.actions) and watermark detection
    @cached_property
    def alert(self):
        from serving.models import AlertKind, AlertSeverity
        from serving.monitoring import raise_alert

        return raise_alert(self.deployment, AlertKind.CANARY_PREFIX, AlertSeverity.CRITICAL, "A prompt reproduced a canary's prefix.",
                           consumer_pseudonym="c1")

    @cached_property
    def incident(self):
        from incidents.actions import open_incident

        return open_incident(self.privacy, "Canary prefix probed", "high", deployments=[self.deployment])

    @cached_property
    def incident_pack(self):
        from incidents.actions import build_incident_pack

        return build_incident_pack(self.privacy, self.incident)

    @cached_property
    def deployment_on_a_real_base(self):
        """The deployment, its run's base model a real model directory: detection loads the
        tokenizer and config of every watermarked deployment's base."""
        model("training.BaseModel").objects.filter(pk=self.deployment.run.base_model_id).update(location=str(self.tiny_base()))
        return self.deployment


# --------------------------------------------------------------------------- the table


@dataclasses.dataclass(frozen=True)
class Step:
    """One route and method, walked by `who`. `path` names world records in braces ("{dataset}"
    is the dataset's pk). `events`: the trail actions the request must record (none: it must
    record nothing). `check`, if given, looks at the response and the world afterwards."""

    name: str
    method: str
    path: str
    who: str
    data: Callable | dict | None = None
    events: tuple[str, ...] = ()
    api: bool = False
    format: str = "json"
    check: Callable | None = None
    given: tuple[str, ...] = ()  # world records to make first, beside those in the path

    def url(self, world) -> str:
        return self.path.format(**{name: _pk(getattr(world, name)) for name in placeholders(self.path)})


def placeholders(path: str) -> list[str]:
    return [name for _, name, _, _ in string.Formatter().parse(path) if name]


def _pk(value):
    return getattr(value, "pk", value)


def form_data(form, **changes) -> dict:
    """What a browser posts for `form` as rendered (its initial values), with `changes`."""
    data = {}
    for name in form.fields:
        value = form[name].value()
        if isinstance(value, bool):
            if value:
                data[name] = "on"
        elif isinstance(value, (list, tuple)):
            data[name] = [str(_pk(v)) for v in value]
        elif isinstance(value, (dt.date, dt.datetime)):
            data[name] = value.isoformat()
        elif value is not None:
            data[name] = str(_pk(value))
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def record_form(form_class, instance, **changes):
    """The edit form of `instance` as posted (to its own edit page, or to /new/ as a copy)."""
    return lambda w: form_data(form_class(instance=getattr(w, instance)), **changes)


def api_copy(path: str, **changes):
    """The API's own representation of a record, changed (None: left out), as a script would
    send it back."""
    def data(world):
        body = api_client_for(world.privacy).get(path.format(**{n: _pk(getattr(world, n)) for n in placeholders(path)})).json()
        return {k: v for k, v in {**body, **changes}.items() if v is not None}
    return data


def named(content: bytes, name: str):
    handle = io.BytesIO(content)
    handle.name = name
    return handle


def request_form(w, **changes):
    data = {
        "title": "Support reply drafts", "intended_use": "Drafting replies to support tickets, reviewed by an agent.",
        "out_of_scope": "Sending replies without review.", "base_model": w.base_model.pk, "datasets": [w.dataset.pk],
        "leak_definition": "Any customer name or account number appearing in output.", "adversaries": ["external_attacker"],
        "audience": "internal", "lora_r": 8, "lora_alpha": 16, "target_modules": "", "epochs": 0.5, "learning_rate": 0.001,
        "batch_size": 16, "max_length": 64, "dp": "on", "target_epsilon": 4, "target_delta": "", "max_grad_norm": 1.0,
        "accountant": "prv", "privacy_unit": "record", "subject_field": "", "compute_target": w.compute_target.pk,
        "redaction": "on", "canary_count": 10, "canary_repetitions": 1, "canary_length": 8,
    }
    data.update(changes)
    return data


def request_body(w, **changes):
    body = {"title": "Support reply drafts", "intended_use": "Drafting replies to support tickets, reviewed by an agent.",
            "base_model": w.base_model.pk, "compute_target": w.compute_target.pk, "datasets": [w.dataset.pk],
            "leak_definition": "Any customer name or account number appearing in output.", "adversaries": ["external_attacker"],
            "audience": "internal", "settings": {"training": {"epochs": 0.5, "target_epsilon": 4.0}}}
    return {**body, **changes}


def dataset_fields(**changes):
    return {"name": "Chat export", "description": "Support chats, Q3.", "file_format": "jsonl", "text_field": "text", "source": "CRM export",
            "lawful_basis": "contract", "segment": "train", **changes}


def _record_rows():
    """Create (a copy under another name) and edit, on the page and through the API (POST, PUT,
    PATCH), for each governance record type."""
    rows = []
    for prefix, instance, form_class, who, label, copy, patch in [
        ("data-classes", "data_class", gforms.DataClassForm, "privacy", "dataclass", {"name": "Support tickets 2"},
         {"description": "Revised"}),
        ("processors", "processor", gforms.ProcessorForm, "legal", "processor", {"name": "Southwind Compute"}, {"services": "GPUs"}),
        ("attestations", "attestation", gforms.AttestationForm, "legal", "attestation", {"reference": "SOC2-2026"},
         {"issued_by": "Other LLP"}),
        ("compute-targets", "compute_target", gforms.ComputeTargetForm, "privacy", "computetarget", {"name": "Lyon GPUs"},
         {"region": "on-prem-lyon"}),
        ("redaction-rules", "redaction_rule", gforms.RedactionRuleForm, "privacy", "redactionrule", {"entity_type": "ACCOUNT_ID"},
         {"score": 0.7}),
        ("dpas", "dpa", gforms.DataProcessingAgreementForm, "legal", "dataprocessingagreement", {"title": "Inference DPA"},
         {"duration": "Two years"}),
    ]:
        detail = f"/api/{prefix}/{{{instance}}}/"
        rows += [
            Step(f"page: create {label}", "POST", f"/governance/{prefix}/new/", who, record_form(form_class, instance, **copy),
                 (f"{label}.created",)),
            Step(f"page: edit {label}", "POST", f"/governance/{prefix}/{{{instance}}}/edit/", who,
                 record_form(form_class, instance), (f"{label}.updated",)),
            Step(f"api: create {label}", "POST", f"/api/{prefix}/", who, api_copy(detail, **copy), (f"{label}.created",), api=True),
            Step(f"api: replace {label}", "PUT", detail, who, api_copy(detail), (f"{label}.updated",), api=True),
            Step(f"api: change {label}", "PATCH", detail, who, patch, (f"{label}.updated",), api=True),
        ]
    return rows


def _adapter_zip_holds_the_adapter(response, world):
    with zipfile.ZipFile(io.BytesIO(response.body)) as archive:
        names = set(archive.namelist())
    assert {"adapter/adapter_model.safetensors", "adapter/adapter_config.json", "adapter/SHA256SUMS"} <= names


def _pack_is_valid(response, world):
    assert '<span class="state-succeeded">VALID</span>' in response.body.decode()


def _pack_zip_is_the_pack(response, world):
    assert response.body == world.pack_zip


def _dispatched_run_is_enqueued_once_committed(response, world):
    run = model("governance.TrainingRequest").objects.get(pk=world.request_approved_by_legal.pk).run
    assert [(e.name, e.args) for e in world.enqueued if e.name.endswith("run_training")] == [("training.tasks.run_training", (run.pk,))]


def _review_ticket(world) -> str:
    """The signed reference the review item's justification form carries (governance.mfa)."""
    from governance import mfa

    what = f"the original text around a {world.review_item.entity_type} detection in record {world.review_item.record_id}"
    return mfa.justification_ticket(types.SimpleNamespace(user=world.privacy), world.review_item, what,
                                    f"/training/review/{world.review_item.pk}/")


def _the_justified_item_opens(response, world):
    opened = response.client.get(response.url)
    assert opened.status_code == 200 and "<mark>Amelia Novak</mark>" in opened.content.decode()


def _flagged_ticket(world) -> str:
    """The signed reference the flagged output's page offers with its justification form."""
    page = client_for(world.privacy).get(f"/serving/flagged/{world.flagged_output.pk}/").content.decode()
    return re.search(r'name="ticket" value="([^"]+)"', page).group(1)


def _the_justified_original_opens(response, world):
    opened = response.client.get(response.url)
    assert opened.status_code == 200 and FLAGGED_ORIGINAL in opened.content.decode()


def _latest_query(world):
    return model("serving.QueryRecord").objects.order_by("-pk").first()


def _the_answer_is_the_backends_and_logged(response, world):
    assert json.loads(response.body)["choices"][0]["message"]["content"] == world.backend.text
    record = _latest_query(world)
    assert (record.deployment_id, record.key_id, record.outcome) == (world.deployment.pk, world.consumer_key.pk, "answered")


def _the_original_is_masked_and_filed(response, world):
    assert PLANTED_PHONE not in response.body.decode() and "refund" in json.loads(response.body)["choices"][0]["text"]
    record = _latest_query(world)
    assert record.outcome == "masked" and record.original_hits >= 1
    assert model("serving.FlaggedOutput").objects.filter(query=record).exists()


def _the_stream_is_logged(response, world):
    assert b"data: [DONE]" in response.body
    record = _latest_query(world)
    assert record.streamed and record.outcome == "answered" and record.completion_tokens == len(world.backend.text.split(" "))


def _the_key_is_shown_once(response, world):
    key = model("serving.ConsumerKey").objects.get(consumer="dashboard-app")
    assert key.prefix in response.body.decode() and response["Cache-Control"] == "no-store"


def _the_api_shows_the_secret(response, world):
    body = json.loads(response.body)
    assert body["secret"].startswith(body["prefix"]) and response["Cache-Control"] == "no-store"


def _a_verdict_is_shown(response, world):
    assert "Result:" in response.body.decode()


def _set_password_through_the_link(response, world):
    """The link moves its token into the session and redirects to the form; the user posts it."""
    form_url = response.url
    assert form_url.endswith("/set-password/")
    done = response.client.post(form_url, {"new_password1": "Nina-chose-this-9", "new_password2": "Nina-chose-this-9"})
    assert done.status_code == 302
    world.account.refresh_from_db()
    assert world.account.check_password("Nina-chose-this-9")


WRITES: list[Step] = [
    Step("page: create a user", "POST", "/governance/users/new/", "admin_user", {"username": "omar", "email": "omar@example.test"},
         ("user.created",)),
    Step("page: grant or propose a role", "POST", "/governance/users/{account}/propose/", "admin_user",
         {"role": "engineer", "reason": "Joins the support-bot team."}, ("role.granted",)),
    Step("page: revoke a role", "POST", "/governance/users/{other_engineer}/revoke/", "admin_user",
         {"role": "engineer", "reason": "Moved to sales."}, ("role.revoked",)),
    Step("page: deactivate a user", "POST", "/governance/users/{account}/deactivate/", "admin_user", {"reason": "Left."},
         ("user.deactivated",)),
    Step("page: reactivate a user", "POST", "/governance/users/{deactivated_account}/reactivate/", "admin_user",
         events=("user.reactivated",)),
    Step("page: issue a password reset link", "POST", "/governance/users/{account}/reset/", "admin_user",
         events=("user.password_reset_issued",)),
    Step("page: change a user's e-mail address", "POST", "/governance/users/{other_engineer}/email/", "admin_user",
         {"email": "eddie.new@example.test"}, ("user.email_changed",)),
    Step("page: confirm a role grant", "POST", "/governance/role-grants/{pending_grant}/confirm/", "privacy", events=("role.granted",)),
    Step("page: decline a role grant", "POST", "/governance/role-grants/{pending_grant}/decline/", "privacy", events=("role.declined",)),
    Step("page: set a password through a reset link", "GET", "/account/reset/{reset_uid}/{reset_token}/", "anonymous",
         events=("user.password_set",), check=_set_password_through_the_link),
    Step("page: the reset form without its link's session (records nothing)", "POST", "/account/reset/{reset_uid}/set-password/",
         "anonymous", {"new_password1": "Nina-chose-this-9", "new_password2": "Nina-chose-this-9"}),
    # ------------------------------------------------------------------ portal
    Step("login", "POST", "/login/", "anonymous", {"username": "erin", "password": "correct-horse-battery-9"}),  # conftest's persona
    Step("logout", "POST", "/logout/", "engineer"),
    Step("api token: rotate", "POST", "/account/token/", "engineer", events=("user.api_token_created",)),
    # ------------------------------------------------------------------ second factor (governance.mfa)
    Step("page: start setting up an authenticator", "POST", "/account/second-factor/", "engineer", {"action": "start"},
         ("mfa.enrolment_started",)),
    Step("page: confirm a new authenticator", "POST", "/account/second-factor/", "other_engineer",
         lambda w: {"action": "confirm", "code": totp_code(w.pending_authenticator)}, ("mfa.enrolled",)),
    Step("page: make new recovery codes", "POST", "/account/second-factor/", "privacy", {"action": "regenerate"},
         ("mfa.recovery_codes_regenerated",)),
    Step("page: confirm a code (records nothing)", "POST", "/account/second-factor/verify/", "privacy",
         lambda w: {"code": totp_code(second_factor_device(w.privacy)), "next": "/"}),
    Step("page: reset an engineer's second factor", "POST", "/governance/users/{engineer}/second-factor/", "admin_user",
         {"reason": "Lost phone."}, ("mfa.device_reset",), given=("engineer_authenticator",)),
    Step("page: confirm a second-factor reset", "POST", "/governance/second-factor-resets/{pending_second_factor_reset}/confirm/",
         "admin_user", events=("mfa.device_reset",)),
    Step("page: decline a second-factor reset", "POST", "/governance/second-factor-resets/{pending_second_factor_reset}/decline/",
         "admin_user", events=("mfa.reset_declined",)),
    Step("api token: revoke", "POST", "/account/token/", "engineer", {"revoke": "1"}, events=("user.api_token_revoked",),
         given=("engineer_api_token",)),
    # ------------------------------------------------------------------ governance records
    *_record_rows(),
    Step("page: attach the signed DPA document", "POST", "/governance/dpas/{dpa}/edit/", "legal",
         lambda w: {**form_data(gforms.DataProcessingAgreementForm(instance=w.dpa)), "document": named(PDF, "dpa.pdf")},
         ("dataprocessingagreement.updated", "dataprocessingagreement.document_attached")),
    Step("page: download the signed DPA document", "GET", "/governance/dpas/{dpa_with_document}/document/", "legal",
         events=("dataprocessingagreement.downloaded",)),
    # ------------------------------------------------------------------ datasets
    Step("page: upload a dataset", "POST", "/governance/datasets/new/", "engineer",
         lambda w: {**dataset_fields(), "file": named(DATASET_LINES, "chats.jsonl")}, ("dataset.uploaded",)),
    Step("page: edit a dataset", "POST", "/governance/datasets/{dataset}/edit/", "engineer",
         lambda w: form_data(gforms.DatasetEditForm(instance=w.dataset, user=w.engineer), description="Q3 tickets."), ("dataset.updated",)),
    Step("page: classify a dataset named by a submitted request", "POST", "/governance/datasets/{dataset}/edit/", "privacy",
         lambda w: form_data(gforms.DatasetEditForm(instance=w.dataset, user=w.privacy),
                             data_classes=[str(w.data_class.pk), str(w.other_data_class.pk)]),
         ("dataset.updated", "dataset.classified", "trainingrequest.reopened"), given=("submitted_request",)),
    Step("page: share a dataset", "POST", "/governance/datasets/{dataset}/share/", "engineer",
         lambda w: {"username": w.other_engineer.username}, ("dataset.shared",)),
    Step("page: shred a dataset", "POST", "/governance/datasets/{dataset}/shred/", "engineer",
         lambda w: {"confirm_name": w.dataset.name, "reason": "The customer withdrew consent."}, ("dataset.shredded",)),
    Step("page: ask for a review scan", "POST", "/governance/datasets/{dataset}/review-scan/", "engineer",
         events=("dataset.review_scan_requested",)),
    Step("page: export the audit trail", "GET", "/governance/audit-trail/export.jsonl", "privacy", events=("audit_trail.exported",),
         given=("data_class",)),
    Step("api: upload a dataset", "POST", "/api/datasets/", "engineer",
         lambda w: {**dataset_fields(), "file": named(DATASET_LINES, "chats.jsonl")}, ("dataset.uploaded",), api=True, format="multipart"),
    Step("api: replace a dataset's description", "PUT", "/api/datasets/{dataset}/", "engineer",
         api_copy("/api/datasets/{dataset}/", description="Q3 tickets.", data_classes=None), ("dataset.updated",), api=True),
    Step("api: classify a dataset", "PATCH", "/api/datasets/{dataset}/", "privacy",
         lambda w: {"data_classes": [w.other_data_class.pk]}, ("dataset.updated", "dataset.classified"), api=True),
    Step("api: share a dataset", "POST", "/api/datasets/{dataset}/share/", "engineer",
         lambda w: {"username": w.other_engineer.username}, ("dataset.shared",), api=True),
    Step("api: shred a dataset", "POST", "/api/datasets/{dataset}/shred/", "engineer",
         lambda w: {"reason": "The customer withdrew consent."}, ("dataset.shredded",), api=True),
    # ------------------------------------------------------------------ training requests
    Step("page: draft a request", "POST", "/governance/requests/new/", "engineer", request_form, ("trainingrequest.created",)),
    Step("page: edit a request", "POST", "/governance/requests/{draft_request}/edit/", "engineer",
         lambda w: request_form(w, title="Support reply drafts v2"), ("trainingrequest.edited",)),
    Step("page: live findings (writes nothing)", "POST", "/governance/requests/findings/", "engineer", request_form),
    Step("page: submit a request", "POST", "/governance/requests/{draft_request}/submit/", "engineer",
         events=("trainingrequest.submitted",)),
    Step("page: approve a request", "POST", "/governance/requests/{submitted_request}/decide/", "legal",
         {"decision": "approve", "comment": "The support contract covers it."}, ("trainingrequest.approved",)),
    Step("page: the last approval queues the run", "POST", "/governance/requests/{request_approved_by_legal}/decide/", "privacy",
         {"decision": "approve", "comment": "Proportionate."},
         ("trainingrequest.approved", "trainingrequest.fully_approved", "trainingrun.created", "trainingrequest.dispatched"),
         check=_dispatched_run_is_enqueued_once_committed),
    Step("page: withdraw a request", "POST", "/governance/requests/{submitted_request}/withdraw/", "engineer",
         {"reason": "Wrong dataset."}, ("trainingrequest.withdrawn",)),
    Step("api: draft a request", "POST", "/api/requests/", "engineer", request_body, ("trainingrequest.created",), api=True),
    Step("api: edit a request", "PATCH", "/api/requests/{draft_request}/", "engineer", {"title": "Support reply drafts v2"},
         ("trainingrequest.edited",), api=True),
    Step("api: submit a request", "POST", "/api/requests/{draft_request}/submit/", "engineer", events=("trainingrequest.submitted",),
         api=True),
    Step("api: withdraw a request", "POST", "/api/requests/{submitted_request}/withdraw/", "engineer", {"reason": "Wrong dataset."},
         ("trainingrequest.withdrawn",), api=True),
    Step("api: approve a request", "POST", "/api/requests/{submitted_request}/approve/", "legal", {"comment": "Covered."},
         ("trainingrequest.approved",), api=True),
    Step("api: reject a request", "POST", "/api/requests/{submitted_request}/reject/", "legal",
         {"comment": "The contract does not cover training."}, ("trainingrequest.rejected",), api=True),
    Step("api: cancel a request's run", "POST", "/api/requests/{queued_request}/cancel/", "engineer",
         events=("trainingrun.cancel_requested",), api=True),
    Step("api: cancel a run", "POST", "/api/runs/{queued_run}/cancel/", "engineer", events=("trainingrun.cancel_requested",), api=True),
    # ------------------------------------------------------------------ runs, review queue, model cards
    Step("page: cancel a run", "POST", "/training/runs/{queued_run}/cancel/", "engineer", events=("trainingrun.cancel_requested",)),
    Step("page: open a review item: it asks why first (records nothing)", "GET", "/training/review/{review_item}/", "privacy"),
    Step("page: justify opening a review item, then open it", "POST", "/account/justify/", "privacy",
         lambda w: {"ticket": _review_ticket(w), "justification": "Checking a low-confidence detection for ticket PRIV-7."},
         ("access.justified", "redactionreview.viewed"), check=_the_justified_item_opens),
    Step("page: decide a review item", "POST", "/training/review/{review_item}/", "privacy", {"decision": "accepted"},
         ("redactionreview.accepted",)),
    Step("page: draft the model card", "POST", "/governance/runs/{audited_run}/model-card/draft/", "engineer",
         events=("modelcard.drafted",)),
    Step("page: edit the model card", "POST", "/governance/runs/{audited_run}/model-card/edit/", "engineer",
         lambda w: {key: f"{text}\n\nReviewed by the team." for key, text in w.card.sections.items()}, ("modelcard.edited",),
         given=("card",)),
    Step("page: approve the model card", "POST", "/governance/runs/{audited_run}/model-card/approve/", "privacy",
         lambda w: {"content_hash": w.card.compute_content_hash()}, ("modelcard.approved",), given=("card",)),
    Step("page: download the model card", "GET", "/governance/runs/{audited_run}/model-card/README.md", "engineer",
         events=("modelcard.downloaded",), given=("card",)),
    # ------------------------------------------------------------------ audits, release, evidence
    Step("page: audit again", "POST", "/audits/runs/{audited_run}/audit/", "engineer", events=("adapteraudit.queued",)),
    Step("page: release the adapter", "POST", "/audits/runs/{audited_run}/decision/", "privacy", {"decision": "release"},
         ("adapter.released",)),
    Step("page: block the adapter", "POST", "/audits/runs/{audited_run}/decision/", "privacy",
         {"decision": "block", "justification": "Not for this audience."}, ("adapter.blocked",)),
    Step("page: the engineer downloads the released adapter", "GET", "/audits/runs/{released_run}/adapter.zip", "engineer",
         events=("adapter.downloaded",), check=_adapter_zip_holds_the_adapter),
    Step("page: build an evidence pack", "POST", "/audits/runs/{audited_run}/pack/", "privacy", events=("evidencepack.built",)),
    Step("page: share a pack", "POST", "/audits/packs/{pack}/shares/", "privacy",
         lambda w: {"regulator": w.regulator.pk, "expires_on": "", "note": "Annual review"}, ("evidencepack.shared",)),
    Step("page: revoke a share", "POST", "/audits/shares/{share}/revoke/", "privacy", events=("evidencepack.share_revoked",)),
    Step("page: the regulator opens a shared pack", "GET", "/audits/packs/{pack}/", "regulator", events=("evidencepack.viewed",),
         given=("share",)),
    Step("page: the regulator downloads a shared pack", "GET", "/audits/packs/{pack}/pack.zip", "regulator",
         events=("evidencepack.downloaded",), check=_pack_zip_is_the_pack, given=("share", "pack_zip")),
    Step("page: the regulator verifies a pack (records nothing)", "POST", "/audits/verify/", "regulator",
         lambda w: {"pack": named(w.pack_zip, "pack.zip")}, check=_pack_is_valid),
    # ------------------------------------------------------------------ deployments (serving), pages and API
    Step("page: deploy a released adapter", "POST", "/serving/runs/{released_run}/deploy/", "privacy",
         {"name": "reply-bot", "purpose": "Drafts replies for agents.", "max_output_tokens": 64, "filter_mode": "mask"},
         ("deployment.created",)),
    Step("page: issue a consumer key", "POST", "/serving/deployments/{deployment}/keys/", "privacy",
         {"consumer": "dashboard-app", "days": 30, "requests_per_minute": 10, "tokens_per_day": 5000}, ("consumerkey.issued",),
         check=_the_key_is_shown_once),
    Step("page: revoke a consumer key", "POST", "/serving/keys/{consumer_key}/revoke/", "privacy", {"reason": "The app was retired."},
         ("consumerkey.revoked",)),
    Step("page: suspend a deployment", "POST", "/serving/deployments/{deployment}/suspend/", "privacy",
         {"reason": "Odd prompts in the log."}, ("deployment.suspended",)),
    Step("page: resume a deployment", "POST", "/serving/deployments/{suspended_deployment}/resume/", "privacy",
         {"reason": "The prompts were a test."}, ("deployment.resumed",)),
    Step("page: retire a deployment (its keys revoked with it)", "POST", "/serving/deployments/{deployment}/retire/", "privacy",
         {"reason": "Replaced by a newer adapter."}, ("deployment.retired", "consumerkey.revoked"), given=("consumer_key",)),
    Step("page: open a flagged output: it asks why first (records nothing)", "GET", "/serving/flagged/{flagged_output}/", "privacy"),
    Step("page: justify opening a flagged output, then open it", "POST", "/account/justify/", "privacy",
         lambda w: {"ticket": _flagged_ticket(w), "justification": "Checking a masked answer reported in ticket PRIV-9."},
         ("access.justified", "flaggedoutput.opened"), check=_the_justified_original_opens),
    Step("page: review a flagged output", "POST", "/serving/flagged/{flagged_output}/", "privacy",
         {"note": "A phone number of a customer; the key holder was told."}, ("flaggedoutput.reviewed",)),
    Step("api: deploy a released adapter", "POST", "/api/deployments/", "privacy",
         lambda w: {"run": w.released_run.pk, "name": "reply-bot", "max_output_tokens": 64}, ("deployment.created",), api=True),
    Step("api: suspend a deployment", "POST", "/api/deployments/{deployment}/suspend/", "privacy", {"reason": "Odd prompts."},
         ("deployment.suspended",), api=True),
    Step("api: resume a deployment", "POST", "/api/deployments/{suspended_deployment}/resume/", "privacy",
         {"reason": "The prompts were a test."}, ("deployment.resumed",), api=True),
    Step("api: retire a deployment", "POST", "/api/deployments/{deployment}/retire/", "privacy", {"reason": "Replaced."},
         ("deployment.retired", "consumerkey.revoked"), api=True, given=("consumer_key",)),
    Step("api: issue a consumer key", "POST", "/api/deployments/{deployment}/keys/", "privacy", {"consumer": "dashboard-app"},
         ("consumerkey.issued",), api=True, check=_the_api_shows_the_secret),
    Step("api: revoke a consumer key", "POST", "/api/deployments/{deployment}/keys/{consumer_key}/revoke/", "privacy",
         {"reason": "The app was retired."}, ("consumerkey.revoked",), api=True),
    # ------------------------------------------------------------------ the gateway (/v1/): consumer keys, a fake backend
    Step("gateway: a chat completion is answered and logged (records no trail event)", "POST", "/v1/chat/completions", "consumer",
         {"model": "support-bot", "messages": [{"role": "user", "content": "Will it rain?"}]},
         check=_the_answer_is_the_backends_and_logged, given=("backend",)),
    Step("gateway: an answer holding an original value is masked, filed for review and alerted", "POST", "/v1/completions",
         "consumer", {"model": "support-bot", "prompt": "Who do I call?"}, ("flaggedoutput.filed", "alert.critical"),
         check=_the_original_is_masked_and_filed, given=("leaking_backend",)),
    Step("gateway: a streamed chat completion is logged once the stream ends", "POST", "/v1/chat/completions", "consumer",
         {"model": "support-bot", "messages": [{"role": "user", "content": "Will it rain?"}], "stream": True},
         check=_the_stream_is_logged, given=("backend",)),
    # ------------------------------------------------------------------ alerts, incidents, watermarks (incidents)
    Step("page: acknowledge an alert", "POST", "/monitoring/alerts/{alert}/acknowledge/", "privacy", {"note": "Seen; a test probe."},
         ("alert.acknowledged",)),
    Step("page: open an incident from an alert", "POST", "/monitoring/incidents/new/", "privacy",
         lambda w: {"title": "Canary prefix probed", "severity": "high", "alerts": [w.alert.pk]}, ("incident.opened",)),
    Step("page: contain a deployment (suspended, its keys revoked)", "POST", "/monitoring/incidents/{incident}/contain/suspend/",
         "privacy", lambda w: {"deployment": w.deployment.pk},
         ("deployment.suspended", "consumerkey.revoked", "incident.deployment_contained"), given=("consumer_key",)),
    Step("page: revoke a release from an incident", "POST", "/monitoring/incidents/{incident}/contain/revoke-release/", "privacy",
         lambda w: {"run": w.released_run.pk}, ("adapter.blocked", "deployment.suspended", "incident.release_revoked")),
    Step("page: rotate the signing key from an incident", "POST", "/monitoring/incidents/{incident}/contain/rotate-signing-key/",
         "privacy", {"reason": "The signing host was in scope."}, ("signingkey.rotated", "incident.signing_key_rotated")),
    Step("page: rotate the master key from an incident", "POST", "/monitoring/incidents/{incident}/contain/rotate-master-key/",
         "privacy", {"reason": "The key file may have been copied."}, ("masterkey.rotated", "incident.master_key_rotated"),
         given=("flagged_output", "alert")),  # sealed values of serving to re-wrap
    Step("page: save an incident's notification", "POST", "/monitoring/incidents/{incident}/notification/", "privacy",
         {"text": "Dear supervisory authority, ..."}, ("incident.notification_saved",)),
    Step("page: close an incident", "POST", "/monitoring/incidents/{incident}/close/", "privacy",
         {"post_mortem": "A tester probed the canary prefix from a staging key; the deployment was suspended and the key "
                         "revoked. Staging keys now expire after a day."}, ("incident.closed",)),
    Step("page: build an incident's evidence pack", "POST", "/monitoring/incidents/{incident}/packs/", "privacy",
         events=("incident.pack_built",)),
    Step("page: download an incident's evidence pack", "GET", "/monitoring/incidents/{incident}/packs/{incident_pack}/", "privacy",
         events=("incident.pack_downloaded",)),
    Step("page: test a text for the deployments' watermarks", "POST", "/monitoring/watermark/", "privacy",
         {"text": "The customer wrote that the parcel arrived late and the box was damaged on one side."},
         ("watermark.detected",), check=_a_verdict_is_shown, given=("deployment_on_a_real_base",)),
]

# Routes that only read: each is rendered on the real path by `test_pages_that_read_write_no_trail_event`.
READS: list[Step] = [
    Step("dashboard", "GET", "/", "privacy"),
    Step("users", "GET", "/governance/users/", "admin_user", given=("pending_grant",)),
    Step("a user's page", "GET", "/governance/users/{account}/", "admin_user"),
    Step("role grants to confirm", "GET", "/governance/role-grants/", "privacy", given=("pending_grant",)),
    Step("password set", "GET", "/account/reset/done/", "anonymous"),
    Step("second factor", "GET", "/account/second-factor/", "privacy"),
    Step("confirm a code", "GET", "/account/second-factor/verify/", "privacy"),
    Step("a user's second factor", "GET", "/governance/users/{engineer}/second-factor/", "admin_user", given=("engineer_authenticator",)),
    Step("health", "GET", "/healthz", "anonymous"),
    Step("api schema", "GET", "/api/schema/", "engineer"),
    Step("api docs", "GET", "/api/docs/", "engineer"),
    Step("api root", "GET", "/api/", "engineer", api=True),
    *[Step(f"list {prefix}", "GET", f"/governance/{prefix}/", "privacy") for prefix in
      ("data-classes", "processors", "attestations", "compute-targets", "redaction-rules", "dpas", "datasets")],
    *[Step(f"detail {prefix}", "GET", f"/governance/{prefix}/{{{name}}}/", "privacy") for prefix, name in
      (("data-classes", "data_class"), ("processors", "processor"), ("attestations", "attestation"), ("compute-targets", "compute_target"),
       ("redaction-rules", "redaction_rule"), ("dpas", "dpa"), ("datasets", "dataset"))],
    Step("audit trail, verified", "GET", "/governance/audit-trail/?verify=1", "privacy"),
    Step("request list", "GET", "/governance/requests/", "engineer"),
    Step("request inbox", "GET", "/governance/requests/inbox/", "legal", given=("submitted_request",)),
    Step("request detail", "GET", "/governance/requests/{queued_request}/", "engineer"),
    Step("model card", "GET", "/governance/runs/{audited_run}/model-card/", "privacy", given=("card",)),
    Step("review queue", "GET", "/training/review/", "privacy", given=("review_item",)),
    Step("run list", "GET", "/training/runs/", "engineer"),
    Step("run detail", "GET", "/training/runs/{released_run}/", "engineer"),
    Step("run curve", "GET", "/training/runs/{audited_run}/artifacts/{curve}/", "engineer"),
    Step("audit report", "GET", "/audits/{audit}/", "privacy"),
    Step("audit report json", "GET", "/audits/{audit}/report.json", "privacy"),
    Step("audit chart", "GET", "/audits/{audit}/charts/roc.svg", "privacy"),
    Step("pack list", "GET", "/audits/packs/", "privacy", given=("pack",)),
    Step("signing key", "GET", "/audits/signing-key/", "regulator"),
    Step("signing key pem", "GET", "/audits/signing-key.pem", "regulator"),
    Step("shared with me", "GET", "/audits/shared-with-me/", "regulator", given=("share",)),
    Step("deployments", "GET", "/serving/deployments/", "privacy", given=("deployment",)),
    Step("deployments, as the engineer whose run it serves", "GET", "/serving/deployments/", "engineer", given=("deployment",)),
    Step("a deployment (keys, counts, alerts, flagged outputs)", "GET", "/serving/deployments/{deployment}/", "privacy",
         given=("consumer_key", "flagged_output", "alert")),
    Step("flagged outputs", "GET", "/serving/flagged/", "privacy", given=("flagged_output",)),
    Step("api deployments", "GET", "/api/deployments/", "privacy", api=True, given=("deployment",)),
    Step("api deployment", "GET", "/api/deployments/{deployment}/", "engineer", api=True),
    Step("api deployment keys", "GET", "/api/deployments/{deployment}/keys/", "privacy", api=True, given=("consumer_key",)),
    Step("gateway: the key's model", "GET", "/v1/models", "consumer"),
    Step("alerts", "GET", "/monitoring/alerts/", "privacy", given=("alert",)),
    Step("incidents", "GET", "/monitoring/incidents/", "privacy", given=("incident",)),
    Step("an incident", "GET", "/monitoring/incidents/{incident}/", "privacy", given=("incident_pack",)),
    Step("an incident, as an administrator (read only)", "GET", "/monitoring/incidents/{incident}/", "admin_user"),
    # The API's other lists and details: those of the record types are rendered through WRITES.
    *[Step(f"api {name}", "GET", path, "privacy", api=True) for name, path in
      (("list audit events", "/api/audit-events/"), ("audit event", "/api/audit-events/{first_event}/"), ("list runs", "/api/runs/"),
       ("run", "/api/runs/{queued_run}/"))],
]


# --------------------------------------------------------------------------- walking


def head() -> int:
    return m.AuditEvent.objects.order_by("-sequence").values_list("sequence", flat=True).first() or 0


def send(step: Step, world, data):
    """The step's request, as its persona's browser or script sends it; streamed bodies are read
    (a download's generator runs as the server streams it) into `.body`."""
    if step.who == "consumer":  # an application at the gateway (/v1/): its consumer key, JSON, no session
        client = Client(HTTP_AUTHORIZATION=f"Bearer {world.consumer_secret}")
    else:
        user = None if step.who == "anonymous" else world.personas[step.who]
        client = api_client_for(user) if step.api else client_for(user)
    method = getattr(client, step.method.lower())
    if data is None:
        response = method(step.url(world))
    elif step.who == "consumer":
        response = method(step.url(world), json.dumps(data), content_type="application/json")
    elif step.api:
        response = method(step.url(world), data, format=step.format)
    else:
        response = method(step.url(world), data)
    response.body = b"".join(response.streaming_content) if response.streaming else response.content
    return response


def run_step(step: Step, world, trail_writes) -> list[str]:
    """Walk one step; return the trail actions its request recorded.

    This is the guard against trail writes outside a transaction: the writer raises there
    (`AuditEvent.append`), which is a 500 on a real server and an exception the test client
    re-raises here, so asserting the status suffices; and the `trail_writes` recorder fails the
    step should the writer's own check ever be weakened."""
    consumer = ("consumer_secret",) if step.who == "consumer" else ()
    for name in (*step.given, *placeholders(step.path), *consumer):
        getattr(world, name)  # made before counting: their own events are not the request's
    data = step.data(world) if callable(step.data) else step.data
    before, writes_before = head(), len(trail_writes)
    response = send(step, world, data)
    assert 200 <= response.status_code < 400, \
        f"{step.name}: {step.method} {step.url(world)} answered {response.status_code}: {response.body[:600]!r}"
    outside = [action for action, inside in trail_writes[writes_before:] if not inside]
    assert not outside, f"{step.name}: trail events written outside a transaction: {outside}"
    if step.check:
        step.check(response, world)
    return list(m.AuditEvent.objects.filter(sequence__gt=before).order_by("sequence").values_list("action", flat=True))


def resolve_callback(step: Step):
    return resolve(step.path.split("?")[0].format(**{name: 1 for name in placeholders(step.path)})).func


def methods_of(callback) -> set[str]:
    """The methods a route's view answers (HEAD and OPTIONS aside)."""
    from django.views.generic.edit import ProcessFormView

    cls, actions = getattr(callback, "cls", None), getattr(callback, "actions", None)
    if cls is not None and actions:  # a DRF viewset route: the router mapped these methods to actions
        return {method.upper() for method in actions if method in cls.http_method_names and method not in ("head", "options")}
    view_class = getattr(callback, "view_class", None) or cls
    if view_class is None:  # a function view: GET, unless it is one that answers another method only
        return FUNCTION_VIEW_METHODS.get(f"{callback.__module__}.{callback.__name__}", {"GET"})
    # Django's form views answer PUT with `post` on request.POST, which is empty for a PUT: an
    # invalid form, re-rendered. That PUT cannot write.
    return {method.upper() for method in view_class.http_method_names if method not in ("head", "options")
            and hasattr(view_class, method) and not (method == "put" and view_class.put is ProcessFormView.put)}


# Function views that answer one method other than GET (to any other, an error of their own): the
# gateway's completions (POST; a GET is an OpenAI-shaped 405).
FUNCTION_VIEW_METHODS = {"serving.gateway_views.chat_completions": {"POST"}, "serving.gateway_views.completions": {"POST"}}


def routes() -> dict:
    """Every route of the portal, one per view, with the methods it answers. The admin is left out:
    it is read-only (governance/admin.py)."""
    found, seen = {}, set()

    def collect(patterns, prefix):
        for pattern in patterns:
            route = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if route != "admin/":
                    collect(pattern.url_patterns, route)
            elif pattern.callback not in found and route not in seen:  # not a format suffix, not shadowed
                found[pattern.callback] = route
            seen.add(route)

    collect(get_resolver().url_patterns, "")
    return {callback: (route, methods_of(callback)) for callback, route in found.items()}


def form_pages() -> list[Step]:
    """The writing routes that also answer GET (their forms), each once, as their first row's
    persona sees them: rendered by `test_pages_that_read_write_no_trail_event`."""
    read = {resolve_callback(step) for step in WRITES + READS if step.method == "GET"}
    pages = {}
    for step in WRITES:
        callback = resolve_callback(step)
        if callback not in read and callback not in pages and "GET" in methods_of(callback):
            pages[callback] = dataclasses.replace(step, name=f"{step.name} (its page)", method="GET", data=None, events=(), check=None)
    return list(pages.values())


# --------------------------------------------------------------------------- the tests


@pytest.mark.parametrize("step", WRITES, ids=[s.name for s in WRITES])
def test_a_writing_view_succeeds_and_records_its_event_outside_the_test_transaction(step, world, trail_writes):
    """The guard: a trail write outside a transaction raises in the writer, so the view would
    answer 500 (here the test client re-raises the writer's error); the status and the recorder
    in `run_step` catch it, and the events named in the table must be in the trail."""
    recorded = run_step(step, world, trail_writes)
    if step.events:
        missing = [event for event in step.events if event not in recorded]
        assert not missing, f"{step.name}: expected trail events {missing}; it recorded {recorded}"
    else:
        assert recorded == [], f"{step.name}: recorded {recorded}, but the table says it writes no trail event"
    assert m.AuditEvent.verify_chain().ok


def test_pages_that_read_write_no_trail_event(world, trail_writes):
    """Every route that only reads, rendered on the real path by someone allowed to read it. A page
    that records a trail event belongs in WRITES, with the event it records."""
    for step in READS + form_pages():
        assert run_step(step, world, trail_writes) == [], f"{step.name} ({step.path}) recorded trail events: move it to WRITES"


@pytest.mark.django_db  # reads the URL configuration only: no flush needed
def test_every_route_is_walked():
    """Each method of each route is in WRITES (it writes) or READS (it only reads), or is the form
    page of a route in WRITES: a new view is walked on the real path as soon as it has a URL."""
    walked = {(resolve_callback(step), step.method) for step in WRITES + READS + form_pages()}
    missing = [f"{method} {route}" for callback, (route, answered) in routes().items() for method in sorted(answered)
               if (callback, method) not in walked]
    assert not missing, "routes nobody walks on the real path (add them to WRITES or READS): " + "; ".join(missing)
