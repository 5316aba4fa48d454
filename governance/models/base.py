"""Who may see which governance record: the restricted queryset and the records' common base."""

from __future__ import annotations


from django.db import models
from django.utils import timezone




# --------------------------------------------------------------------------- visibility


class RestrictedQuerySet(models.QuerySet):
    """One place decides what a user may see of a model: pages, API and downloads all use it."""

    def visible_to(self, user):
        if user is None or not user.is_authenticated or not user.is_active:
            return self.none()
        meta = self.model._meta
        if user.has_perm(f"{meta.app_label}.view_{meta.model_name}"):
            return self
        return self.model.narrow_visible(self, user)


class GovernanceRecord(models.Model):
    """Common ground for the records legal and privacy staff keep."""

    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(default=timezone.now, editable=False)

    objects = RestrictedQuerySet.as_manager()

    class Meta:
        abstract = True

    @classmethod
    def narrow_visible(cls, queryset, user):
        return queryset.none()

    @classmethod
    def can_browse(cls, user) -> bool:
        meta = cls._meta
        return user.is_authenticated and user.has_perm(f"{meta.app_label}.view_{meta.model_name}")

    @classmethod
    def can_add(cls, user) -> bool:
        meta = cls._meta
        return user.is_authenticated and user.has_perm(f"{meta.app_label}.add_{meta.model_name}")

    def can_change(self, user) -> bool:
        meta = self._meta
        return user.is_authenticated and user.has_perm(f"{meta.app_label}.change_{meta.model_name}")

    def audit_snapshot(self) -> dict:
        """The field values an audit event records for this object (no secrets, no blobs)."""
        data = {}
        for field in self._meta.concrete_fields:
            if isinstance(field, models.BinaryField) or field.name in self.audit_exclude:
                continue
            data[field.attname] = field.value_from_object(self)
        for field in self._meta.many_to_many:
            if self.pk:
                data[field.name] = sorted(o.pk for o in field.value_from_object(self))
        return data

    audit_exclude: tuple[str, ...] = ()


# --------------------------------------------------------------------------- data classes
