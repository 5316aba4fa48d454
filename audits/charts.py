"""Charts of an audit report, as SVG text (matplotlib): the ROC curves of the membership attacks
against the region the claimed (ε, δ) allows, and the canaries' exposure histograms. Figures only:
a chart never shows a record or a secret, only scores and rates."""

from __future__ import annotations

import io

ATTACK_LABELS = {"loss": "loss", "zlib": "zlib ratio", "min_k": "Min-K% prob", "reference": "reference-calibrated"}


def _svg(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.StringIO()
    figure.tight_layout()
    figure.savefig(buffer, format="svg", metadata={"Date": None})  # no timestamp: same report, same chart
    plt.close(figure)
    return buffer.getvalue()


def roc_chart(membership: dict, epsilon: float | None, delta: float | None) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt
    import numpy as np

    from audits.engine.membership import dp_tpr_limit

    figure, axes = plt.subplots(figsize=(6, 4.2))
    for name, attack in membership.get("attacks", {}).items():
        axes.plot(np.maximum(attack["roc_fpr"], 1e-4), attack["roc_tpr"], linewidth=1.4,
                  label=f"{ATTACK_LABELS.get(name, name)} (AUC {attack['auc']:.3f})")
    grid = np.logspace(-4, 0, 200)
    axes.plot(grid, grid, color="grey", linestyle=":", linewidth=1, label="guessing")
    if epsilon is not None:
        axes.plot(grid, dp_tpr_limit(grid, epsilon, delta or 0.0), color="black", linestyle="--", linewidth=1,
                  label=f"most an attack can reach under ε = {epsilon:.2f}")
    axes.set_xscale("log")
    axes.set_xlim(1e-4, 1)
    axes.set_ylim(0, 1.02)
    axes.set_xlabel("false positive rate (non-members accused)")
    axes.set_ylabel("true positive rate (members found)")
    axes.grid(alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    return _svg(figure)


def exposure_chart(canaries: list[dict]) -> str:
    import matplotlib

    matplotlib.use("svg")
    import matplotlib.pyplot as plt

    shown = [c for c in canaries if c.get("histogram")][:6]
    columns = min(3, len(shown))
    rows = (len(shown) + columns - 1) // columns
    figure, grid = plt.subplots(rows, columns, figsize=(3.1 * columns, 2.4 * rows), squeeze=False)
    for axes in grid.flat[len(shown):]:
        axes.axis("off")
    for axes, canary in zip(grid.flat, shown):
        histogram = canary["histogram"]
        edges, counts = histogram["edges"], histogram["counts"]
        axes.stairs(counts, edges, fill=True, alpha=0.5, color="tab:blue")
        axes.axvline(histogram["secret_score"], color="tab:red", linewidth=1.6)
        axes.set_title(f"canary {canary['index'] + 1}: {canary['exposure_bits']:.1f} of {canary['max_bits']:.1f} bits", fontsize=8)
        axes.set_xlabel("log-perplexity (red: the real secret)", fontsize=7)
        axes.tick_params(labelsize=6)
    return _svg(figure)


def render_charts(report: dict, epsilon: float | None, delta: float | None) -> dict[str, str]:
    charts = {}
    if (report.get("membership") or {}).get("attacks"):
        charts["roc"] = roc_chart(report["membership"], epsilon, delta)
    if any(c.get("histogram") for c in report.get("canaries") or []):
        charts["exposure"] = exposure_chart(report["canaries"])
    return charts
