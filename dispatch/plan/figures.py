"""Figures of a plan: staffing vs demand, attainment vs target, cost vs service frontier."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dispatch.plan.pipeline import PlanResult
from dispatch.plan.roster import coverage


def _save(fig, path: Path) -> None:
    """Figures are written inside the plan's temporary folder, published by its rename."""
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)


def staffing_figure(r: PlanResult, path: Path) -> Path:
    """People on duty per interval stacked by pool, over the requirement and the load."""
    import matplotlib.pyplot as plt

    n_i, n_g = r.requirements.required.shape
    L = r.cfg.horizon.interval
    cov = coverage(r.solution.people, n_i, L, n_g)
    x = np.arange(n_i) * L / 60.0
    fig, ax = plt.subplots(figsize=(11, 4.2))
    ax.stackplot(x, cov.T, labels=r.pools.names, step="post", alpha=0.8)
    ax.step(
        x,
        r.requirements.required.sum(axis=1),
        where="post",
        color="k",
        lw=1.4,
        label="required (all pools)",
    )
    ax.step(
        x,
        r.requirements.load.sum(axis=1),
        where="post",
        color="k",
        ls=":",
        lw=1.2,
        label="offered load (reviewer-equivalents)",
    )
    ax.set_xlabel("hour of the horizon")
    ax.set_ylabel("reviewers on duty")
    ax.set_title(f"{r.cfg.name}: rostered staff by pool vs requirement and demand")
    ax.legend(fontsize=7, ncol=2, loc="upper left")
    _save(fig, path)
    return path


def attainment_figure(r: PlanResult, path: Path) -> Path:
    """Simulated share within SLA per interval and class (mean and CI) against the target."""
    import matplotlib.pyplot as plt

    level = r.cfg.simulation.confidence
    mean, lo, hi = r.validation.ci("sla", level)
    classes = [c for c in r.demand.classes if "sla" in r.targets.get(c, {})]
    L = r.cfg.horizon.interval
    x = np.arange(mean.shape[0]) * L / 60.0
    cols = 2
    rows = max(1, (len(classes) + cols - 1) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(11, 2.2 * rows), squeeze=False, sharex=True)
    for ax, cls in zip(axes.flat, classes, strict=False):
        k = r.demand.classes.index(cls)
        ax.fill_between(x, lo[:, k], hi[:, k], step="post", alpha=0.3)
        ax.step(x, mean[:, k], where="post", lw=1.2)
        ax.axhline(r.targets[cls]["sla"], color="r", ls="--", lw=1)
        ax.set_title(cls, fontsize=9)
        ax.set_ylim(max(0.0, np.nanmin(lo[:, k], initial=1.0) - 0.05), 1.01)
    for ax in axes.flat[len(classes) :]:
        ax.axis("off")
    fig.suptitle(
        f"share decided within SLA per interval ({int(level * 100)}% CI, "
        f"{len(r.validation.seeds)} seeds) vs target (red)",
        fontsize=10,
    )
    _save(fig, path)
    return path


def frontier_figure(r: PlanResult, path: Path) -> Path:
    """Cost (paid hours) vs simulated objective over the budget sweep."""
    import matplotlib.pyplot as plt

    hours = [p.paid_hours for p in r.frontier]
    obj = np.array([p.objective for p in r.frontier])
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.errorbar(
        hours, obj[:, 0], yerr=[obj[:, 0] - obj[:, 1], obj[:, 2] - obj[:, 0]], marker="o", capsize=3
    )
    ax.set_xlabel("paid reviewer-hours")
    ax.set_ylabel("simulated objective (lower is better)")
    ax.set_title("cost vs service frontier (budget sweep)")
    _save(fig, path)
    return path


def plan_figures(r: PlanResult, folder: Path) -> list[Path]:
    folder = Path(folder)
    out = [staffing_figure(r, folder / "staffing.png"), attainment_figure(r, folder / "sla.png")]
    if r.frontier:
        out.append(frontier_figure(r, folder / "frontier.png"))
    return out
