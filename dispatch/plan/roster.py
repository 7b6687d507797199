"""The roster: who works which shift on which day, with breaks, by CP-SAT (step 3).

The model is written for hundreds of people, so it counts people instead of naming them
(OR-Tools' ``shift_scheduling_sat.py`` names each employee; at 500+ people x 7 days x 100+
templates that is millions of Booleans). A person's week is a **pattern**: one shift
template (start on the pool's grid, length among its lengths) worked on a set of days. Only
patterns that obey the labour rules are generated, so every person the solution contains
obeys them by construction:

* min/max shifts per week (the size of the day set), days off (never in the set), max
  consecutive working days (runs counted cyclically: the week repeats);
* min rest between shifts: the same start every working day leaves ``1440 - length``
  minutes between two shifts, so a template with less rest than the rule is not generated;
* fixed people are patterns with a lower bound.

Integer variables (CP-SAT):

* ``n[g, t, D]`` people of pool ``g`` working template ``t`` on day set ``D``;
* ``y[g, t, d] = sum_{D contains d} n[g, t, D]`` people on template ``t`` on day ``d``;
* ``b[g, t, d, r]`` of them taking their break at option ``r`` (a start within the break
  rule's window on its grid); ``sum_r b = y``;
* ``short[g, i]`` people missing in interval ``i``.

Coverage, in person-minutes: for every pool and interval, the minutes worked in it by the
shifts overlapping it, minus the minutes of breaks in it, plus ``short x interval``, is at
least ``required x interval``. The headcount bounds ``sum n``. The day (and week) repeat, so a
night shift covers the first intervals of the next day, cyclically.

Objectives: ``min_cost`` minimises paid cost (cost per hour x paid hours) with shortfall
priced above any shift, so a shortfall at the optimum means the headcount cannot cover the
requirement (reported with the interval); ``budget`` caps paid hours and minimises the
shortfall weighted by the value of each pool's work in each interval (the scenario's
holding costs), with a convex penalty so a shortfall is spread instead of concentrated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dispatch.plan.config import DAY


@dataclass(frozen=True)
class Template:
    start: int  # minute of day
    length: int  # minutes
    breaks: tuple[tuple[int, ...], ...]  # per break rule: allowed offsets after the start
    durations: tuple[int, ...]  # per break rule: minutes


@dataclass
class PoolRules:
    """One pool's planning inputs in the form the model needs."""

    name: str
    cost_per_hour: float
    max_headcount: int | None
    templates: list[Template]
    day_sets: list[tuple[int, ...]]
    paid_breaks: bool
    fixed: list[tuple[Template, tuple[int, ...], int]] = field(default_factory=list)


@dataclass
class RosterProblem:
    days: int
    interval: int
    required: np.ndarray  # [I, G]
    pools: list[PoolRules]
    mode: str = "min_cost"
    budget_hours: float | None = None
    weights: np.ndarray | None = None  # [I, G] value of a person-interval (budget mode)


@dataclass
class Person:
    pool: int
    template: Template
    days: tuple[int, ...]
    break_offsets: dict[int, tuple[int, ...]]  # day -> offset per break rule


@dataclass
class RosterSolution:
    status: str
    objective: float
    bound: float
    gap: float
    wall_s: float
    people: list[Person]
    shortfall: np.ndarray  # [I, G] people missing
    cost: float
    paid_hours: float

    def headcount(self, n_pools: int) -> list[int]:
        out = [0] * n_pools
        for p in self.people:
            out[p.pool] += 1
        return out


def pool_rules(name: str, inp: dict, days: int) -> PoolRules:
    """Templates and day sets of a pool from its resolved planning inputs."""
    templates = []
    for length in inp["lengths"]:
        if days == 7 and DAY - length < inp["min_rest"]:
            continue  # same start every day would leave too little rest
        for start in inp["starts"].starts():
            templates.append(_template(start, length, inp["breaks"]))
    sets = day_sets(
        days,
        inp["min_shifts_per_week"],
        inp["max_shifts_per_week"],
        inp["max_consecutive_days"],
        inp["days_off"],
    )
    fixed = [
        (_template(f.start, f.length, inp["breaks"]), tuple(sorted(set(f.days))), f.count)
        for f in inp["fixed"]
    ]
    return PoolRules(
        name=name,
        cost_per_hour=float(inp["cost_per_hour"]),
        max_headcount=inp["max_headcount"],
        templates=templates,
        day_sets=sets,
        paid_breaks=bool(inp["paid_breaks"]),
        fixed=fixed,
    )


