"""What the workflow app adds to the pages and files of the apps below it, which cannot import it
(portal → workflow → audits → training → governance): the model card section of a training run's
page, and the model card's README beside a released adapter. Registered in workflow.apps."""

from training.models import RunState, TrainingRun
from workflow.model_cards import model_card_readme
from workflow.models import ModelCard


def run_model_card_section(request, run: TrainingRun) -> dict | None:
    """The run's page (training.run_page) shows the model card once the run has trained."""
    return {} if run.state == RunState.SUCCEEDED else None


def adapter_model_card_readme(run: TrainingRun) -> dict[str, str]:
    """The model card, beside the adapter in its zip (audits.views.AdapterDownloadView), as Hugging Face reads it."""
    card = ModelCard.objects.filter(run=run).first()
    return {"README.md": model_card_readme(card)} if card is not None else {}
