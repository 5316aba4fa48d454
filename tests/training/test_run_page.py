"""The training run's page shows what the apps above training add to it (audits, release, model card,
evidence packs) through training.run_page, without training importing those apps."""

import ast
from pathlib import Path

import pytest

pytest.importorskip("torch")

from tests.conftest import client_for  # noqa: E402
from tests.training.test_runs import _quiet_heartbeat, base_model, queued_run, tiny_base_dir  # noqa: E402,F401
from training import run_page  # noqa: E402
from training.models import RunState  # noqa: E402

TRAINING = Path(__file__).resolve().parents[2] / "training"
ABOVE_TRAINING = {"audits", "workflow"}


@pytest.fixture
def trained_run(engineer, base_model):
    run = queued_run(engineer, base_model)
    type(run).objects.filter(pk=run.pk).update(state=RunState.SUCCEEDED)  # the sections are about a trained run
    run.refresh_from_db()
    return run


def test_training_imports_nothing_from_the_apps_above_it():
    upward = []
    for path in TRAINING.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):  # function-level imports too
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            upward += [f"{path.relative_to(TRAINING.parent)}: {n}" for n in names
                       if n.split(".")[0] in ABOVE_TRAINING and ".engine" not in n]  # engines are the bottom layer
    assert upward == []


def test_a_trained_runs_page_shows_audits_then_model_card_then_evidence_packs(engineer, trained_run):
    page = client_for(engineer).get(trained_run.get_absolute_url()).content.decode()
    headings = [page.index(h) for h in ("<h2>Progress</h2>", "<h2>Audits and release</h2>", "<h2>Model card</h2>",
                                        "<h2>Evidence packs</h2>", "All training runs")]
    assert headings == sorted(headings)
    assert f'action="/audits/runs/{trained_run.pk}/audit/"' in page  # the owner may ask for another audit
    assert f'action="/governance/runs/{trained_run.pk}/model-card/draft/"' in page
    assert "The adapter is not released" in page


def test_a_run_that_has_not_trained_shows_no_audit_model_card_or_pack_section(engineer, base_model):
    run = queued_run(engineer, base_model)
    page = client_for(engineer).get(run.get_absolute_url()).content.decode()
    assert "<h2>Progress</h2>" in page
    assert not any(h in page for h in ("<h2>Audits and release</h2>", "<h2>Model card</h2>", "<h2>Evidence packs</h2>"))


def test_the_progress_poll_computes_no_section(engineer, trained_run, monkeypatch):
    asked = []
    monkeypatch.setattr(run_page, "SECTIONS", [run_page.RunPageSection(10, "audits/_run_audits.html",
                                                                       lambda request, run: asked.append(run.pk))])
    response = client_for(engineer).get(trained_run.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert response.content.startswith(b'<section id="run-progress"') and asked == []


def test_sections_take_their_place_by_order_not_by_registration(monkeypatch):
    monkeypatch.setattr(run_page, "SECTIONS", [])
    for order in (30, 10, 20):
        run_page.register_section(run_page.RunPageSection(order, f"section-{order}.html", lambda request, run: {}))
    assert [s.order for s in run_page.SECTIONS] == [10, 20, 30]