def _template(start: int, length: int, rules) -> Template:
    offsets, durations = [], []
    for r in rules:
        if length < r.min_shift:
            continue
        hi = min(r.latest, length - r.duration)
        opts = tuple(range(r.earliest, hi + 1, r.grid))
        if opts:
            offsets.append(opts)
            durations.append(r.duration)
    return Template(start, length, tuple(offsets), tuple(durations))


def day_sets(days: int, lo: int, hi: int, max_run: int, off: list[int]) -> list[tuple[int, ...]]:
    """Working-day sets of a week obeying the labour rules (a day plan: just day 0)."""
    if days == 1:
        return [(0,)]
    out = []
    for mask in range(1, 128):
        ds = tuple(d for d in range(7) if mask >> d & 1)
        if not lo <= len(ds) <= hi or set(ds) & set(off):
            continue
        if longest_cyclic_run(ds) > max_run:
            continue
        out.append(ds)
    return out


def longest_cyclic_run(ds: tuple[int, ...]) -> int:
    on = [d in ds for d in range(7)]
    if all(on):
        return 7
    best = run = 0
    for d in range(14):
        run = run + 1 if on[d % 7] else 0
        best = max(best, run)
    return best


def paid_minutes(t: Template, paid_breaks: bool) -> int:
    return t.length - (0 if paid_breaks else sum(t.durations))


def _work_overlap(start: int, length: int, n_int: int, interval: int) -> dict[int, int]:
    """Minutes of [start, start + length) in each interval, cyclic over the horizon."""
    horizon = n_int * interval
    out: dict[int, int] = {}
    t = start
    end = start + length
    while t < end:
        i = (t % horizon) // interval
        step = min(end - t, interval - (t % horizon) % interval)
        out[i] = out.get(i, 0) + step
        t += step
    return out


def _patterns(pool: PoolRules) -> list[tuple[Template, tuple[int, ...], int]]:
    """(template, day set, lower bound) of every pattern variable of a pool."""
    pats = {(t, ds): 0 for t in pool.templates for ds in pool.day_sets}
    for t, ds, count in pool.fixed:
        pats[(t, ds)] = pats.get((t, ds), 0) + count
    return [(t, ds, lb) for (t, ds), lb in pats.items()]


def solve_roster(
    prob: RosterProblem,
    *,
    time_limit: float = 60.0,
    workers: int = 2,
    gap: float = 0.005,
    hint: bool = True,
) -> RosterSolution:
    """Build and solve the CP-SAT model; the people it staffs with their breaks.

    ``hint``: first solve the LP relaxation (GLOP) of the same model and round it up into a
    starting roster for CP-SAT; on weeks of hundreds of people this is what lets two workers
    close the gap within a minute (the LP bound is tight for covering models, and a rounded
    LP solution is within a few people of it).
    """
    import time

    from ortools.sat.python import cp_model

    t0 = time.perf_counter()
    m, objective = _build(cp_model.CpModel(), prob)
    model = m.model
    model.minimize(objective)
    lp_bound = _hint_from_lp(m, prob) if hint else -math.inf
    solver = cp_model.CpSolver()
    # The LP hint counts against the limit, but CP-SAT always gets time to take the hint.
    solver.parameters.max_time_in_seconds = max(
        10.0, float(time_limit) - (time.perf_counter() - t0)
    )
    solver.parameters.num_workers = int(workers)
    solver.parameters.relative_gap_limit = float(gap)
    solver.parameters.random_seed = 0
    status = solver.solve(model)
    wall = time.perf_counter() - t0
    name = solver.status_name(status)
    n_int, n_g = prob.required.shape
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        nan = math.nan
        return RosterSolution(name, nan, nan, nan, wall, [], np.zeros((n_int, n_g)), nan, nan)
    people = _people(solver, m)
    shortfall = np.array([[solver.value(m.short[i][g]) for g in range(n_g)] for i in range(n_int)])
    cost = sum(solver.value(e) for e in m.cost_terms) / 100 / 60
    hours = sum(solver.value(e) for e in m.hour_terms) / 60
    # The LP relaxation's optimum is a proven lower bound too: report the better one.
    obj, bound = solver.objective_value, max(solver.best_objective_bound, lp_bound)
    gap_v = abs(obj - bound) / max(abs(obj), 1e-9) if abs(obj) > 1e-9 else abs(bound)
    return RosterSolution(name, obj, bound, gap_v, wall, people, shortfall, cost, hours)


