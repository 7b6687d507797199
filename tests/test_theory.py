"""Tests for the closed-form queueing results in :mod:`dispatch.theory`.

Every formula is checked against something computed independently: a
textbook value, the direct (non-recursive) Erlang C sum, a brute-force
linear solve of the CTMC generator, a small FCFS simulation, or an
exhaustive search over priority orders.
"""

from __future__ import annotations

import heapq
import itertools
import math

import numpy as np
import pytest

from dispatch.theory import (
    cmu_order,
    cobham_priority_waits,
    erlang_a,
    erlang_c,
    littles_law_gap,
    mmc_mean_wait,
    mmc_metrics,
    priority_order_cost,
    second_moment,
)

# --------------------------------------------------------------------------- helpers


def erlang_c_direct(c: int, lam: float, mu: float) -> float:
    """Textbook Erlang C: ``(a^c/c! / (1-rho)) / (sum_{k<c} a^k/k! + a^c/c! / (1-rho))``.

    Evaluated in log space with ``lgamma`` so it also works for large ``c``.
    """
    a = lam / mu
    rho = a / c
    log_terms = [k * math.log(a) - math.lgamma(k + 1) for k in range(c)]
    log_top = c * math.log(a) - math.lgamma(c + 1) - math.log1p(-rho)
    m = max(*log_terms, log_top)
    top = math.exp(log_top - m)
    return top / (sum(math.exp(t - m) for t in log_terms) + top)


def ctmc_stationary(c: int, lam: float, mu: float, theta: float, n: int) -> np.ndarray:
    """Stationary law of the M/M/c+M chain on ``{0..n}`` by solving ``pi Q = 0``.

    Builds the full generator matrix and solves the (overdetermined) system
    ``Q^T pi = 0, sum pi = 1`` by least squares, without using detailed balance.
    """
    q = np.zeros((n + 1, n + 1))
    for i in range(n + 1):
        if i < n:
            q[i, i + 1] = lam
        if i > 0:
            q[i, i - 1] = min(i, c) * mu + max(i - c, 0) * theta
        q[i, i] = -q[i].sum()
    a = np.vstack([q.T, np.ones(n + 1)])
    b = np.zeros(n + 2)
    b[-1] = 1.0
    pi, *_ = np.linalg.lstsq(a, b, rcond=None)
    return pi


def simulate_fcfs_abandon(
    c: int, lam: float, mu: float, theta: float, n: int, seed: int
) -> tuple[float, float]:
    """Simulate FCFS M/M/c+M; return (mean wait of served tasks, abandon fraction).

    Under FCFS, start times are non-decreasing, so task ``i`` starts at the
    earliest time a server is free (or on arrival) and abandons if that
    wait exceeds its patience; abandoning tasks take no server time.
    """
    rng = np.random.default_rng(seed)
    arrivals = np.cumsum(rng.exponential(1 / lam, n)).tolist()
    patience = rng.exponential(1 / theta, n).tolist()
    services = rng.exponential(1 / mu, n).tolist()
    free_at = [0.0] * c
    served_waits = []
    for arrive, pat, serv in zip(arrivals, patience, services, strict=True):
        start = max(arrive, free_at[0])
        if start - arrive <= pat:
            heapq.heapreplace(free_at, start + serv)
            served_waits.append(start - arrive)
    return float(np.mean(served_waits)), 1.0 - len(served_waits) / n


# --------------------------------------------------------------------------- Erlang C


def test_erlang_c_two_servers_textbook() -> None:
    # a = 1, c = 2: B = 1/5, C = 2B / (2 - 1 + B) = 1/3.
    assert erlang_c(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)


def test_erlang_c_ten_servers_matches_direct_sum() -> None:
    value = erlang_c(10, 9.0, 1.0)
    assert value == pytest.approx(0.6687, abs=5e-5)
    assert value == pytest.approx(erlang_c_direct(10, 9.0, 1.0), rel=1e-12)


