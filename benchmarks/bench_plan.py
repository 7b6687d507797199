"""Benchmark of `dispatch plan` (issue 13): quality on ecommerce_day, the week-scale roster solve.

    python benchmarks/bench_plan.py quality     # day plan on 10 seeds; budget plan vs hand roster
    python benchmarks/bench_plan.py roster      # week, 500+ people, 30-min intervals: CP-SAT gap/time
    python benchmarks/bench_plan.py week        # the whole week plan with simulation iterations

Figures are ratios/differences against the hand-made roster measured in the same run.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SEEDS = list(range(10))


def hand_roster(policy: str = "harm_rate") -> dict:
    """The scenario's own roster under the plan's dispatcher, simulated like a plan."""
    from dispatch.plan import load_plan
    from dispatch.plan.evaluate import simulate_roster
    from dispatch.plan.pipeline import prepare

    cfg = load_plan(ROOT / "experiments/plans/ecommerce_day.yaml")
    ctx = prepare(cfg, workers=2, seeds=SEEDS)
    data = dict(ctx.sim_raw)
    data["reviewers"] = ctx.raw["reviewers"]
    val = simulate_roster(data, (policy, {}), SEEDS, 30, ctx.demand.n_intervals, 2)
    # reviewer_hours counts the measured window (one day; the lead day is warm-up).
    return {"val": val, "hours": float(np.mean(val.overall["reviewer_hours"]))}


def quality() -> dict:
    from dispatch.plan import load_plan
    from dispatch.plan.evaluate import mean_ci
    from dispatch.plan.pipeline import make_plan

    out = {}
    cfg = load_plan(ROOT / "experiments/plans/ecommerce_day.yaml", {"simulation.seeds": SEEDS})
    t = time.perf_counter()
    res = make_plan(cfg, workers=2)
    out["min_cost"] = {
        "wall_s": time.perf_counter() - t,
        "paid_hours": res.solution.paid_hours,
        "people": len(res.solution.people),
        "gap": res.solution.gap,
        "iterations": len(res.iterations),
        "unmet_class_intervals": len(res.unmet),
        "per_class_sla_ci": {},
    }
    for cls, tg in res.targets.items():
        if "sla" in tg:
            m, lo, hi = mean_ci(res.validation.per_class[cls]["sla_attainment"][:, None], 0.95)
            out["min_cost"]["per_class_sla_ci"][cls] = [
                float(m[0]),
                float(lo[0]),
                float(hi[0]),
                tg["sla"],
            ]
    hand = hand_roster()
    hours = hand["hours"]
    cfgb = load_plan(
        ROOT / "experiments/plans/ecommerce_day.yaml",
        {
            "simulation.seeds": SEEDS,
            "objective.mode": "budget",
            "objective.budget_hours": hours,
            "simulation.max_iterations": 2,
        },
    )
    resb = make_plan(cfgb, workers=2)
    for key in ("objective", "harm_exposure"):
        d = resb.validation.overall[key] - hand["val"].overall[key]
        m, lo, hi = mean_ci(d[:, None], 0.95)
        out[f"budget_vs_hand_{key}"] = {
            "hand": float(np.mean(hand["val"].overall[key])),
            "plan": float(np.mean(resb.validation.overall[key])),
            "paired_diff": [float(m[0]), float(lo[0]), float(hi[0])],
        }
    out["hand_hours_per_day"] = hours
    out["budget_plan_paid_hours"] = resb.solution.paid_hours
    return out


def week_problem(scale: float = 2.0):
    """The ecommerce week's requirements x ``scale`` (a generated 500+ people instance)."""
    from dispatch.plan import load_plan
    from dispatch.plan.pipeline import prepare, roster_problem
    from dispatch.plan.requirements import compute_requirements

    cfg = load_plan(ROOT / "experiments/plans/ecommerce_week.yaml")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ctx = prepare(cfg)
    req = compute_requirements(ctx.demand, ctx.scenario, cfg, ctx.pools)
    req.required = np.ceil(req.required * scale).astype(int)
    return roster_problem(ctx, req, None)


def roster(time_limit: float = 60.0, scale: float = 2.0) -> dict:
    from dispatch.plan.roster import solve_roster

    prob = week_problem(scale)
    sol = solve_roster(prob, time_limit=time_limit, workers=2, gap=0.005)
    return {
        "people": len(sol.people),
        "status": sol.status,
        "gap": sol.gap,
        "wall_s": sol.wall_s,
        "paid_hours": sol.paid_hours,
        "time_limit": time_limit,
    }


def week() -> dict:
    from dispatch.plan import load_plan
    from dispatch.plan.pipeline import make_plan

    cfg = load_plan(ROOT / "experiments/plans/ecommerce_week.yaml")
    t = time.perf_counter()
    res = make_plan(cfg, workers=2)
    return {
        "wall_s": time.perf_counter() - t,
        "people": len(res.solution.people),
        "paid_hours": res.solution.paid_hours,
        "gap": res.solution.gap,
        "iterations": len(res.iterations),
        "unmet": len(res.unmet),
    }


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "quality"
    fn = {"quality": quality, "roster": roster, "week": week}[what]
    print(json.dumps(fn(), indent=2, default=float))
