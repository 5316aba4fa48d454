"""What the governance layer announces to the layers above (they react in their own apps)."""

from django.dispatch import Signal

# A dataset's data classes changed: `dataset`, `reason`. Sent inside the change's transaction.
dataset_classified = Signal()