@pytest.mark.parametrize(
    ("c", "lam", "mu"), [(1, 0.3, 1.0), (3, 2.0, 0.8), (25, 20.0, 1.0), (500, 480.0, 1.0)]
)
def test_erlang_c_matches_direct_sum_including_large_c(c: int, lam: float, mu: float) -> None:
    value = erlang_c(c, lam, mu)
    assert 0.0 < value < 1.0
    assert value == pytest.approx(erlang_c_direct(c, lam, mu), rel=1e-9)


@pytest.mark.parametrize(("lam", "mu"), [(0.5, 1.0), (0.9, 1.0), (0.2, 0.25)])
def test_mm1_special_case(lam: float, mu: float) -> None:
    rho = lam / mu
    assert erlang_c(1, lam, mu) == pytest.approx(rho, rel=1e-12)
    assert mmc_mean_wait(1, lam, mu) == pytest.approx(rho / (mu - lam), rel=1e-12)
    m = mmc_metrics(1, lam, mu)
    assert m["mean_in_system"] == pytest.approx(rho / (1 - rho), rel=1e-12)
    assert m["mean_sojourn"] == pytest.approx(1 / (mu - lam), rel=1e-12)
    assert m["utilisation"] == pytest.approx(rho)


def test_mmc_metrics_satisfy_littles_law() -> None:
    m = mmc_metrics(4, 3.0, 0.9)
    assert littles_law_gap(m["mean_in_system"], 3.0, m["mean_sojourn"]) < 1e-12
    assert littles_law_gap(m["mean_queue"], 3.0, m["mean_wait"]) < 1e-12
    assert m["mean_sojourn"] == pytest.approx(m["mean_wait"] + 1 / 0.9)


@pytest.mark.parametrize(("c", "lam", "mu"), [(1, 1.0, 1.0), (2, 2.5, 1.0), (3, 6.0, 2.0)])
def test_erlang_c_rejects_unstable(c: int, lam: float, mu: float) -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_c(c, lam, mu)
    with pytest.raises(ValueError):
        mmc_metrics(c, lam, mu)


@pytest.mark.parametrize(("c", "lam", "mu"), [(0, 0.5, 1.0), (2, -1.0, 1.0), (2, 0.5, 0.0)])
def test_erlang_c_rejects_invalid(c: int, lam: float, mu: float) -> None:
    with pytest.raises(ValueError):
        erlang_c(c, lam, mu)


# --------------------------------------------------------------------------- Erlang A


def test_erlang_a_tiny_theta_reduces_to_erlang_c() -> None:
    a = erlang_a(10, 9.0, 1.0, 1e-9)
    m = mmc_metrics(10, 9.0, 1.0)
    assert a["p_wait"] == pytest.approx(m["p_wait"], rel=1e-6)
    assert a["mean_wait"] == pytest.approx(m["mean_wait"], rel=1e-6)
    assert a["mean_wait_served"] == pytest.approx(m["mean_wait"], rel=1e-6)
    assert a["mean_queue"] == pytest.approx(m["mean_queue"], rel=1e-6)
    assert a["p_abandon"] < 1e-8


def test_erlang_a_zero_theta_is_mmc() -> None:
    a = erlang_a(3, 2.4, 1.0, 0.0)
    m = mmc_metrics(3, 2.4, 1.0)
    for key in ("p_wait", "mean_wait", "mean_queue", "mean_in_system", "utilisation"):
        assert a[key] == pytest.approx(m[key], rel=1e-10), key
    assert a["p_abandon"] == 0.0


