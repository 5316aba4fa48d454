"""Demo users and records for `make run`: created through the same actions as real use."""

from __future__ import annotations

import datetime as dt
import io
import json
import random
import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction
from django.utils import timezone

from governance import actions

from workflow import actions as workflow_actions
from governance import models as m
from workflow import models as wm
from governance.uploads import UploadRule, encrypt_stream
from governance import roles
from governance.secrets import write_private_file

DEMO_USERS = [
    ("erin", "Erin Engineer", roles.ENGINEER),
    ("lena", "Lena Legal", roles.LEGAL),
    ("priya", "Priya Privacy", roles.PRIVACY),
    ("rory", "Rory Regulator", roles.REGULATOR),
    ("adam", "Adam Admin", roles.ADMIN),
]


class _Form:
    """Lets the demo create records through `actions.create_record`, like a submitted form."""

    def __init__(self, instance, m2m=None):
        self.instance, self.m2m = instance, m2m or {}

    def save(self):
        self.instance.full_clean()
        self.instance.save()
        for name, values in self.m2m.items():
            getattr(self.instance, name).set(values)
        return self.instance


def demo_passwords_path():
    return settings.PROVENANT_DATA_DIR / "keys" / "demo-users.json"


def ensure_demo_users() -> dict[str, str]:
    """Create the demo users once, with random passwords kept (mode 0600) beside the keys."""
    path = demo_passwords_path()
    passwords = json.loads(path.read_text()) if path.exists() else {}
    User = get_user_model()
    created = False
    for username, full_name, role in DEMO_USERS:
        user = User.objects.filter(username=username).first()
        if user is None:
            password = passwords.get(username) or f"{role}-{secrets.token_urlsafe(9)}"
            first, last = full_name.split(" ", 1)
            user = User.objects.create_user(username, f"{username}@demo.provenant.local", password, first_name=first,
                                            last_name=last, is_staff=role == roles.ADMIN)
            user.groups.add(Group.objects.get(name=role))
            passwords[username] = password
            created = True
    if created:
        if path.exists():
            path.unlink()
        write_private_file(path, json.dumps(passwords, indent=2))
    ensure_demo_second_factors()
    return passwords


def demo_second_factors_path():
    return settings.PROVENANT_DATA_DIR / "keys" / "demo-second-factors.json"


def ensure_demo_second_factors() -> dict[str, dict]:
    """Legal, privacy and admin need a second factor to approve, release and share: the demo's
    users of those roles get an authenticator through the same actions as a person setting one up
    (the first code computed from the new secret). Their secrets (as otpauth:// addresses to add to
    an authenticator app) and recovery codes are kept beside the passwords, mode 0600;
    `manage.py demo_totp USER` prints a current code. Nothing here runs outside `seed_demo`."""
    from base64 import b32encode

    from django_otp.oath import totp

    from governance import mfa

    path = demo_second_factors_path()
    kept = json.loads(path.read_text()) if path.exists() else {}
    changed = False
    for username, _, role in DEMO_USERS:
        user = get_user_model().objects.get(username=username)
        if not mfa.requires_second_factor(user) or mfa.is_enrolled(user):
            continue
        device = mfa.start_enrolment(user)
        outcome, codes = mfa.confirm_enrolment(user, f"{totp(device.bin_key):06d}")
        if not outcome.ok:
            raise RuntimeError(f"The demo authenticator of {username} refused its own code: {outcome.message}")
        device.refresh_from_db()
        kept[username] = {"otpauth": device.config_url, "secret": b32encode(device.bin_key).decode(), "recovery_codes": codes}
        changed = True
    if changed:
        if path.exists():
            path.unlink()
        write_private_file(path, json.dumps(kept, indent=2))
    return kept


