"""The simulator against closed forms of queueing theory.

Each check replicates a textbook model with independent seeds and asks that the theory
lies inside the 95% confidence interval of the replications and within 3% relative error.
"""

from __future__ import annotations

import numpy as np
import pytest

from dispatch import theory
from dispatch.scenario import load_scenario
from dispatch.simulator import simulate
from dispatch.stats import mean_ci
from tests.conftest import scenario_path


def replicate(scen, policy, seeds, fn):
    return np.array([fn(simulate(scen, policy, s)) for s in seeds])


def assert_matches(values, expected, rel=0.03):
    mean, lo, hi = mean_ci(values)
    assert lo <= expected <= hi, f"theory {expected:.4f} outside CI [{lo:.4f}, {hi:.4f}]"
    assert abs(mean - expected) / expected < rel, f"mean {mean:.4f} vs theory {expected:.4f}"


def test_mmc_erlang_c():
    # c=4, lambda=3.2, mu=1 (load 0.8): 12 replications of ~40,000 tasks.
    scen = load_scenario(
        scenario_path("mmc"),
        {"horizon": 12500, "classes.task.arrivals.rate": 3.2, "reviewers.servers.count": 4},
    )
    th = theory.mmc_metrics(4, 3.2, 1.0)
    res = [simulate(scen, "fifo", s).overall for s in range(12)]
    assert_matches([r["mean_wait"] for r in res], th["mean_wait"])
    assert_matches([r["p_wait"] for r in res], th["p_wait"])
    assert_matches([r["littles_L"] for r in res], th["mean_in_system"])


@pytest.mark.slow
def test_mmc_erlang_c_heavy_load():
    # The textbook case of the issue: M/M/10 at load 0.9, 200,000 tasks per replication.
    scen = load_scenario(scenario_path("mmc"))
    th = theory.mmc_metrics(10, 9.0, 1.0)
    res = [simulate(scen, "fifo", s).overall for s in range(20)]
    assert_matches([r["mean_wait"] for r in res], th["mean_wait"])
    assert_matches([r["p_wait"] for r in res], th["p_wait"])


def test_erlang_a_abandonment():
    scen = load_scenario(scenario_path("mmc_abandonment"), {"horizon": 8000})
    th = theory.erlang_a(5, 6.0, 1.0, 0.5)
    res = [simulate(scen, "fifo", s).overall for s in range(10)]
    p_ab = [r["abandoned"] / (r["completed"] + r["abandoned"]) for r in res]
    assert_matches(p_ab, th["p_abandon"])
    # Mean wait over all arrivals: served tasks wait until service, abandoning ones until
    # they leave.
    waits = [
        (r["mean_wait"] * r["completed"] + r["abandon_wait_total"])
        / (r["completed"] + r["abandoned"])
        for r in res
    ]
    assert_matches(waits, th["mean_wait"])
    assert_matches([r["mean_wait"] for r in res], th["mean_wait_served"])


def test_cobham_priority_mg1():
    scen = load_scenario(scenario_path("priority_mg1"), {"horizon": 60000})
    lams = [c.arrivals.rate for c in scen.classes]
    means = [c.handling.expected for c in scen.classes]
    m2 = [c.handling.second_moment for c in scen.classes]
    expected = theory.cobham_priority_waits(lams, means, m2)
    res = [simulate(scen, "priority", s) for s in range(10)]
    for k, c in enumerate(scen.classes):
        assert_matches([r.per_class[c.name]["mean_wait"] for r in res], expected[k], rel=0.04)


@pytest.mark.parametrize(
    "name", ["mmc", "mmc_abandonment", "priority_mg1", "multiclass_priority", "ecommerce_day"]
)
def test_littles_law_and_conservation_every_run(name):
    scen = load_scenario(scenario_path(name), {"horizon": 3000} if name != "ecommerce_day" else {})
    for policy in ("fifo", "priority"):
        r = simulate(scen, policy, 7)
        o = r.overall
        assert o["littles_gap"] < 1e-9
        assert o["conservation_gap"] == 0
        for m in r.per_class.values():
            assert m["arrivals"] == m["completed"] + m["abandoned"] + m["in_system"]
