"""Workforce planning ("audit scheduling"): staffing and rosters from a demand forecast.

``dispatch plan PLAN.yaml`` (or :func:`plan`) runs four visible steps:

1. :mod:`~dispatch.plan.demand`: demand per interval x class x market;
2. :mod:`~dispatch.plan.requirements`: people per interval and pool (Erlang C / Erlang A or
   square-root staffing, the work split over eligible pools by an LP);
3. :mod:`~dispatch.plan.roster`: a CP-SAT roster (shift templates, breaks, labour rules);
4. :mod:`~dispatch.plan.isa`: simulation-based correction until every target holds.

The plan file is :mod:`~dispatch.plan.config`; the folder :mod:`~dispatch.plan.output`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.plan.config import PlanConfig, load_plan

__all__ = ["PlanConfig", "load_plan", "plan"]


def plan(
    path_or_cfg: str | Path | PlanConfig,
    out: str | Path | None = None,
    *,
    workers: int = 1,
    seeds: list[int] | None = None,
    time_limit: float | None = None,
    progress: bool = False,
    overrides: dict[str, Any] | None = None,
):
    """Run a plan file; write its folder when ``out`` is given. Returns the PlanResult."""
    from dispatch.plan.pipeline import make_plan

    cfg = path_or_cfg if isinstance(path_or_cfg, PlanConfig) else load_plan(path_or_cfg, overrides)
    result = make_plan(cfg, workers=workers, seeds=seeds, time_limit=time_limit, progress=progress)
    if out is not None:
        from dispatch.plan.output import write_plan

        write_plan(result, Path(out))
    return result