def ensure_demo_records() -> None:
    if m.DataClass.objects.exists():
        return
    User = get_user_model()
    privacy, legal, engineer = (User.objects.get(username=u) for u in ("priya", "lena", "erin"))
    today = timezone.localdate()
    with transaction.atomic():
        support = actions.create_record(privacy, _Form(m.DataClass(
            name="Customer support transcripts", tier=m.Tier.CONFIDENTIAL, description="Chats and tickets with customers; names, emails, phone numbers, order details.",
            categories=[m.DataCategory.PERSONAL], regulations=[m.Regulation.GDPR, m.Regulation.CCPA],
            fine_tuning_use=m.FineTuningUse.ALLOWED, redaction_required=True, dp_required=True, max_epsilon=8.0,
            max_delta=1e-5, redaction_actions={"CREDIT_CARD": "drop_record", "EMAIL_ADDRESS": "pseudonymize"},
            allowed_compute_kinds=[m.ComputeKind.ON_PREMISES, m.ComputeKind.PRIVATE_CLOUD],
            allowed_regions=["eu-west-1", "on-prem-paris"], retention_days=365,
            # An audit that can fail, yet fits the demo story on two CPU cores: 3 canaries among 1,000
            # candidates reach 9.97 bits, above the 5.91 that counts as learned by heart; 100 held-out
            # records are the fewest that measure TPR at 1% FPR. No minimum of one-run audit canaries:
            # at ε up to 8 no audit of a practical size can show the claim wrong, so it is not required.
            audit_min_candidates=1000, audit_min_canaries=3, audit_min_mia_sample=100, audit_min_extraction_sample=10)))
        actions.create_record(privacy, _Form(m.RedactionRule(
            data_class=support, entity_type="CUSTOMER_ID", kind=m.RedactionRuleKind.PATTERN, regex=r"\bCUST-\d{6}\b")))
        actions.create_record(privacy, _Form(m.DataClass(
            name="Clinical notes", tier=m.Tier.RESTRICTED, description="Free-text notes from clinicians. Special category data.",
            categories=[m.DataCategory.PERSONAL, m.DataCategory.SPECIAL], regulations=[m.Regulation.GDPR, m.Regulation.HIPAA],
            fine_tuning_use=m.FineTuningUse.ALLOWED, redaction_required=True, dp_required=True, max_epsilon=1.0,
            max_delta=1e-6, allowed_compute_kinds=[m.ComputeKind.ON_PREMISES], allowed_regions=["on-prem-paris"],
            retention_days=180, extra_approvals_required=1,
            # Special-category data: the full-strength audit, and the ε claim (at most 1, which a
            # one-run audit of a few hundred canaries can test) must be tested for a pass.
            audit_min_candidates=10_000, audit_min_canaries=10, audit_min_mia_sample=200, audit_min_extraction_sample=50,
            audit_min_audit_canaries=200)))
        actions.create_record(privacy, _Form(m.DataClass(
            name="Card payment data", tier=m.Tier.RESTRICTED, description="Primary account numbers and card holder data.",
            categories=[m.DataCategory.PERSONAL, m.DataCategory.FINANCIAL], regulations=[m.Regulation.PCI_DSS],
            fine_tuning_use=m.FineTuningUse.FORBIDDEN, redaction_required=True, dp_required=True, max_epsilon=1.0)))
        actions.create_record(privacy, _Form(m.DataClass(
            name="Public product documentation", tier=m.Tier.PUBLIC, description="Published manuals and FAQs.",
            fine_tuning_use=m.FineTuningUse.ALLOWED, redaction_required=False, dp_required=False,
            # No personal data, so no redaction and no index of original values to look for.
            audit_max_original_pii_hits=None)))
        cloud = actions.create_record(legal, _Form(m.Processor(
            name="Northwind GPU Cloud", legal_entity="Northwind Compute SAS", country="France",
            contact_email="dpo@northwind.example", services="Dedicated GPU instances for model training.")))
        actions.create_record(legal, _Form(m.Attestation(
            processor=cloud, kind=m.AttestationKind.SOC2_TYPE2, issued_by="Example Audit LLP",
            issued_on=today - dt.timedelta(days=340), expires_on=today + dt.timedelta(days=25), reference="SOC2-2025-117")))
        actions.create_record(legal, _Form(m.Attestation(
            processor=cloud, kind=m.AttestationKind.ISO27001, issued_by="Cert Body GmbH",
            issued_on=today - dt.timedelta(days=400), expires_on=today + dt.timedelta(days=700), reference="ISO-27001-5521")))
        dpa = actions.create_record(legal, _Form(m.DataProcessingAgreement(
            processor=cloud, title="GPU training services DPA", version=2, signed_on=today - dt.timedelta(days=200),
            effective_from=today - dt.timedelta(days=200), expires_on=today + dt.timedelta(days=530),
            subject_matter="Fine-tuning of language models on customer-provided data.",
            duration="Three years from signature, renewable.", nature_and_purpose="Hosting and computation; no access to content by staff.",
            data_types="Contact details, support conversations, order references.", data_subject_categories="Customers and prospects.",
            documented_instructions="Process only to run training jobs submitted by the controller; no other use.",
            international_transfers="None: processing in the EU only.", confidentiality_commitment=True,
            security_measures="Encryption at rest and in transit, isolated tenancy, egress blocked, logging.",
            subprocessors="Colo Paris SA (data centre)", assists_with_data_subject_rights=True, assists_with_security_and_dpia=True,
            deletion_at_end=m.DeletionAtEnd.DELETE, audit_rights=True, no_retention_of_training_data=True,
            no_training_on_customer_data=True, breach_notification_hours=24, processing_regions=["eu-west-1"],
            required_attestations=[m.AttestationKind.SOC2_TYPE2, m.AttestationKind.ISO27001])))
        actions.create_record(privacy, _Form(m.ComputeTarget(
            name="On-prem GPU cluster (Paris)", kind=m.ComputeKind.ON_PREMISES, region="on-prem-paris", egress_blocked=True)))
        actions.create_record(privacy, _Form(m.ComputeTarget(
            name="Northwind dedicated GPUs", kind=m.ComputeKind.EXTERNAL_PROVIDER, region="eu-west-1", egress_blocked=True,
            processor=cloud, dpa=dpa)))
    upload = encrypt_stream(io.BytesIO(demo_support_tickets().encode()), UploadRule(
        max_bytes=settings.PROVENANT_MAX_DATASET_BYTES, key_context=m.Dataset.key_context), "support-tickets-2025.jsonl")
    tickets = actions.upload_dataset(engineer, upload, name="Support tickets 2025",
                                     description="Synthetic support tickets with personal data, for the demo.", file_format="jsonl",
                                     text_field="text", source="Zendesk export (synthetic)",
                                     lawful_basis=m.LawfulBasis.LEGITIMATE_INTERESTS)
    actions.classify_dataset(privacy, tickets, [support])  # Erin uploads; Priya classifies
    upload = encrypt_stream(io.BytesIO(demo_faq().encode()), UploadRule(
        max_bytes=settings.PROVENANT_MAX_DATASET_BYTES, key_context=m.Dataset.key_context), "faq.txt")
    actions.upload_dataset(engineer, upload, name="Product FAQ", description="Not yet classified.", file_format="text",
                           source="Public help centre", lawful_basis=m.LawfulBasis.NOT_PERSONAL)


