"""Training requests from a shell: draft one from YAML, submit it, watch it, cancel its run."""

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import yaml
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from workflow import actions
from workflow.api_serializers import TrainingRequestWriteSerializer
from governance.models import ComputeTarget, Dataset
from workflow.models import RequestState, TrainingRequest
from training.models import BaseModel

EXAMPLE = """\
title: Support reply drafts
intended_use: Suggest replies to support agents, who edit them before sending.
out_of_scope: Any customer-facing use without an agent.
base_model: tiny-gpt2            # by name
datasets: [Support tickets, 12]  # by name or id
compute_target: Paris cluster    # by name
leak_definition: A customer's name, contact details or ticket text reproduced.
adversaries: [external_attacker, insider]
audience: internal
settings: {training: {epochs: 1, target_epsilon: 8.0}, canaries: {count: 2}}
audit_thresholds: {}
"""


class Command(BaseCommand):
    help = "Draft, submit, show, cancel and list training requests (`request create --help` shows a request file)."

    def add_arguments(self, parser):
        sub = parser.add_subparsers(dest="subcommand", required=True)
        create = sub.add_parser("create", help="Draft a request from a YAML file.", epilog="A request file:\n\n" + EXAMPLE,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        create.add_argument("--file", required=True, type=Path, help="REQUEST.yaml with the request's fields")
        create.add_argument("--as", dest="as_user", required=True, metavar="USERNAME", help="the requester")
        create.add_argument("--idempotency-key", help="a retried create with the same key returns the first request")
        submit = sub.add_parser("submit", help="Submit a draft for approval (freezes its content hash and findings).")
        submit.add_argument("id", type=int)
        submit.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        show = sub.add_parser("show", help="State, findings, approvals, missing approvals and run progress.")
        show.add_argument("id", type=int)
        show.add_argument("--follow", action="store_true", help="show the run's progress bar until the run ends")
        show.add_argument("--interval", type=float, default=2.0, help="seconds between polls with --follow (default 2)")
        cancel = sub.add_parser("cancel", help="Cancel the request's run (the requester or a privacy officer).")
        cancel.add_argument("id", type=int)
        cancel.add_argument("--as", dest="as_user", required=True, metavar="USERNAME")
        listing = sub.add_parser("list", help="All requests, newest first.")
        listing.add_argument("--state", choices=RequestState.values)

    def handle(self, *args, subcommand, **options):
        getattr(self, f"do_{subcommand}")(**options)

    def do_create(self, *, file, as_user, idempotency_key=None, **_):
        user = _user(as_user)
        if earlier := TrainingRequest.created_with_key(user, idempotency_key):
            self.stdout.write(f"Request {earlier.pk} “{earlier}” was already created with this idempotency key.")
            return
        body = TrainingRequestWriteSerializer(data=_resolve_names(_read_request_file(file), user), context={"user": user})
        if not body.is_valid():
            raise CommandError(f"{file}: " + "; ".join(f"{field}: {_flat(errors)}" for field, errors in body.errors.items()))
        data = {k: v for k, v in body.validated_data.items() if k != "datasets"}
        with _refusals():
            request = actions.create_request(user, data, body.validated_data["datasets"], idempotency_key=idempotency_key)
        self.stdout.write(self.style.SUCCESS(f"Drafted request {request.pk} “{request}”. "
                                             f"Submit it with: manage.py request submit {request.pk} --as {user.username}"))

    def do_submit(self, *, id, as_user, **_):
        user, request = _user(as_user), _request(id)
        with _refusals():
            request = actions.submit_request(user, request)
        self.stdout.write(self.style.SUCCESS(f"Submitted request {request.pk}; content hash {request.content_hash}."))
        self.stdout.write(_approvals_needed(request))

    def do_show(self, *, id, follow=False, interval=2.0, **options):
        request = _request(id)
        self.stdout.write(describe(request))
        run = request.run
        if follow and run is not None and run.is_active:
            self._follow(run, interval, quiet=options.get("verbosity", 1) == 0)

    def _follow(self, run, interval, quiet=False):
        bar = tqdm(unit="step", desc=f"run {run.pk}", total=run.total_steps, initial=run.step, disable=quiet)
        while True:
            run.refresh_from_db()
            bar.total = run.total_steps
            bar.update(run.step - bar.n)
            postfix = {"phase": run.phase or run.state}
            if run.loss is not None:
                postfix["loss"] = f"{run.loss:.3f}"
            if run.epsilon_spent is not None:
                postfix["ε"] = f"{run.epsilon_spent:.2f}"
            bar.set_postfix(postfix)
            if not run.is_active:
                break
            time.sleep(interval)
        bar.close()
        self.stdout.write(f"Run {run.pk} {run.get_state_display().lower()}" + (f": {run.failure_reason}" if run.failure_reason else "."))

    def do_cancel(self, *, id, as_user, **_):
        user, request = _user(as_user), _request(id)
        with _refusals():
            run = actions.cancel_request(user, request)
        self.stdout.write(self.style.SUCCESS(f"Run {run.pk} of request {request.pk}: " + (
            "cancelled." if not run.is_active else "cancel requested; it stops at its next step.")))

    def do_list(self, *, state=None, **_):
        requests = TrainingRequest.objects.select_related("requester").order_by("-created_at")
        if state:
            requests = requests.filter(state=state)
        for r in requests:
            self.stdout.write(f"{r.pk:>5}  {r.state:<10} {r.requester.username:<15} run {r.run_id or '-':<5} {r.title}")


def describe(request: TrainingRequest) -> str:
    lines = [f"Request {request.pk} “{request}” by {request.requester.username}: {request.get_state_display().lower()}",
             f"  content hash: {request.content_hash or '(not submitted)'}"]
    if request.findings:
        lines += ["  findings:"] + [f"    [{f['severity']}] {f['code']}: {f['message']}" for f in request.findings]
    elif request.content_hash:
        lines.append("  findings: none")
    for a in request.approvals.select_related("approver"):
        void = f" (void: {a.void_reason})" if a.voided_at else ""
        extra = "".join(f"; {label}: {text}" for label, text in (("comment", a.comment), ("conditions", a.conditions)) if text)
        lines.append(f"  {'approved' if a.decision == 'approve' else 'rejected'} by {a.approver.username} as {a.get_role_display().lower()} "
                     f"on {a.created_at:%Y-%m-%d %H:%M} UTC{extra}{void}")
    if request.state in (RequestState.SUBMITTED, RequestState.IN_REVIEW):
        lines.append(_approvals_needed(request))
    run = request.run
    if run is not None:
        progress = f"step {run.step}/{run.total_steps or '?'} ({run.percent}%)"
        figures = [f"{label} {value:.3f}" for label, value in (("epoch", run.epoch), ("loss", run.loss), ("ε spent", run.epsilon_spent))
                   if value is not None]
        lines.append(f"  run {run.pk}: {run.get_state_display().lower()}" + (f", {run.phase}" if run.phase else "")
                     + f", {progress}" + "".join(f", {f}" for f in figures)
                     + (f", about {run.eta_seconds} s left" if run.eta_seconds and run.is_active else "")
                     + (f"; {run.failure_reason}" if run.failure_reason else ""))
    return "\n".join(lines)


def _approvals_needed(request) -> str:
    missing = request.missing_approvals()
    return "  missing approvals: " + (", ".join(f"{role} ×{n}" for role, n in missing.items()) or "none")


@contextmanager
def _refusals():
    """The actions' refusals (RequestRefused, InvalidRunSettings, a run that ended) and PermissionError, as the command's errors."""
    try:
        yield
    except (ValueError, PermissionError) as exc:
        raise CommandError(str(exc)) from None


def _user(username):
    user = get_user_model().objects.filter(username=username, is_active=True).first()
    if user is None:
        raise CommandError(f"No active user named “{username}”.")
    return user


def _request(pk) -> TrainingRequest:
    request = TrainingRequest.objects.select_related("requester", "run").filter(pk=pk).first()
    if request is None:
        raise CommandError(f"No training request {pk}.")
    return request


def _read_request_file(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CommandError(f"Cannot read {path}: {exc.strerror}.") from None
    except yaml.YAMLError as exc:
        raise CommandError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise CommandError(f"{path} must hold a mapping of request fields, like:\n{EXAMPLE}")
    unknown = set(data) - set(TrainingRequestWriteSerializer.Meta.fields)
    if unknown:
        raise CommandError(f"{path}: unknown field(s) {', '.join(sorted(map(str, unknown)))}; a request has "
                           f"{', '.join(TrainingRequestWriteSerializer.Meta.fields)}.")
    return data


def _resolve_names(data: dict, user) -> dict:
    """Base model and compute target by name, datasets by name or id, among what the user may see."""
    data = dict(data)
    for field, queryset in (("base_model", BaseModel.objects.visible_to(user)), ("compute_target", ComputeTarget.objects.visible_to(user))):
        if field in data:
            found = queryset.filter(name=str(data[field])).first()
            if found is None:
                known = ", ".join(queryset.values_list("name", flat=True)) or "none"
                raise CommandError(f"No {field.replace('_', ' ')} named “{data[field]}” (known: {known}).")
            data[field] = found.pk
    if "datasets" in data:
        names = data["datasets"] if isinstance(data["datasets"], list) else [data["datasets"]]
        data["datasets"] = [_dataset_id(name, user) for name in names]
    return data


def _dataset_id(name, user) -> int:
    if isinstance(name, int):
        return name
    matches = list(Dataset.objects.visible_to(user).filter(name=str(name)).values_list("pk", flat=True))
    if not matches:
        raise CommandError(f"No dataset named “{name}” that {user.username} can use.")
    if len(matches) > 1:
        raise CommandError(f"Several datasets are named “{name}” (ids {', '.join(map(str, matches))}): give its id instead.")
    return matches[0]


def _flat(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{key}: {_flat(value)}" for key, value in errors.items())
    if isinstance(errors, list):
        return " ".join(_flat(e) for e in errors)
    return str(errors)
