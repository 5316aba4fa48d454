"""Sections the apps above training add to a training run's page.

Training sits below audits and workflow (portal → workflow → audits → training → governance), so
the run page cannot import them to show a run's audits, its release or its model card. Each of
those apps registers its sections here from its AppConfig.ready(); the run page renders them in
order, each from its app's own template with the context its app computes."""

from collections.abc import Callable
from dataclasses import dataclass

from django.http import HttpRequest
from django.template.loader import render_to_string

from training.models import TrainingRun


@dataclass(frozen=True)
class RunPageSection:
    order: int  # place on the page, smallest first (audits 10, model card 20, evidence packs 30)
    template: str
    # The template's context beside `run`, for this user and run; None leaves the section out.
    context: Callable[[HttpRequest, TrainingRun], dict | None]


SECTIONS: list[RunPageSection] = []


def register_section(section: RunPageSection) -> None:
    if section not in SECTIONS:  # ready() may run more than once (tests, management commands)
        SECTIONS.append(section)
        SECTIONS.sort(key=lambda s: s.order)


def render_sections(request: HttpRequest, run: TrainingRun) -> list[str]:
    """Each registered section as HTML, in order; rendered with the request so that its forms
    get their CSRF token and its template sees `user` and `perms`."""
    rendered = []
    for section in SECTIONS:
        context = section.context(request, run)
        if context is not None:
            rendered.append(render_to_string(section.template, {**context, "run": run}, request=request))
    return rendered
