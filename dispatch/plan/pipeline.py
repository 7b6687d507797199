"""The plan, end to end: demand -> requirements -> roster -> simulation -> correction.

:func:`make_plan` runs the four steps of the module docstrings of :mod:`dispatch.plan`
(``demand``, ``requirements``, ``roster``, ``isa``) and returns everything the plan folder
shows (:mod:`dispatch.plan.output`). It writes nothing.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from dispatch.errors import ConfigError
from dispatch.plan.config import PlanConfig
from dispatch.plan.demand import Demand, build_demand
from dispatch.plan.evaluate import Validation, simulate_roster
from dispatch.plan.horizon import expand_scenario
from dispatch.plan.isa import (
    Miss,
    find_misses,
    raise_demand,
    raise_for_harm,
    why_unmet,
)
from dispatch.plan.requirements import Pools, Requirements, compute_requirements, make_pools
from dispatch.plan.roster import RosterProblem, RosterSolution, pool_rules, solve_roster
from dispatch.plan.rosterfile import roster_groups
from dispatch.scenario import Scenario, apply_overrides, read_yaml, scenario_from_dict


@dataclass
class Iteration:
    n: int
    cost: float
    paid_hours: float
    headcount: int
    status: str
    gap: float
    solve_s: float
    misses: int
    objective: float  # simulated, mean over seeds
    harm: float


@dataclass
class FrontierPoint:
    budget_hours: float
    paid_hours: float
    cost: float
    objective: tuple[float, float, float]  # mean, lo, hi
    sla: tuple[float, float, float]
    harm: tuple[float, float, float]


@dataclass
class PlanResult:
    cfg: PlanConfig
    scenario: Scenario
    demand: Demand
    pools: Pools
    requirements: Requirements
    solution: RosterSolution
    groups: list[dict[str, Any]]  # roster.yaml reviewers (plan weekdays)
    validation: Validation
    iterations: list[Iteration]
    unmet: list[tuple[Miss, str]]
    targets: dict[str, dict[str, float]]
    frontier: list[FrontierPoint] = field(default_factory=list)
    wall_s: float = 0.0
    harm_budget_met: bool | None = None


@dataclass
class _Context:
    cfg: PlanConfig
    raw: dict[str, Any]
    scenario: Scenario
    demand: Demand
    pools: Pools
    sim_raw: dict[str, Any]
    lead: int
    targets: dict[str, dict[str, float]]
    workers: int
    seeds: list[int]
    time_limit: float


def prepare(cfg: PlanConfig, workers: int = 1, seeds=None, time_limit=None) -> _Context:
    """Load the scenario, expand the horizon, compute demand and pools (steps 0-1)."""
    path = cfg.scenario_path()
    raw = apply_overrides(read_yaml(path), cfg.overrides)
    raw["base_dir"] = str(path.parent.resolve())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scen = scenario_from_dict(expand_scenario(raw, cfg, 0), source=str(path))
    imported = None
    if scen.data.task_logs:
        from dispatch.importers import resolve_data

        scen, imported = resolve_data(scen)
    demand = build_demand(scen, cfg.horizon.interval, cfg.horizon.days, imported)
    pools = make_pools(scen, cfg)
    lead = cfg.simulation.warmup_days
    targets = {c.name: cfg.targets_of(c.name) for c in scen.classes}
    return _Context(
        cfg,
        raw,
        scen,
        demand,
        pools,
        expand_scenario(raw, cfg, lead),
        lead,
        targets,
        workers,
        list(seeds if seeds is not None else cfg.simulation.seeds),
        float(time_limit if time_limit is not None else cfg.solver.time_limit),
    )


def roster_problem(ctx: _Context, req: Requirements, budget: float | None) -> RosterProblem:
    cfg = ctx.cfg
    weights = _value_weights(ctx, req) if budget is not None else None
    return RosterProblem(
        days=cfg.horizon.days,
        interval=cfg.horizon.interval,
        required=req.required,
        pools=[
            pool_rules(n, i, cfg.horizon.days)
            for n, i in zip(ctx.pools.names, ctx.pools.inputs, strict=True)
        ],
        mode="budget" if budget is not None else "min_cost",
        budget_hours=budget,
        weights=weights,
    )


def _value_weights(ctx: _Context, req: Requirements) -> np.ndarray:
    """Budget mode: the value of a person-interval of each pool, from the holding costs of
    the work the split gave it (normalised to mean 1)."""
    hc = np.array([c.holding_cost for c in ctx.scenario.classes])
    num = np.zeros_like(req.load)
    den = np.zeros_like(req.load)
    for (k, m, g), x in req.share.items():
        a = ctx.demand.rate[:, k, m] * ctx.demand.mean_handling[k] * x
        num[:, g] += a * hc[k]
        den[:, g] += a
    w = np.where(den > 0, num / np.maximum(den, 1e-12), 0.0)
    mean = w[den > 0].mean() if (den > 0).any() else 1.0
    return np.clip(w / max(mean, 1e-9), 0.05, 20.0)


def solve_and_simulate(ctx: _Context, req: Requirements, budget: float | None, progress=None):
    prob = roster_problem(ctx, req, budget)
    s = ctx.cfg.solver
    sol = solve_roster(prob, time_limit=ctx.time_limit, workers=s.workers, gap=s.relative_gap)
    if not sol.people and sol.status not in ("OPTIMAL", "FEASIBLE"):
        raise ConfigError(
            f"the roster solver ended {sol.status} within {ctx.time_limit:g} s; raise "
            "--time-limit or loosen the pools' rules",
            field="solver.time_limit",
        )
    week = ctx.cfg.horizon.days == 7
    groups = roster_groups(
        sol.people,
        ctx.pools.specs,
        week=week,
        day_offset=ctx.lead if week else 0,
        wellbeing_cap=ctx.cfg.wellbeing_cap,
    )
    val = simulate_roster(
        {**ctx.sim_raw, "reviewers": groups},
        (ctx.cfg.dispatcher.name, ctx.cfg.dispatcher.params),
        ctx.seeds,
        ctx.cfg.horizon.interval,
        ctx.demand.n_intervals,
        ctx.workers,
        progress,
    )
    return sol, val


def shortfall_error(ctx: _Context, req: Requirements, sol: RosterSolution) -> ConfigError:
    i, g = np.unravel_index(np.argmax(sol.shortfall), sol.shortfall.shape)
    pool = ctx.pools.names[g]
    streams = [
        (float(x[i] * ctx.demand.rate[i, k, m]), ctx.demand.classes[k], ctx.demand.markets[m])
        for (k, m, gg), x in req.share.items()
        if gg == g
    ]
    _, cls, market = max(streams) if streams else (0, "?", "?")
    head = ctx.pools.inputs[g]["max_headcount"]
    return ConfigError(
        f"class {cls}, market {market}, interval {ctx.demand.label(int(i))}: pool {pool} "
        f"needs {int(req.required[i, g])} on duty but max_headcount {head} leaves it "
        f"{int(sol.shortfall[i, g])} short under its shift rules; raise max_headcount or "
        "allow more shift templates",
        field=f"pools.{pool}.max_headcount",
    )


def make_plan(
    cfg: PlanConfig, *, workers: int = 1, seeds=None, time_limit=None, progress: bool = False
) -> PlanResult:
    """Run the whole plan (see the module docstring)."""
    t0 = time.perf_counter()
    ctx = prepare(cfg, workers, seeds, time_limit)
    mode, budget = cfg.objective.mode, cfg.objective.budget_hours
    budget = budget if mode == "budget" else None
    inflation = np.ones((ctx.demand.n_intervals, len(ctx.demand.classes)))
    bar = _bar(progress, (cfg.simulation.max_iterations + 1) * len(ctx.seeds))
    iterations: list[Iteration] = []
    best = None
    misses: list[Miss] = []
    for n in range(cfg.simulation.max_iterations + 1):
        req = compute_requirements(ctx.demand, ctx.scenario, cfg, ctx.pools, inflation)
        sol, val = solve_and_simulate(ctx, req, budget, bar.update1 if bar else None)
        short = sol.shortfall.sum() > 0 and budget is None
        if short and n == 0:
            raise shortfall_error(ctx, req, sol)
        misses = find_misses(val, ctx.demand.classes, ctx.targets, cfg.simulation.confidence)
        harm_ok = _harm_ok(cfg, val)
        obj = float(np.mean(val.overall["objective"]))
        iterations.append(
            Iteration(
                n,
                sol.cost,
                sol.paid_hours,
                len(sol.people),
                sol.status,
                sol.gap,
                sol.wall_s,
                len(misses),
                obj,
                float(np.mean(val.overall["harm_exposure"])),
            )
        )
        cand = (req, sol, val, misses, harm_ok)
        if best is None or _better(cand, best, budget is not None):
            best = cand
        if (not misses and harm_ok is not False) or short:
            break
        inflation = raise_demand(inflation, misses, ctx.demand.classes, cfg.simulation.step)
        if harm_ok is False:
            inflation = raise_for_harm(inflation, val, ctx.demand.classes, cfg.simulation.step)
    if bar:
        bar.close()
    req, sol, val, misses, harm_ok = best
    short_pools = [ctx.pools.names[g] for g in np.nonzero(sol.shortfall.sum(axis=0))[0]]
    unmet = [(m, why_unmet(m, inflation, ctx.demand.classes, short_pools, mode)) for m in misses]
    groups = roster_groups(
        sol.people, ctx.pools.specs, week=cfg.horizon.days == 7, wellbeing_cap=cfg.wellbeing_cap
    )
    result = PlanResult(
        cfg,
        ctx.scenario,
        ctx.demand,
        ctx.pools,
        req,
        sol,
        groups,
        val,
        iterations,
        unmet,
        ctx.targets,
        harm_budget_met=harm_ok,
    )
    result.frontier = [frontier_point(ctx, inflation, b) for b in cfg.objective.sweep]
    result.wall_s = time.perf_counter() - t0
    return result


def _better(a, b, budget_mode: bool) -> bool:
    """Budget mode keeps the iteration with the best simulated objective; min-cost mode the
    last (most corrected) one."""
    if not budget_mode:
        return True
    return float(np.mean(a[2].overall["objective"])) < float(np.mean(b[2].overall["objective"]))


def _harm_ok(cfg: PlanConfig, val: Validation) -> bool | None:
    if cfg.harm_budget is None:
        return None
    return bool(np.mean(val.overall["harm_exposure"]) <= cfg.harm_budget)


def frontier_point(ctx: _Context, inflation: np.ndarray, budget: float) -> FrontierPoint:
    """Plan at ``budget`` hours (budget mode, no correction) and simulate it."""
    from dispatch.plan.evaluate import mean_ci

    req = compute_requirements(ctx.demand, ctx.scenario, ctx.cfg, ctx.pools, inflation)
    sol, val = solve_and_simulate(ctx, req, budget)
    sla = np.array(
        [
            np.nanmean(
                [
                    v["sla_attainment"]
                    for v in [
                        {k: val.per_class[c][k][s] for k in val.per_class[c]} for c in val.per_class
                    ]
                ]
            )
            for s in range(len(val.seeds))
        ]
    )

    def ci(x):
        m, lo, hi = mean_ci(np.asarray(x)[:, None], ctx.cfg.simulation.confidence)
        return float(m[0]), float(lo[0]), float(hi[0])

    return FrontierPoint(
        budget,
        sol.paid_hours,
        sol.cost,
        ci(val.overall["objective"]),
        ci(sla),
        ci(val.overall["harm_exposure"]),
    )


class _Bar:
    def __init__(self, total: int):
        from tqdm import tqdm

        self.t = tqdm(total=total, desc="plan: simulated seeds", unit="seed")

    def update1(self) -> None:
        self.t.update(1)

    def close(self) -> None:
        self.t.close()


def _bar(on: bool, total: int) -> _Bar | None:
    return _Bar(total) if on else None
