"""What the audits layer announces to the layers above (`workflow.lifecycle` reacts). Sent inside
the transaction of the change."""

from django.dispatch import Signal

# An audit ended, completed or failed: `audit`.
audit_finished = Signal()
# The privacy officer released or blocked an adapter: `run`, `decision`.
release_decided = Signal()