@pytest.mark.parametrize(
    ("c", "lam", "mu", "theta"),
    [
        (1, 0.8, 1.0, 0.5),  # underloaded single auditor
        (1, 2.0, 1.0, 0.7),  # overloaded: stable only through abandonment
        (3, 2.5, 1.0, 0.3),
        (5, 10.0, 1.0, 0.5),
    ],
)
def test_erlang_a_matches_brute_force_generator(
    c: int, lam: float, mu: float, theta: float
) -> None:
    pi = ctmc_stationary(c, lam, mu, theta, n=250)
    states = np.arange(pi.size)
    mean_queue = float(pi @ np.maximum(states - c, 0))
    busy = float(pi @ np.minimum(states, c))
    a = erlang_a(c, lam, mu, theta)
    assert a["mean_queue"] == pytest.approx(mean_queue, rel=1e-8)
    assert a["p_wait"] == pytest.approx(float(pi[c:].sum()), rel=1e-8)
    assert a["mean_in_system"] == pytest.approx(float(pi @ states), rel=1e-8)
    assert a["p_abandon"] == pytest.approx(theta * mean_queue / lam, rel=1e-8)
    assert a["mean_wait"] == pytest.approx(mean_queue / lam, rel=1e-8)
    # Flow balance: tasks served per minute = busy auditors * mu.
    assert a["utilisation"] == pytest.approx(busy / c, rel=1e-8)


@pytest.mark.parametrize(("c", "lam", "mu", "theta"), [(3, 2.5, 1.0, 0.3), (2, 3.0, 1.0, 1.0)])
def test_erlang_a_served_wait_matches_simulation(
    c: int, lam: float, mu: float, theta: float
) -> None:
    a = erlang_a(c, lam, mu, theta)
    sim_wait, sim_abandon = simulate_fcfs_abandon(c, lam, mu, theta, n=200_000, seed=7)
    assert sim_wait == pytest.approx(a["mean_wait_served"], rel=0.03)
    assert sim_abandon == pytest.approx(a["p_abandon"], rel=0.03)
    # Decomposition of the all-arrivals mean wait into served and abandoned parts.
    p_ab = a["p_abandon"]
    mixed = (1 - p_ab) * a["mean_wait_served"] + p_ab * a["mean_wait_abandoned"]
    assert mixed == pytest.approx(a["mean_wait"], rel=1e-10)


def test_erlang_a_explicit_truncation_agrees_with_automatic() -> None:
    auto = erlang_a(4, 5.0, 1.0, 0.4)
    fixed = erlang_a(4, 5.0, 1.0, 0.4, n_max=400)
    assert fixed["n_max"] == 400
    for key in ("p_wait", "mean_wait", "mean_wait_served", "p_abandon", "mean_queue"):
        assert fixed[key] == pytest.approx(auto[key], rel=1e-12), key


def test_erlang_a_large_overloaded_system_is_finite() -> None:
    # 1000 auditors, twice the capacity offered: a^n/n! would overflow.
    a = erlang_a(1000, 2000.0, 1.0, 0.1)
    assert all(math.isfinite(v) for v in a.values())
    # Fluid limit: servers saturated, the excess half of the demand abandons.
    assert a["p_abandon"] == pytest.approx(0.5, abs=0.01)
    assert a["p_wait"] == pytest.approx(1.0, abs=1e-6)


def test_erlang_a_errors() -> None:
    with pytest.raises(ValueError, match="unstable"):
        erlang_a(2, 2.0, 1.0, 0.0)
    with pytest.raises(ValueError):
        erlang_a(2, 1.0, 1.0, -0.1)
    with pytest.raises(ValueError):
        erlang_a(3, 1.0, 1.0, 0.5, n_max=2)


# --------------------------------------------------------------------------- Cobham / c-mu


@pytest.mark.parametrize("dist", ["exponential", "deterministic"])
def test_cobham_single_class_is_pollaczek_khinchine(dist: str) -> None:
    lam, mean = 0.6, 1.2
    es2 = second_moment(dist, mean)
    rho = lam * mean
    (w,) = cobham_priority_waits([lam], [mean], [es2])
    assert w == pytest.approx(lam * es2 / (2 * (1 - rho)), rel=1e-12)
    if dist == "exponential":  # M/M/1: Wq = rho / (mu - lam)
        assert w == pytest.approx(mmc_mean_wait(1, lam, 1 / mean), rel=1e-12)


