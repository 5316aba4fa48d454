"""The privacy ledger: how much ε each dataset has spent across all the runs that trained on it.

Every DP run on a dataset releases something about its records; the releases add up. A data class
may cap the total (`DataClass.max_total_epsilon`); policy refuses a request that would go past it.

The budget belongs to the data, not to a database row: every upload of the same content (the
SHA-256 of its plaintext) shares one budget, so uploading the file again does not start afresh.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, replace

PRV = "prv"  # composed with Opacus's PRV accountant (the runs' default)
RDP = "rdp"  # composed with Opacus's RDP accountant
BASIC = "basic"  # sum of ε and sum of δ
UNBOUNDED = "unbounded"  # a run without DP (or without a recorded ε): no finite bound
NONE = "none"  # no run yet


@dataclass(frozen=True)
class LedgerEntry:
    """One succeeded run as the ledger sees it (values from the run's result)."""

    run_id: int
    dp: bool
    epsilon: float | None
    delta: float | None
    noise_multiplier: float | None
    sample_rate: float | None
    steps: int | None
    accountant: str | None

    @property
    def composable(self) -> bool:
        """Carries what an RDP accountant needs to replay it: σ, q, steps and its δ."""
        return bool(self.dp and self.noise_multiplier and self.sample_rate and self.steps is not None and self.delta)


@dataclass(frozen=True)
class Budget:
    dataset_id: int
    runs: int
    epsilon: float | None  # None: unbounded (a run without DP)
    delta: float | None
    method: str  # PRV, RDP, BASIC, UNBOUNDED or NONE
    entries: tuple[LedgerEntry, ...]
    cap: float | None = None  # the smallest max_total_epsilon among the dataset's classes
    cap_class: str = ""
    # Runs queued or running: not spent yet, but they will release an adapter. Their target ε is
    # held against the cap (basic composition), so two requests approved together cannot both
    # pass it. A failed or cancelled run releases nothing and holds nothing.
    reserved: float = 0.0
    reserved_runs: int = 0
    reserved_unbounded: bool = False  # a queued or running run trains without DP

    @property
    def unbounded(self) -> bool:
        return self.method == UNBOUNDED

    @property
    def remaining(self) -> float | None:
        """ε still available under the cap; None when there is no cap."""
        if self.cap is None:
            return None
        if self.epsilon is None or self.reserved_unbounded:
            return 0.0
        return max(0.0, self.cap - self.epsilon - self.reserved)

    @property
    def summary(self) -> str:
        if self.method == NONE:
            return "No training run has used this dataset yet: no privacy budget is spent."
        runs = f"{self.runs} run{'s' if self.runs != 1 else ''}"
        if self.method == UNBOUNDED:
            return (f"{runs} trained on this dataset, and at least one without differential privacy (or without a "
                    "recorded ε): the privacy loss has no finite bound.")
        how = {PRV: "composed with the PRV accountant", RDP: "composed with the RDP accountant"}.get(
            self.method, "added up (basic composition)")
        return f"{runs} trained on this dataset: ε = {self.epsilon:.3g} at δ = {self.delta:.3g}, {how}."


def _runs_on_content(dataset):
    """Runs that trained on this dataset or on any other upload of the same content."""
    from training.models import TrainingRun

    return TrainingRun.objects.filter(datasets__sha256=dataset.sha256).distinct()


def entries_for(dataset) -> list[LedgerEntry]:
    from training.models import RunState

    entries = []
    for run in _runs_on_content(dataset).filter(state=RunState.SUCCEEDED).order_by("pk"):
        result, dp = run.result or {}, (run.config or {}).get("training", {}).get("dp", True)
        entries.append(LedgerEntry(
            run_id=run.pk, dp=bool(dp and result.get("epsilon") is not None), epsilon=result.get("epsilon"),
            delta=result.get("delta"), noise_multiplier=result.get("noise_multiplier"),
            sample_rate=result.get("sample_rate"), steps=result.get("steps"), accountant=result.get("accountant"),
        ))
    return entries


# The engine reports a run's ε with the accountant's default precision; a single run is replayed
# with the same, so it reads the same ε here as on its run page. Several runs are composed with a
# coarser grid (still an upper bound, at most this much above the exact one): PRV's cost grows
# fast with heterogeneous histories (8 s against 0.8 s for three long runs on this machine).
SINGLE_RUN_EPS_ERROR, COMPOSED_EPS_ERROR = 0.01, 0.05


@functools.lru_cache(maxsize=256)
def _composed_epsilon(accountant_name: str, history: tuple[tuple[float, float, int], ...], delta: float) -> float:
    from opacus.accountants import PRVAccountant, RDPAccountant

    accountant = PRVAccountant() if accountant_name == PRV else RDPAccountant()
    accountant.history = list(history)
    if accountant_name == RDP:
        return float(accountant.get_epsilon(delta))
    precision = SINGLE_RUN_EPS_ERROR if len(history) == 1 else COMPOSED_EPS_ERROR
    return float(accountant.get_epsilon(delta, eps_error=precision))


def compose(dataset_id: int, entries: list[LedgerEntry]) -> Budget:
    """The total ε of these runs.

    When every run recorded its noise multiplier σ, sample rate q and step count, all their
    histories go into one accountant: the one the runs reported with (PRV by default; RDP when
    every run used RDP), so a dataset trained on once reads the very ε its run reported. Both
    compose heterogeneous (σ, q, steps) histories of Poisson-subsampled Gaussian mechanisms, which
    every run is whichever accountant chose its σ, and composing once is far tighter than adding
    the runs' ε. δ is the largest run δ. A subject-level guarantee implies the record-level one,
    so mixed runs compose at the record level.

    Otherwise (a run without those parameters) basic composition: the sum of ε and of δ, which
    always holds and is conservative. A run without DP (or with no recorded ε) makes the total
    unbounded.
    """
    entries = tuple(entries)
    if not entries:
        return Budget(dataset_id, 0, 0.0, 0.0, NONE, entries)
    if not all(e.dp for e in entries):
        return Budget(dataset_id, len(entries), None, None, UNBOUNDED, entries)
    if all(e.composable for e in entries):
        method = RDP if all(e.accountant == RDP for e in entries) else PRV
        history = tuple((float(e.noise_multiplier), float(e.sample_rate), int(e.steps)) for e in entries if e.steps)
        delta = max(e.delta for e in entries)
        epsilon = _composed_epsilon(method, history, float(delta)) if history else 0.0
        return Budget(dataset_id, len(entries), epsilon, delta, method, entries)
    return Budget(dataset_id, len(entries), sum(e.epsilon for e in entries), sum(e.delta or 0.0 for e in entries), BASIC, entries)


def reserved_for(dataset, exclude_run_id: int | None = None) -> tuple[float, int, bool]:
    """(target ε held by the dataset's queued and running runs, how many, whether one trains without DP)."""
    from training.models import ACTIVE_RUN_STATES

    held, count, unbounded = 0.0, 0, False
    for run in _runs_on_content(dataset).filter(state__in=ACTIVE_RUN_STATES).exclude(pk=exclude_run_id):
        training = (run.config or {}).get("training", {})
        count += 1
        if training.get("dp", True):
            held += float(training.get("target_epsilon", 0.0))
        else:
            unbounded = True
    return held, count, unbounded


def budget_for(dataset, exclude_run_id: int | None = None) -> Budget:
    """The dataset's spent ε, what its queued and running runs hold (all but `exclude_run_id`: a
    run checked at its own start does not hold against itself), the cap of its strictest class
    and what remains under it."""
    budget = compose(dataset.pk, entries_for(dataset))
    held, count, unbounded = reserved_for(dataset, exclude_run_id)
    budget = replace(budget, reserved=held, reserved_runs=count, reserved_unbounded=unbounded)
    capped = [c for c in dataset.data_classes.all() if c.max_total_epsilon is not None]
    if capped:
        tightest = min(capped, key=lambda c: c.max_total_epsilon)
        budget = replace(budget, cap=tightest.max_total_epsilon, cap_class=tightest.name)
    return budget


def dataset_page_context(dataset) -> dict:
    """The budget for the dataset's page (registered in workflow.apps)."""
    return {"budget": budget_for(dataset)}