_FIRST = ["Maria", "John", "Aisha", "Wei", "Lukas", "Sofia", "Omar", "Chloe", "Ravi", "Emma", "Diego", "Yuki"]
_LAST = ["Garcia", "Smith", "Khan", "Zhang", "Müller", "Rossi", "Haddad", "Martin", "Patel", "Johnson", "López", "Tanaka"]
_ISSUES = [
    "my order {order} arrived damaged and I would like a replacement",
    "I was charged twice for order {order}, please refund one payment",
    "the tracking for {order} has not updated in a week",
    "I need to change the delivery address for {order} to {street}",
    "please close my account, I no longer use the service",
]


def demo_support_tickets(count: int = 400, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = []
    for i in range(count):
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        order = f"ORD-{rng.randint(100000, 999999)}"
        street = f"{rng.randint(1, 220)} {rng.choice(['Rue de Rivoli', 'Baker Street', 'Calle Mayor', 'Hauptstraße'])}"
        issue = rng.choice(_ISSUES).format(order=order, street=street)
        phone = f"+33 6 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}"
        text = (f"Customer: Hello, this is {first} {last} (customer CUST-{rng.randint(100000, 999999)}), {issue}. "
                f"You can reach me at {first.lower()}.{last.lower()}@example.com or {phone}.\nAgent: Thank you {first}, "
                f"I have opened case {rng.randint(10000, 99999)} and will update you within 24 hours.")
        lines.append(json.dumps({"id": f"t{i:04d}", "text": text}, ensure_ascii=False))
    return "\n".join(lines) + "\n"


def demo_faq() -> str:
    return "\n".join([
        "How do I reset my password? Use the 'Forgot password' link on the login page.",
        "Can I change my delivery address after ordering? Yes, until the order ships.",
        "How long do refunds take? Refunds reach your card within 5 to 10 business days.",
        "Do you ship internationally? We ship to the EU, the UK and Switzerland.",
    ]) + "\n"


# --------------------------------------------------------------------------- the demo story

DEMO_REQUEST_TITLE = "Support reply drafts (demo)"
DEMO_BASE_MODEL = "SmolLM2-135M-Instruct"

# Small enough to train and audit on two CPU cores in a few minutes, real in every step, and at the
# support class's audit minimums. The 400 tickets keep about 330 after de-duplication; 35% held out
# leaves about 115 non-members, enough for TPR at 1% FPR (100), and about 215 to train on.
DEMO_SETTINGS = {
    "training": {"epochs": 1, "batch_size": 16, "max_length": 64, "learning_rate": 2e-3, "lora_r": 8, "lora_alpha": 16,
                 "target_epsilon": 4.0, "accountant": "prv", "max_grad_norm": 1.0},
    "canaries": {"count": 3, "repetitions": 1, "length": 6},
    "holdout_fraction": 0.35,
    "audit": {"candidates": 1000, "mia_sample": 100, "extraction_sample": 12, "samples_per_prompt": 2, "max_new_tokens": 32,
              "bootstrap": 200, "batch_size": 32},
}


def ensure_demo_request(base_model_name: str = DEMO_BASE_MODEL):
    """The demo's one request that goes all the way, drafted by Erin and approved by Lena and
    Priya through the same actions as real use. Approval dispatches its run to the worker."""
    from workflow.models import TrainingRequest
    from training.models import BaseModel

    existing = TrainingRequest.objects.filter(title=DEMO_REQUEST_TITLE).first()
    if existing is not None:
        return existing
    User = get_user_model()
    engineer, legal, privacy = (User.objects.get(username=u) for u in ("erin", "lena", "priya"))
    base = BaseModel.objects.filter(name=base_model_name).first()
    if base is None:
        raise LookupError(f"The base model {base_model_name} is not registered: run `python manage.py import_demo_base_model`.")
    data = dict(
        title=DEMO_REQUEST_TITLE, base_model=base, compute_target=m.ComputeTarget.objects.get(name="On-prem GPU cluster (Paris)"),
        intended_use="Suggest first drafts of replies to support agents, who edit every draft before it is sent.",
        out_of_scope="Replying to customers without an agent; any decision about a customer; use outside support.",
        leak_definition="A customer's name, email, phone number, customer or order number, or the text of their ticket, "
                        "reproduced by the adapter.",
        adversaries=[wm.Adversary.EXTERNAL_ATTACKER, wm.Adversary.INSIDER], audience=wm.Audience.INTERNAL, settings=DEMO_SETTINGS)
    request = workflow_actions.create_request(engineer, data, [m.Dataset.objects.get(name="Support tickets 2025")])
    workflow_actions.submit_request(engineer, request)
    workflow_actions.decide_request(legal, request, "approve", comment="Within the support contract's purposes; legitimate interests "
                           "assessment on file.")
    workflow_actions.decide_request(privacy, request, "approve", conditions="Internal use by support agents only; release only if the "
                           "audit passes.")
    request.refresh_from_db()
    return request


def finish_demo_story(request):
    """After the worker has trained and audited the run: Priya approves the model card, releases
    the adapter if its audit passed (blocks it otherwise, saying why: failed or inconclusive),
    builds the evidence pack and shares it with Rory, the demo regulator."""
    from audits import actions as audit_actions
    from audits.models import AdapterAudit, AdapterRelease, EvidencePack
    from audits.sharing import share_pack
    from workflow.models import ModelCard, ModelCardState

    User = get_user_model()
    privacy, regulator = User.objects.get(username="priya"), User.objects.get(username="rory")
    run = request.run
    audit = AdapterAudit.latest_completed(run)
    card = ModelCard.objects.filter(run=run).first() or workflow_actions.draft_model_card(run)
    if card.state != ModelCardState.APPROVED:
        workflow_actions.approve_model_card(privacy, card, card.compute_content_hash())
    if AdapterRelease.latest_for(run) is None:
        if audit.outcome == "pass":
            audit_actions.release_adapter(privacy, run)
        else:
            audit_actions.block_adapter(privacy, run, f"{audit_actions.why_not_passed(audit)} Not released.")
    card.refresh_from_db()
    # The pack the regulator receives holds the approved card: build one if every pack predates it.
    pack = (EvidencePack.objects.filter(run=run, created_at__gte=card.approved_at).first()
            or workflow_actions.build_pack(privacy, run))
    if not pack.shares.filter(regulator=regulator).exists():
        share_pack(privacy, pack, regulator, note="The demo's evidence pack.")
    return pack


def demo_story_finished() -> bool:
    """Shared with the regulator and, when the adapter was released, deployed at the gateway."""
    from audits.actions import adapter_is_released
    from audits.models import PackShare
    from serving.models import Deployment

    share = PackShare.objects.filter(pack__run__request__title=DEMO_REQUEST_TITLE, regulator__username="rory").select_related(
        "pack__run").first()
    if share is None:
        return False
    return not adapter_is_released(share.pack.run) or Deployment.objects.filter(run=share.pack.run).exists()


DEMO_DEPLOYMENT = "support-drafts"
DEMO_CONSUMER = "helpdesk-app (demo)"
DEMO_QUESTION = "A customer asks how to reset their password. Draft a short, friendly reply."


def demo_consumer_key_path():
    return settings.PROVENANT_DATA_DIR / "keys" / "demo-consumer-key"


def deploy_demo_adapter(request):
    """After release, the story goes on at the gateway: Priya deploys the demo adapter as
    `support-drafts` (personal data masked in answers, prompts logged redacted) and issues a key to
    the helpdesk app. The key's secret is kept (mode 0600) in `demo-consumer-key` beside the demo
    passwords, so a person can call /v1/ with it. None when the adapter was not released: a blocked
    adapter is never deployed."""
    from audits.actions import adapter_is_released
    from serving import actions as serving_actions
    from serving.models import Deployment

    run = request.run
    if run is None or not adapter_is_released(run):
        return None
    existing = Deployment.objects.filter(run=run, name=DEMO_DEPLOYMENT).first()
    if existing is not None:
        return existing
    privacy = get_user_model().objects.get(username="priya")
    deployment = serving_actions.deploy_adapter(
        privacy, run, name=DEMO_DEPLOYMENT, purpose="First drafts of replies for support agents, who edit every draft.",
        max_output_tokens=64, filter_mode="mask", log_prompts=True)
    _, secret = serving_actions.issue_consumer_key(privacy, deployment, DEMO_CONSUMER, days=90, requests_per_minute=30,
                                                   tokens_per_day=50_000)
    path = demo_consumer_key_path()
    if path.exists():
        path.unlink()
    write_private_file(path, secret + "\n")
    return deployment


def ask_demo_deployment(deployment) -> dict:
    """One request to the deployed demo adapter through the gateway, as the helpdesk app sends it
    (the whole portal stack: key, limits, the model server, the output filter, the query log).
    Returns the OpenAI-shaped answer; raises RuntimeError with the gateway's message otherwise."""
    from django.test import Client

    secret = demo_consumer_key_path().read_text().strip()
    response = Client(HTTP_HOST="localhost").post(
        "/v1/chat/completions", data=json.dumps({"model": deployment.name, "max_tokens": 48, "temperature": 0.7,
                                                 "messages": [{"role": "user", "content": DEMO_QUESTION}]}),
        content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}")
    answer = response.json()
    if response.status_code != 200:
        raise RuntimeError(f"The gateway answered {response.status_code}: {answer.get('error', {}).get('message', answer)}")
    return answer
