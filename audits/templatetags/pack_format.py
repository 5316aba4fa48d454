"""Filters of the evidence pack's PDF layout."""

from django import template

register = template.Library()


@register.filter
def when(value):
    """An ISO time from results.json ("2026-01-31T09:15:02Z") as "2026-01-31 09:15:02", which can
    wrap between the date and the time in a narrow column. Dates and empty values pass through."""
    if not value or not isinstance(value, str) or "T" not in value:
        return value
    return value.replace("T", " ").removesuffix("Z").split(".")[0].split("+")[0]