def test_cobham_satisfies_kleinrock_conservation_law() -> None:
    # Work conservation: sum_k rho_k W_k = rho W0 / (1 - rho) for any priority order.
    lams = [0.1, 0.2, 0.15]
    means = [1.0, 0.8, 2.0]
    es2 = [second_moment("gamma", m, cv=0.5) for m in means]
    waits = cobham_priority_waits(lams, means, es2)
    rho = sum(lam * m for lam, m in zip(lams, means, strict=True))
    w0 = sum(lam * s2 for lam, s2 in zip(lams, es2, strict=True)) / 2
    lhs = sum(lam * m * w for lam, m, w in zip(lams, means, waits, strict=True))
    assert lhs == pytest.approx(rho * w0 / (1 - rho), rel=1e-12)
    assert waits == sorted(waits)  # lower priority never waits less here


def test_cobham_rejects_unstable_and_mismatched() -> None:
    with pytest.raises(ValueError, match="unstable"):
        cobham_priority_waits([0.5, 0.5], [1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError):
        cobham_priority_waits([0.1], [1.0, 1.0], [2.0, 2.0])


def test_second_moment() -> None:
    assert second_moment("exponential", 3.0) == pytest.approx(18.0)
    assert second_moment("deterministic", 3.0) == pytest.approx(9.0)
    assert second_moment("lognormal", 2.0, cv=0.5) == pytest.approx(5.0)
    assert second_moment("gamma", 2.0, cv=1.0) == pytest.approx(second_moment("exponential", 2.0))
    with pytest.raises(ValueError):
        second_moment("gamma", 2.0)
    with pytest.raises(ValueError):
        second_moment("weibull", 2.0, cv=1.0)


@pytest.mark.parametrize(
    ("lams", "means", "dists", "costs"),
    [
        (
            [0.10, 0.05, 0.20],
            [2.0, 4.0, 1.0],
            [("exponential", None), ("deterministic", None), ("lognormal", 2.0)],
            [1.0, 5.0, 0.8],
        ),
        (
            [0.05, 0.10, 0.08, 0.12],
            [3.0, 1.5, 2.0, 0.5],
            [("gamma", 0.4), ("exponential", None), ("lognormal", 1.5), ("deterministic", None)],
            [2.0, 1.2, 3.0, 0.2],
        ),
    ],
)
def test_cmu_order_minimises_cost_over_all_orders(
    lams: list[float], means: list[float], dists: list[tuple[str, float | None]], costs: list[float]
) -> None:
    es2 = [second_moment(d, m, cv) for (d, cv), m in zip(dists, means, strict=True)]
    costs_by_order = {
        perm: priority_order_cost(list(perm), lams, means, es2, costs)
        for perm in itertools.permutations(range(len(lams)))
    }
    best = min(costs_by_order.values())
    cmu = cmu_order(costs, means)
    assert costs_by_order[tuple(cmu)] == pytest.approx(best, rel=1e-12)
    # The example is not degenerate: the worst order is clearly worse.
    assert max(costs_by_order.values()) > 1.2 * best


def test_cmu_order_values_and_ties() -> None:
    # c*mu = 1/2, 5/4, 0.8, 0.8 -> class 1, then tie 2 vs 3 by index, then 0.
    assert cmu_order([1.0, 5.0, 0.8, 1.6], [2.0, 4.0, 1.0, 2.0]) == [1, 2, 3, 0]


def test_priority_order_cost_single_class_and_bad_order() -> None:
    es2 = [second_moment("exponential", 1.0)]
    cost = priority_order_cost([0], [0.5], [1.0], es2, [3.0])
    assert cost == pytest.approx(3.0 * 0.5 * mmc_mean_wait(1, 0.5, 1.0))
    with pytest.raises(ValueError):
        priority_order_cost([0, 0], [0.1, 0.1], [1.0, 1.0], [2.0, 2.0], [1.0, 1.0])


def test_littles_law_gap() -> None:
    assert littles_law_gap(6.0, 2.0, 3.0) == 0.0
    assert littles_law_gap(10.0, 2.0, 4.0) == pytest.approx(0.2)
    assert littles_law_gap(0.0, 0.0, 5.0) == 0.0
    assert littles_law_gap(0.0, 1.0, 1.0) > 1e6
