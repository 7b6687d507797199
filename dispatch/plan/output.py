"""The plan folder, written atomically: built in a hidden sibling folder, renamed at the end.

``roster.yaml`` (a ``reviewers:`` section for any scenario), ``requirements.csv`` (per
interval and pool: load and required people, plus the roster's coverage), ``demand.csv``,
``plan.json`` (cost, hours, headcount per pool, solver status/bound/gap, iterations, unmet
targets), ``validation.csv`` (simulated measures per class and interval with CIs),
``frontier.csv`` (budget sweep), ``figures/`` and ``report.md``. A failure before the
rename leaves the previous folder (if any) untouched and no half-written one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from dispatch.io import atomic_write_frame, atomic_write_json, atomic_write_text
from dispatch.plan.evaluate import MEASURES, TARGET_OF
from dispatch.plan.pipeline import PlanResult
from dispatch.plan.roster import coverage
from dispatch.plan.rosterfile import roster_yaml


def plan_summary(r: PlanResult) -> dict:
    sol = r.solution
    heads = sol.headcount(len(r.pools.names))
    return {
        "name": r.cfg.name,
        "scenario": r.scenario.name,
        "dispatcher": r.cfg.dispatcher.model_dump(),
        "mode": r.cfg.objective.mode,
        "days": r.cfg.horizon.days,
        "interval": r.cfg.horizon.interval,
        "cost": sol.cost,
        "paid_hours": sol.paid_hours,
        "reviewer_hours_per_day": sol.paid_hours / r.cfg.horizon.days,
        "headcount": dict(zip(r.pools.names, heads, strict=True)),
        "headcount_total": int(sum(heads)),
        "solver": {
            "status": sol.status,
            "objective": sol.objective,
            "bound": sol.bound,
            "gap": sol.gap,
            "wall_s": sol.wall_s,
        },
        "iterations": [vars(it) for it in r.iterations],
        "targets_met": not r.unmet,
        "unmet": [
            {
                "class": m.cls,
                "interval": r.demand.label(m.interval),
                "target": m.target,
                "goal": m.goal,
                "mean": m.value,
                "ci": [m.lo, m.hi],
                "short_by": m.gap(),
                "why": why,
            }
            for m, why in r.unmet
        ],
        "harm_budget_met": r.harm_budget_met,
        "simulated": {k: float(np.mean(v)) for k, v in r.validation.overall.items()},
        "seeds": r.validation.seeds,
        "wall_s": r.wall_s,
    }


def validation_frame(r: PlanResult) -> pd.DataFrame:
    level = r.cfg.simulation.confidence
    rows = []
    stats = {m: r.validation.ci(m, level) for m in MEASURES}
    for k, cls in enumerate(r.demand.classes):
        goals = {TARGET_OF[t]: v for t, v in r.targets.get(cls, {}).items()}
        for i in range(r.demand.n_intervals):
            row = {"interval": i, "label": r.demand.label(i), "class": cls}
            for m in MEASURES:
                mean, lo, hi = (x[i, k] for x in stats[m])
                row |= {m: mean, f"{m}_lo": lo, f"{m}_hi": hi, f"{m}_target": goals.get(m)}
            rows.append(row)
    return pd.DataFrame(rows)


def requirements_frame(r: PlanResult) -> pd.DataFrame:
    df = r.requirements.frame(r.demand)
    n_i, n_g = r.requirements.required.shape
    cov = coverage(r.solution.people, n_i, r.cfg.horizon.interval, n_g)
    df["rostered"] = cov.reshape(-1).round(3)
    return df


def frontier_frame(r: PlanResult) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "budget_hours": p.budget_hours,
                "paid_hours": p.paid_hours,
                "cost": p.cost,
                "objective": p.objective[0],
                "objective_lo": p.objective[1],
                "objective_hi": p.objective[2],
                "sla": p.sla[0],
                "sla_lo": p.sla[1],
                "sla_hi": p.sla[2],
                "harm": p.harm[0],
                "harm_lo": p.harm[1],
                "harm_hi": p.harm[2],
            }
            for p in r.frontier
        ]
    )


def write_plan(r: PlanResult, out: Path, figures: bool = True) -> Path:
    """Write the plan folder ``out`` atomically and return it."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        header = (
            f"Roster planned by `dispatch plan` ({r.cfg.name}): {r.solution.paid_hours:g} "
            f"paid reviewer-hours, {len(r.solution.people)} people.\n"
            "Drop the reviewers: section into a scenario, or name this file as `roster:` "
            "of a scenario in an experiment."
        )
        atomic_write_text(tmp / "roster.yaml", roster_yaml(r.groups, header))
        atomic_write_frame(tmp / "requirements.csv", requirements_frame(r))
        atomic_write_frame(tmp / "demand.csv", r.demand.frame())
        atomic_write_frame(tmp / "validation.csv", validation_frame(r))
        if r.frontier:
            atomic_write_frame(tmp / "frontier.csv", frontier_frame(r))
        atomic_write_json(tmp / "plan.json", plan_summary(r))
        figs = []
        if figures:
            from dispatch.plan.figures import plan_figures

            figs = plan_figures(r, tmp / "figures")
        from dispatch.plan.report import report_md

        atomic_write_text(tmp / "report.md", report_md(r, plan_summary(r), figs))
        os.chmod(tmp, 0o755)
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _swap_in(tmp: Path, out: Path) -> None:
    """Replace ``out`` by ``tmp``: the old folder goes aside first, then is removed."""
    old = None
    if out.exists():
        old = out.with_name(f".{out.name}.old-{os.getpid()}")
        os.replace(out, old)
    os.replace(tmp, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
