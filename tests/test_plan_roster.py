"""The CP-SAT roster obeys every rule (property tests) and finds the optimum (brute force)."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dispatch.plan.config import BreakRule, StartGrid
from dispatch.plan.roster import (
    RosterProblem,
    coverage,
    longest_cyclic_run,
    paid_minutes,
    pool_rules,
    solve_roster,
)


def _inputs(starts, lengths, head, lo=0, hi=5, run=5, off=(), rest=0, breaks=()):
    return {
        "max_headcount": head,
        "cost_per_hour": 10.0,
        "starts": starts,
        "lengths": lengths,
        "breaks": list(breaks),
        "paid_breaks": True,
        "min_shifts_per_week": lo,
        "max_shifts_per_week": hi,
        "max_consecutive_days": run,
        "min_rest": rest,
        "days_off": list(off),
        "fixed": [],
    }


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 10_000),
    hi=st.integers(3, 6),
    run=st.integers(2, 5),
    off=st.sets(st.integers(0, 6), max_size=1),
)
def test_week_roster_respects_every_rule(seed: int, hi: int, run: int, off: set) -> None:
    rng = np.random.default_rng(seed)
    interval = 120
    n_int = 7 * 1440 // interval
    req = rng.integers(0, 4, size=(n_int, 1))
    rule = BreakRule(duration=30, earliest=120, latest=240, min_shift=360, grid=60)
    inp = _inputs(
        StartGrid(first=0, last=1320, every=120),
        [480, 240],
        40,
        2,
        hi,
        run,
        sorted(off),
        600,
        [rule],
    )
    pool = pool_rules("p", inp, 7)
    sol = solve_roster(RosterProblem(7, interval, req, [pool]), time_limit=20, workers=1)
    assert sol.status in ("OPTIMAL", "FEASIBLE")
    assert len(sol.people) <= 40
    for p in sol.people:
        assert 2 <= len(p.days) <= hi
        assert longest_cyclic_run(p.days) <= run
        assert not set(p.days) & off
        assert 1440 - p.template.length >= 600  # same start daily: rest between shifts
        for d in p.days:
            for off_min, dur in zip(p.break_offsets[d], p.template.durations, strict=True):
                assert 120 <= off_min <= 240 and off_min + dur <= p.template.length
            if p.template.length >= 360:
                assert len(p.break_offsets[d]) == 1
    cov = coverage(sol.people, n_int, interval, 1)
    assert np.all(cov + sol.shortfall >= req - 1e-9)
    cost = sum(10.0 * paid_minutes(p.template, True) / 60 * len(p.days) for p in sol.people)
    assert cost == sol.cost


def _brute(req: np.ndarray, interval: int, templates: list[tuple[int, int]]) -> float:
    """Cheapest count vector over the templates covering req (cost 1 per minute)."""
    best = float("inf")
    n_int = req.shape[0]
    for counts in itertools.product(range(4), repeat=len(templates)):
        cov = np.zeros(n_int)
        for (s, length), n in zip(templates, counts, strict=True):
            for t in range(s, s + length):
                cov[(t % (n_int * interval)) // interval] += n / interval
        if np.all(cov >= req - 1e-9):
            best = min(
                best, sum(n * length for (_, length), n in zip(templates, counts, strict=True))
            )
    return best


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_tiny_day_roster_matches_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    interval = 240
    req = rng.integers(0, 3, size=(6, 1))
    inp = _inputs(StartGrid(first=0, last=960, every=480), [480, 240], None)
    inp["cost_per_hour"] = 60.0  # 1 per minute
    pool = pool_rules("p", inp, 1)
    sol = solve_roster(RosterProblem(1, interval, req, [pool]), time_limit=10, workers=1)
    templates = [(t.start, t.length) for t in pool.templates]
    assert sol.status == "OPTIMAL"
    assert sol.cost == _brute(req[:, 0], interval, templates) / 1.0
