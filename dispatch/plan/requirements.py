"""Requirements: how many reviewers of each pool each interval needs (step 2 of the plan).

Three moves, each visible in ``requirements.csv``:

1. **Per stream** (interval x class x market): the staffing formula of the plan
   (:mod:`dispatch.plan.staffing`: Erlang C, Erlang A for classes with patience, or
   square-root staffing) gives ``c`` reviewers for the class's targets; ``load = lam E[S]``
   is the work, ``c - load`` the *safety staff* the targets ask on top of it. Classes whose
   SLA spans 4+ intervals may wait within it, so they are staffed for their load averaged
   over the last half-SLA (``staffing.smooth_long_sla``).
2. **Split** of every stream over the pools eligible for it (class and market) by one linear
   program (OR-Tools GLOP) over all intervals: minimise the cost of the work (a pool's cost
   per hour / its speed on the class), a small preference for accurate pools breaking ties,
   subject to each pool's headcount (per interval: at most ``max_utilisation x
   max_headcount`` busy; over the horizon: at most the hours its people may work). Work
   no pool can take is an elastic slack; any slack stops the plan with one line naming
   the class, market and interval.
3. **Per pool**: the work it was given plus the safety staff of its streams pooled as the
   root of the sum of squares (safety grows like the square root of the load, so pooling
   streams needs less of it than separate queues), at least ``load / max_utilisation``, and
   at least the severe items it receives per hour over the wellbeing cap. Rounded up.

``inflation[i, k]`` (from the simulation-based correction) scales the demand of class ``k``
in interval ``i`` before the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dispatch.errors import ConfigError
from dispatch.plan.config import PlanConfig
from dispatch.plan.demand import Demand
from dispatch.plan.staffing import UnreachableTarget, smallest_staff, sqrt_staff
from dispatch.scenario import Scenario


@dataclass
class Pools:
    """The skill pools of a plan: scenario groups with their planning inputs."""

    names: list[str]
    specs: list  # ReviewerGroup
    inputs: list[dict]  # resolved PoolSpec values (config.PlanConfig.pool)

    def eligible(self, cls: str, market: str) -> list[int]:
        return [
            g
            for g, s in enumerate(self.specs)
            if cls in s.classes and (s.markets == "all" or market in s.markets)
        ]

    def speed(self, g: int, cls: str) -> float:
        return self.specs[g].speed.get(cls, 1.0)


def make_pools(scen: Scenario, cfg: PlanConfig) -> Pools:
    known = {g.name for g in scen.reviewers}
    for where, names in (("pools", list(cfg.pools)), ("exclude_pools", cfg.exclude_pools)):
        for n in names:
            if n not in known:
                raise ConfigError(
                    f"'{n}' is not a reviewer group of the scenario (groups: {sorted(known)})",
                    field=f"{where}.{n}" if where == "pools" else where,
                )
    for c in cfg.targets:
        if c != "default" and c not in {k.name for k in scen.classes}:
            raise ConfigError("not a class of the scenario; check the name", field=f"targets.{c}")
    specs = [g for g in scen.reviewers if g.name not in cfg.exclude_pools]
    return Pools([g.name for g in specs], specs, [cfg.pool(g.name) for g in specs])


@dataclass
class Requirements:
    """``required[i, g]`` reviewers of pool ``g`` on duty in interval ``i``."""

    pools: Pools
    required: np.ndarray
    load: np.ndarray  # [I, G] reviewer-equivalents of work given to each pool
    stream_staff: np.ndarray  # [I, K, M] formula staffing of each stream alone
    share: dict[tuple[int, int, int], np.ndarray] = field(default_factory=dict)  # (k,m,g)->[I]

    def frame(self, demand: Demand):
        import pandas as pd

        rows = []
        for i in range(self.required.shape[0]):
            for g, name in enumerate(self.pools.names):
                rows.append(
                    {
                        "interval": i,
                        "label": demand.label(i),
                        "pool": name,
                        "load": round(float(self.load[i, g]), 4),
                        "required": int(self.required[i, g]),
                    }
                )
        return pd.DataFrame(rows)


def compute_requirements(
    demand: Demand,
    scen: Scenario,
    cfg: PlanConfig,
    pools: Pools,
    inflation: np.ndarray | None = None,
) -> Requirements:
    lam = demand.rate * (inflation[:, :, None] if inflation is not None else 1.0)
    _check_coverage(demand, lam, pools)
    staff = _stream_staff(demand, scen, cfg, lam)
    share = _split(demand, cfg, pools, lam)
    n_i, n_g = lam.shape[0], len(pools.names)
    load = np.zeros((n_i, n_g))
    safety_sq = np.zeros((n_i, n_g))
    severe = np.zeros((n_i, n_g))
    for (k, m, g), x in share.items():
        sp = pools.speed(g, demand.classes[k])
        a = lam[:, k, m] * demand.mean_handling[k]
        load[:, g] += x * a / sp
        safety_sq[:, g] += (x * np.maximum(staff[:, k, m] - a, 0.0) / sp) ** 2
        severe[:, g] += x * lam[:, k, m] * demand.severe_share[k] * 60.0
    req = np.zeros((n_i, n_g), dtype=int)
    util = cfg.staffing.max_utilisation
    for g in range(n_g):
        cap = cfg.wellbeing_cap or pools.specs[g].wellbeing_cap
        need = np.maximum(load[:, g] + np.sqrt(safety_sq[:, g]), load[:, g] / util)
        if cap:
            need = np.maximum(need, severe[:, g] / cap)
        req[:, g] = np.ceil(need - 1e-9).astype(int)
    return Requirements(pools, req, load, staff, share)


def _check_coverage(demand: Demand, lam: np.ndarray, pools: Pools) -> None:
    for k, cls in enumerate(demand.classes):
        for m, market in enumerate(demand.markets):
            busy = np.nonzero(lam[:, k, m] > 0)[0]
            if busy.size and not pools.eligible(cls, market):
                i = int(busy[0])
                raise ConfigError(
                    f"class {cls}, market {market}, interval {demand.label(i)}: "
                    f"{lam[i, k, m]:.3g} tasks/min arrive but no pool in the plan serves this "
                    "class in this market; add a reviewer group for it (or stop excluding one)",
                    field="pools",
                )


def _stream_staff(demand: Demand, scen: Scenario, cfg: PlanConfig, lam: np.ndarray) -> np.ndarray:
    """Formula staffing of every interval x class x market stream served alone."""
    n_i = lam.shape[0]
    out = np.zeros_like(lam)
    for k, c in enumerate(scen.classes):
        targets = cfg.targets_of(c.name)
        mean = demand.mean_handling[k]
        rates = lam[:, k, :]
        if cfg.staffing.smooth_long_sla and c.sla >= 4 * demand.interval:
            w = max(1, int(c.sla / 2 // demand.interval))
            rates = _backward_mean(rates, w)
        patience = demand.patience_mean[k]
        for i in range(n_i):
            for m in range(lam.shape[2]):
                r = float(rates[i, m])
                if r <= 0:
                    continue
                if cfg.staffing.method == "sqrt":
                    out[i, k, m] = sqrt_staff(r * mean, cfg.staffing.beta)
                    continue
                try:
                    out[i, k, m] = smallest_staff(
                        r,
                        mean,
                        targets,
                        sla=c.sla,
                        patience_mean=None if math.isnan(patience) else patience,
                        handling=c.handling,
                    )
                except UnreachableTarget as exc:
                    raise ConfigError(
                        f"class {c.name}, market {demand.markets[m]}, interval "
                        f"{demand.label(i)}: {exc}",
                        field=f"targets.{c.name}.sla",
                    ) from None
    return out


def _backward_mean(x: np.ndarray, w: int) -> np.ndarray:
    """Mean over the last ``w`` intervals (cyclic: the day or week repeats)."""
    return np.mean([np.roll(x, j, axis=0) for j in range(w)], axis=0)


def _split(
    demand: Demand, cfg: PlanConfig, pools: Pools, lam: np.ndarray
) -> dict[tuple[int, int, int], np.ndarray]:
    """One LP over all intervals: the share of each stream each eligible pool takes."""
    from ortools.linear_solver import pywraplp

    solver = pywraplp.Solver.CreateSolver("GLOP")
    n_i = lam.shape[0]
    hours = demand.interval / 60.0
    x: dict[tuple[int, int, int, int], object] = {}
    pool_load: dict[tuple[int, int], list] = {}
    total_load: dict[int, list] = {}
    slack = {}
    obj = solver.Objective()
    big = 1e6
    for k, cls in enumerate(demand.classes):
        for m, market in enumerate(demand.markets):
            elig = pools.eligible(cls, market)
            for i in np.nonzero(lam[:, k, m] > 0)[0]:
                a = float(lam[i, k, m] * demand.mean_handling[k])
                row = solver.Constraint(1.0, 1.0)
                for g in elig:
                    v = solver.NumVar(0.0, 1.0, "")
                    x[i, k, m, g] = v
                    row.SetCoefficient(v, 1.0)
                    work = a / pools.speed(g, cls)
                    acc = pools.specs[g].accuracy.get(cls, pools.specs[g].default_accuracy)
                    err = 2 - acc.sensitivity - acc.specificity
                    obj.SetCoefficient(v, work * hours * (pools.inputs[g]["cost_per_hour"] + err))
                    pool_load.setdefault((i, g), []).append((v, work))
                    total_load.setdefault(g, []).append((v, work * hours))
                s = solver.NumVar(0.0, 1.0, "")
                slack[i, k, m] = s
                row.SetCoefficient(s, 1.0)
                obj.SetCoefficient(s, big * a)
    util = cfg.staffing.max_utilisation
    for g, inp in enumerate(pools.inputs):
        head = inp["max_headcount"]
        if head is None:
            continue
        for i in range(n_i):
            terms = pool_load.get((i, g))
            if terms:
                ct = solver.Constraint(0.0, util * head)
                for v, w in terms:
                    ct.SetCoefficient(v, w)
        max_hours = _max_hours_per_person(inp, demand.days) * head * util
        ct = solver.Constraint(0.0, max_hours)
        for v, w in total_load.get(g, []):
            ct.SetCoefficient(v, w)
    obj.SetMinimization()
    status = solver.Solve()
    if status not in (pywraplp.Solver.OPTIMAL, pywraplp.Solver.FEASIBLE):  # pragma: no cover
        raise ConfigError("the workload split LP failed; check the pools' headcounts")
    _raise_on_slack(demand, pools, lam, slack)
    out: dict[tuple[int, int, int], np.ndarray] = {}
    for (i, k, m, g), v in x.items():
        out.setdefault((k, m, g), np.zeros(n_i))[i] = v.solution_value()
    return out


def _max_hours_per_person(inp: dict, days: int) -> float:
    longest = max(inp["lengths"]) / 60.0
    shifts = 1 if days == 1 else min(inp["max_shifts_per_week"], 7 - len(inp["days_off"]))
    return longest * shifts


def _raise_on_slack(demand: Demand, pools: Pools, lam: np.ndarray, slack: dict) -> None:
    worst = max(slack.items(), key=lambda kv: kv[1].solution_value(), default=None)
    if worst is None or worst[1].solution_value() < 1e-6:
        return
    (i, k, m), s = worst
    cls, market = demand.classes[k], demand.markets[m]
    names = [pools.names[g] for g in pools.eligible(cls, market)]
    heads = [pools.inputs[g]["max_headcount"] for g in pools.eligible(cls, market)]
    short = s.solution_value() * lam[i, k, m] * demand.mean_handling[k]
    raise ConfigError(
        f"class {cls}, market {market}, interval {demand.label(i)}: {short:.1f} "
        f"reviewer-equivalents of work exceed what its pools {names} (max_headcount {heads}) "
        "can take; raise their max_headcount or add a pool",
        field="pools",
    )