def _build(model, prob: RosterProblem):
    """The roster model on ``model`` (a CP-SAT model, or :class:`_LP` for the relaxation)."""
    n_int, n_g = prob.required.shape
    m = _Model(model, n_int, n_g, prob.interval)
    bound_people = int(prob.required.max(initial=0)) * (prob.days + 1) + 1
    for g, pool in enumerate(prob.pools):
        _add_pool(m, g, pool, bound_people)
    pen_terms = _add_coverage(m, prob)
    if prob.mode == "budget":
        model.add(sum(m.hour_terms) <= int(math.floor(prob.budget_hours * 60)))
        return m, sum(pen_terms)
    return m, sum(m.cost_terms) + sum(pen_terms)


class _LP:
    """GLOP behind the two model calls the builder makes: the LP relaxation."""

    def __init__(self) -> None:
        from ortools.linear_solver import pywraplp

        self.solver = pywraplp.Solver.CreateSolver("GLOP")

    def new_int_var(self, lb: float, ub: float, name: str):
        return self.solver.NumVar(float(lb), float(ub), name)

    def add(self, ct) -> None:
        self.solver.Add(ct)


def _hint_from_lp(m: _Model, prob: RosterProblem) -> float:
    """Round the LP relaxation into a complete feasible roster and hint every variable.

    People: each pattern's LP count rounded down, then, while an interval is short, one
    more person on the covering pattern with the largest LP remainder. Breaks: each person's
    at the option where the roster has the most slack left. A complete, feasible hint is
    CP-SAT's first solution; its LNS workers improve it from there.
    """
    lp_m, objective = _build(_LP(), prob)
    lp_m.model.solver.Minimize(objective)
    if lp_m.model.solver.Solve() != 0:  # not OPTIMAL: no hint
        return -math.inf
    lp_value = lp_m.model.solver.Objective().Value() * (1 - 1e-9)
    H = m.n_int * m.interval
    slack = -prob.required.astype(float)
    people: list[Person] = []
    pats = [
        (g, t, ds, lv.solution_value())
        for (g, t, ds, _), (*_, lv) in zip(m.patterns, lp_m.patterns, strict=True)
    ]
    for g, t, ds, x in pats:
        for _ in range(math.floor(x + 1e-6)):
            people.append(Person(g, t, ds, {d: () for d in ds}))
            _add_work(slack, people[-1], m, +1)
    for p in people:
        _place_breaks(slack, p, m)
    by_pool: dict[int, list[int]] = {}
    for j, (g, *_rest) in enumerate(pats):
        by_pool.setdefault(g, []).append(j)
    arrays = {g: _pattern_arrays([pats[j] for j in js]) for g, js in by_pool.items()}
    capacity = {g: pool.max_headcount for g, pool in enumerate(prob.pools)}
    heads = [0] * m.n_g
    for p in people:
        heads[p.pool] += 1
    for _ in range(100_000):
        i, g = np.unravel_index(np.argmin(slack), slack.shape)
        if slack[i, g] > -1e-9 or g not in arrays:
            break
        if capacity[g] is not None and heads[g] >= capacity[g]:
            slack[i, g] = 0.0  # headcount exhausted: the solver reports the shortfall
            continue
        x = (i + 0.5) * m.interval
        start, length, mask, frac = arrays[g]
        covers = np.zeros(start.size, dtype=bool)
        for d in range(7 if prob.days == 7 else 1):
            covers |= ((x - d * DAY - start) % H < length) & ((mask >> d) & 1 == 1)
        if not covers.any():
            break
        k = int(np.argmax(np.where(covers, frac + 1e-3, -1.0)))
        frac[k] -= 1.0
        gg, t, ds, _ = pats[by_pool[g][k]]
        p = Person(gg, t, ds, {d: () for d in ds})
        people.append(p)
        heads[g] += 1
        _add_work(slack, p, m, +1)
        _place_breaks(slack, p, m)
    _hint_people(m, prob, people)
    return lp_value


