"""Form fields and list filters that choose records by id, refusing ids no record can have.

Django's `ModelMultipleChoiceField` looks every chosen id up with one `pk__in` query. An id past
the database's integer range (`?data_classes=99999999999999999999`) overflows SQLite's driver
with an `OverflowError`, a 500, where it should read as what it is: no such record. (A single
choice, an `=` lookup, Django already answers as "not one of the choices".) The forms, the
list filters and the request form choose several records with these instead.
"""

from __future__ import annotations

import django_filters
from django import forms
from django.db import connections, models
from django_filters import fields as filter_fields


class IdsWithinRangeMixin:
    """Refuse an id outside the key column's integer range as an invalid choice, before the query."""

    def _check_values(self, value):
        key = self.queryset.model._meta.get_field(self.to_field_name) if self.to_field_name else self.queryset.model._meta.pk
        if isinstance(key, models.IntegerField) and isinstance(value, (list, tuple, set, frozenset)):
            low, high = connections[self.queryset.db].ops.integer_field_range(key.get_internal_type())
            for item in value:
                number = _as_int(item)
                if number is not None and not ((low is None or number >= low) and (high is None or number <= high)):
                    raise forms.ValidationError(self.error_messages["invalid_choice"], code="invalid_choice", params={"value": item})
        return super()._check_values(value)


def _as_int(item) -> int | None:
    """The whole number an id was given as, or None (Django's own check names anything else)."""
    if isinstance(item, bool):
        return None
    if isinstance(item, int):
        return item
    try:
        return int(str(item).strip())
    except ValueError:  # not a number, or more digits than Python converts: Django refuses it as an invalid id
        return None


class RecordsChoiceField(IdsWithinRangeMixin, forms.ModelMultipleChoiceField):
    """`ModelMultipleChoiceField`, with ids past the integer range refused as invalid choices."""


class RecordsFilterField(IdsWithinRangeMixin, filter_fields.ModelMultipleChoiceField):
    pass


class RecordsFilter(django_filters.ModelMultipleChoiceFilter):
    """django-filter's `ModelMultipleChoiceFilter`, with ids past the integer range refused."""

    field_class = RecordsFilterField
