import django_filters as df
from django.db import models
from django.db.models.fields.related import ManyToManyRel, ManyToOneRel
from django_filters.filterset import FILTER_FOR_DBFIELD_DEFAULTS

from governance import models as m
from governance.fields import RecordsFilter


class FilterSet(df.FilterSet):
    """Filters over several related records take only ids a record can have (governance.fields)."""

    FILTER_DEFAULTS = {
        **FILTER_FOR_DBFIELD_DEFAULTS,
        **{kind: {**FILTER_FOR_DBFIELD_DEFAULTS[kind], "filter_class": RecordsFilter}
           for kind in (models.ManyToManyField, ManyToOneRel, ManyToManyRel)},
    }


class DataClassFilter(FilterSet):
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = m.DataClass
        fields = ["name", "tier", "fine_tuning_use", "dp_required", "redaction_required"]


class ProcessorFilter(FilterSet):
    name = df.CharFilter(lookup_expr="icontains")

    class Meta:
        model = m.Processor
        fields = ["name", "country"]


class AttestationFilter(FilterSet):
    expires_before = df.DateFilter(field_name="expires_on", lookup_expr="lte", label="Expires on or before")

    class Meta:
        model = m.Attestation
        fields = ["processor", "kind", "expires_before"]


class DataProcessingAgreementFilter(FilterSet):
    title = df.CharFilter(lookup_expr="icontains")
    expires_before = df.DateFilter(field_name="expires_on", lookup_expr="lte", label="Expires on or before")

    class Meta:
        model = m.DataProcessingAgreement
        fields = ["title", "processor", "no_training_on_customer_data", "no_retention_of_training_data", "expires_before"]


class ComputeTargetFilter(FilterSet):
    class Meta:
        model = m.ComputeTarget
        fields = ["kind", "region", "egress_blocked", "active"]


class DatasetFilter(FilterSet):
    name = df.CharFilter(lookup_expr="icontains")
    unclassified = df.BooleanFilter(field_name="data_classes", lookup_expr="isnull", label="Awaiting classification", distinct=True)

    class Meta:
        model = m.Dataset
        fields = ["name", "file_format", "segment", "state", "lawful_basis", "data_classes", "unclassified"]


class AuditEventFilter(FilterSet):
    action = df.CharFilter(lookup_expr="icontains")
    actor = df.CharFilter(field_name="actor_username", label="Actor")
    since = df.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="gte")
    until = df.IsoDateTimeFilter(field_name="occurred_at", lookup_expr="lte")

    class Meta:
        model = m.AuditEvent
        fields = ["action", "object_type", "object_id", "actor", "since", "until"]


class RedactionRuleFilter(FilterSet):
    class Meta:
        model = m.RedactionRule
        fields = ["data_class", "kind", "entity_type"]