def _pattern_arrays(pats: list) -> tuple[np.ndarray, ...]:
    start = np.array([t.start for _, t, _, _ in pats], dtype=float)
    length = np.array([t.length for _, t, _, _ in pats], dtype=float)
    mask = np.array([sum(1 << d for d in ds) for _, _, ds, _ in pats], dtype=int)
    frac = np.array([x - math.floor(x + 1e-6) for *_, x in pats], dtype=float)
    return start, length, mask, frac


def _add_work(slack: np.ndarray, p: Person, m: _Model, sign: int) -> None:
    for d in p.days:
        s0 = d * DAY + p.template.start
        for i, mins in _work_overlap(s0, p.template.length, m.n_int, m.interval).items():
            slack[i, p.pool] += sign * mins / m.interval


def _place_breaks(slack: np.ndarray, p: Person, m: _Model) -> None:
    for d in p.days:
        s0 = d * DAY + p.template.start
        offs = []
        for opts, dur in zip(p.template.breaks, p.template.durations, strict=True):
            best = max(
                opts,
                key=lambda off, dur=dur: min(
                    slack[i, p.pool] for i in _work_overlap(s0 + off, dur, m.n_int, m.interval)
                ),
            )
            for i, mins in _work_overlap(s0 + best, dur, m.n_int, m.interval).items():
                slack[i, p.pool] -= mins / m.interval
            offs.append(best)
        p.break_offsets[d] = tuple(offs)


def _hint_people(m: _Model, prob: RosterProblem, people: list[Person]) -> None:
    """Hint every variable of the model with the roster ``people``."""
    hint = m.model.add_hint
    n_of: dict[tuple[int, Template, tuple[int, ...]], int] = {}
    y_of: dict[tuple[int, Template, int], int] = {}
    b_of: dict[tuple[int, Template, int, int, int], int] = {}
    for p in people:
        key = (p.pool, p.template, p.days)
        n_of[key] = n_of.get(key, 0) + 1
        for d in p.days:
            y_of[p.pool, p.template, d] = y_of.get((p.pool, p.template, d), 0) + 1
            for r, off in enumerate(p.break_offsets[d]):
                k = (p.pool, p.template, d, r, off)
                b_of[k] = b_of.get(k, 0) + 1
    for g, t, ds, v in m.patterns:
        hint(v, n_of.get((g, t, ds), 0))
    for g, t, d, y in m.ys:
        hint(y, y_of.get((g, t, d), 0))
    for g, t, d, r, opts, bs in m.breaks:
        for off, b in zip(opts, bs, strict=True):
            hint(b, b_of.get((g, t, d, r, off), 0))
    cov = coverage(people, m.n_int, m.interval, m.n_g)
    for i in range(m.n_int):
        for g in range(m.n_g):
            req = max(int(prob.required[i, g]), 0)
            short = min(req, max(0, math.ceil(req - cov[i, g] - 1e-9)))
            hint(m.short[i][g], short)
            left = short
            for _, part in m.parts.get((i, g), []):
                cap = int(part.proto.domain[-1])
                hint(part, min(left, cap))
                left -= min(left, cap)


@dataclass
class _Model:
    """The CP-SAT model under construction and the variables read back afterwards."""

    model: object
    n_int: int
    n_g: int
    interval: int
    cover: list = field(default_factory=list)
    cost_terms: list = field(default_factory=list)
    hour_terms: list = field(default_factory=list)
    patterns: list = field(default_factory=list)  # (g, template, day set, n var)
    breaks: list = field(default_factory=list)  # (g, template, day, rule, offsets, b vars)
    short: list = field(default_factory=list)
    ys: list = field(default_factory=list)  # (g, template, day, y var)
    parts: dict = field(default_factory=dict)  # (i, g) -> convex penalty parts (budget)
    max_shift_cost: int = 1

    def __post_init__(self) -> None:
        self.cover = [[[] for _ in range(self.n_int)] for _ in range(self.n_g)]


