"""What each list page shows: columns as (heading, how to read the value), the first one linked."""

from django.utils import timezone


def _display(name):
    return lambda obj: getattr(obj, f"get_{name}_display")()


def _join(name):
    return lambda obj: ", ".join(getattr(obj, name)) or "—"


def _yes_no(name):
    return lambda obj: "yes" if getattr(obj, name) else "no"


def _dpa_status(dpa):
    reasons = dpa.lapses_on(timezone.localdate())
    return "in force" if not reasons else "not in force: " + "; ".join(reasons)


COLUMNS = {
    "dataclass": [
        ("Name", "name"), ("Tier", _display("tier")), ("Fine-tuning", _display("fine_tuning_use")),
        ("DP required", _yes_no("dp_required")), ("Max ε", lambda o: o.max_epsilon if o.max_epsilon is not None else "—"),
        ("Regulations", _join("regulations")),
    ],
    "redactionrule": [
        ("Entity type", "entity_type"), ("Data class", "data_class"), ("Kind", _display("kind")),
        ("Rule", lambda o: o.regex or f"{len(o.term_list())} terms"),
    ],
    "processor": [("Name", "name"), ("Legal entity", "legal_entity"), ("Country", "country")],
    "attestation": [
        ("Attestation", _display("kind")), ("Processor", "processor"), ("Issued", "issued_on"), ("Expires", "expires_on"),
    ],
    "dataprocessingagreement": [
        ("Agreement", lambda o: f"{o.title} v{o.version}"), ("Processor", "processor"), ("Effective", "effective_from"),
        ("Ends", lambda o: o.expires_on or "until terminated"), ("Status", _dpa_status),
    ],
    "computetarget": [
        ("Name", "name"), ("Kind", _display("kind")), ("Region", "region"), ("Egress blocked", _yes_no("egress_blocked")),
        ("Queue", "celery_queue"),
    ],
    "dataset": [
        ("Name", "name"), ("Owner", "owner"), ("Records", "record_count"), ("Segment", _display("segment")),
        ("Classes", lambda o: ", ".join(c.name for c in o.data_classes.all()) or "awaiting classification"),
        ("State", _display("state")),
    ],
}

# Related rows each list needs, so a page costs a fixed number of queries.
LIST_QUERY_HINTS = {
    "attestation": {"select": ["processor"]},
    "redactionrule": {"select": ["data_class"]},
    "dataprocessingagreement": {"select": ["processor"], "prefetch": ["processor__attestations"]},
    "dataset": {"select": ["owner"], "prefetch": ["data_classes"]},
}


def rows(model_name, objects):
    columns = COLUMNS[model_name]
    for obj in objects:
        cells = []
        for _, accessor in columns:
            value = accessor(obj) if callable(accessor) else getattr(obj, accessor)
            cells.append(value)
        yield obj, cells


def headings(model_name):
    return [label for label, _ in COLUMNS[model_name]]
