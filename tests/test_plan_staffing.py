"""Staffing formulas of the plan against exact Erlang C / Erlang A answers (brute force over c)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dispatch import theory
from dispatch.plan.config import plan_from_dict
from dispatch.plan.demand import build_demand
from dispatch.plan.requirements import compute_requirements, make_pools
from dispatch.plan.staffing import measures, smallest_staff, sqrt_staff
from dispatch.scenario import scenario_from_dict


def _mmc_sojourn_cdf(c: int, lam: float, mu: float, t: float) -> float:
    """Closed-form P(W + S <= t) of M/M/c FCFS (an independent oracle)."""
    pw = theory.erlang_c(c, lam, mu)
    g = c * mu - lam
    if abs(g - mu) < 1e-12:
        tail = math.exp(-mu * t) * (1 + pw * mu * t)
    else:
        tail = math.exp(-mu * t) + pw * mu / (g - mu) * (math.exp(-mu * t) - math.exp(-g * t))
    return 1 - tail


def _brute_c(ok) -> int:
    return next(c for c in range(1, 500) if ok(c))


@pytest.mark.parametrize("lam,mean", [(0.5, 2.0), (4.0, 1.0), (9.5, 1.0), (30.0, 0.5)])
def test_erlang_c_targets_are_the_smallest_c(lam: float, mean: float) -> None:
    mu = 1 / mean
    stable = lambda c: lam < c * mu  # noqa: E731
    cases = {
        "max_delay_prob": (0.2, lambda c: stable(c) and theory.erlang_c(c, lam, mu) <= 0.2),
        "mean_wait": (0.1, lambda c: stable(c) and theory.mmc_mean_wait(c, lam, mu) <= 0.1),
        "sla": (0.85, lambda c: stable(c) and _mmc_sojourn_cdf(c, lam, mu, 6.0) >= 0.85),
    }
    for target, (goal, ok) in cases.items():
        got = smallest_staff(lam, mean, {target: goal}, sla=6.0)
        assert got == _brute_c(ok), target


@pytest.mark.parametrize("lam,theta", [(6.0, 0.5), (2.0, 1.0), (20.0, 0.1)])
def test_erlang_a_targets_are_the_smallest_c(lam: float, theta: float) -> None:
    ea = lambda c: theory.erlang_a(c, lam, 1.0, theta)  # noqa: E731
    got = smallest_staff(lam, 1.0, {"max_expired": 0.05}, patience_mean=1 / theta)
    assert got == _brute_c(lambda c: ea(c)["p_abandon"] <= 0.05)
    got = smallest_staff(lam, 1.0, {"mean_wait": 0.05}, patience_mean=1 / theta)
    assert got == _brute_c(lambda c: ea(c)["mean_wait"] <= 0.05)


def test_erlang_a_measures_match_theory_and_sla_tends_to_erlang_c() -> None:
    for c in (3, 6, 9):
        m = measures(c, 6.0, 1.0, 0.5, 1.0, None)
        t = theory.erlang_a(c, 6.0, 1.0, 0.5)
        for a, b in (("p_abandon", "p_abandon"), ("mean_wait", "mean_wait"), ("p_wait", "p_wait")):
            assert m[a] == pytest.approx(t[b], rel=1e-9)
    # Vanishing patience rate: Erlang A's SLA share approaches Erlang C's closed form.
    assert measures(8, 6.0, 1.0, 1e-9, 2.0, None)["sla"] == pytest.approx(
        _mmc_sojourn_cdf(8, 6.0, 1.0, 2.0), abs=2e-3
    )


def test_sqrt_staffing() -> None:
    assert sqrt_staff(100.0, 1.0) == 110
    assert sqrt_staff(0.0, 1.0) == 0


def test_requirements_equal_erlang_c_on_a_stationary_single_class_case() -> None:
    scen = scenario_from_dict(
        {
            "horizon": 1440,
            "classes": [
                {
                    "name": "t",
                    "arrivals": {"kind": "poisson", "rate": 4.0},
                    "handling": {"kind": "exponential", "mean": 2.0},
                    "sla": 5.0,
                }
            ],
            "reviewers": [{"name": "pool", "count": 10, "classes": ["t"]}],
        }
    )
    cfg = plan_from_dict(
        {
            "scenario": "x",
            "targets": {"t": {"max_delay_prob": 0.25}},
            "staffing": {"smooth_long_sla": False, "max_utilisation": 1.0},
        }
    )
    demand = build_demand(scen, 30, 1)
    req = compute_requirements(demand, scen, cfg, make_pools(scen, cfg))
    exact = _brute_c(lambda c: c * 0.5 > 4.0 and theory.erlang_c(c, 4.0, 0.5) <= 0.25)
    assert np.all(req.required[:, 0] == exact)