def _add_pool(m: _Model, g: int, pool: PoolRules, bound_people: int) -> None:
    model = m.model
    pats = _patterns(pool)
    ub = pool.max_headcount if pool.max_headcount is not None else bound_people
    ub = max(ub, sum(lb for *_, lb in pats))
    heads = []
    by_td: dict[tuple[Template, int], list] = {}
    for t, ds, lb in pats:
        v = model.new_int_var(lb, ub, "")
        m.patterns.append((g, t, ds, v))
        heads.append(v)
        for d in ds:
            by_td.setdefault((t, d), []).append(v)
    if pool.max_headcount is not None:
        model.add(sum(heads) <= pool.max_headcount)
    cents = int(round(pool.cost_per_hour * 100))
    m.max_shift_cost = max(m.max_shift_cost, cents * max((t.length for t, _, _ in pats), default=1))
    n_int, L = m.n_int, m.interval
    for (t, d), vs in by_td.items():
        y = model.new_int_var(0, ub, "")
        model.add(y == sum(vs))
        m.ys.append((g, t, d, y))
        pm = paid_minutes(t, pool.paid_breaks)
        m.cost_terms.append(cents * pm * y)
        m.hour_terms.append(pm * y)
        s0 = d * DAY + t.start
        for i, mins in _work_overlap(s0, t.length, n_int, L).items():
            m.cover[g][i].append(mins * y)
        for r, (opts, dur) in enumerate(zip(t.breaks, t.durations, strict=True)):
            bs = [model.new_int_var(0, ub, "") for _ in opts]
            model.add(sum(bs) == y)
            m.breaks.append((g, t, d, r, opts, bs))
            for off, b in zip(opts, bs, strict=True):
                for i, mins in _work_overlap(s0 + off, dur, n_int, L).items():
                    m.cover[g][i].append(-mins * b)


def _add_coverage(m: _Model, prob: RosterProblem) -> list:
    """Coverage rows with shortfall variables; returns the shortfall penalty terms."""
    model, L = m.model, m.interval
    pen = []
    big = 2 * m.max_shift_cost + 1  # one person short costs more than any shift
    for i in range(m.n_int):
        row = []
        for g in range(m.n_g):
            req = int(prob.required[i, g])
            s = model.new_int_var(0, max(req, 0), "")
            row.append(s)
            if req <= 0:
                continue
            model.add(sum(m.cover[g][i]) + L * s >= L * req)
            if prob.mode != "budget":
                pen.append(big * s)
                continue
            w = 1.0 if prob.weights is None else float(prob.weights[i, g])
            m.parts[i, g] = _convex_penalty(model, s, req, w)
            pen += [k * p for k, p in m.parts[i, g]]
        m.short.append(row)
    return pen


def _convex_penalty(model, s, req: int, weight: float) -> list[tuple[int, object]]:
    """Budget mode: the first 10% of a requirement missed costs 1, the next 20% 3, the rest 9
    (x the interval's weight): shortfalls spread over intervals instead of piling up."""
    caps = [max(1, math.ceil(0.1 * req)), max(1, math.ceil(0.2 * req)), req]
    parts = [model.new_int_var(0, c, "") for c in caps]
    model.add(s == sum(parts))
    w = max(1, int(round(100 * weight)))
    return [(w * k, p) for k, p in zip((1, 3, 9), parts, strict=True)]


def _people(solver, m: _Model) -> list[Person]:
    """Expand pattern counts into people and deal the break options out to them."""
    people: list[Person] = []
    index: dict[tuple[int, Template, int], list[Person]] = {}
    for g, t, ds, v in m.patterns:
        for _ in range(solver.value(v)):
            p = Person(g, t, ds, {d: tuple() for d in ds})
            people.append(p)
            for d in ds:
                index.setdefault((g, t, d), []).append(p)
    for g, t, d, _r, opts, bs in m.breaks:
        workers = index.get((g, t, d), [])
        k = 0
        for off, b in zip(opts, bs, strict=True):
            for _ in range(solver.value(b)):
                workers[k].break_offsets[d] = workers[k].break_offsets[d] + (off,)
                k += 1
    return people


def coverage(people: list[Person], n_int: int, interval: int, n_g: int) -> np.ndarray:
    """Person-minutes on duty (breaks removed) per interval and pool, divided by the interval:
    the people-equivalent each pool has in each interval."""
    out = np.zeros((n_int, n_g))
    for p in people:
        for d in p.days:
            s0 = d * DAY + p.template.start
            for i, mins in _work_overlap(s0, p.template.length, n_int, interval).items():
                out[i, p.pool] += mins
            for off, dur in zip(p.break_offsets[d], p.template.durations, strict=False):
                for i, mins in _work_overlap(s0 + off, dur, n_int, interval).items():
                    out[i, p.pool] -= mins
    return out / interval
