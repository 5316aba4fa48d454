"""What the training layer announces to the layers above; they react in their own apps
(`workflow.lifecycle`). Sent inside the transaction of the change, so a receiver's writes commit
or roll back with it; work to enqueue goes through `transaction.on_commit`."""

from django.dispatch import Signal

# A run's state changed (started, succeeded, failed, cancelled, reaped): `run`.
run_changed = Signal()
