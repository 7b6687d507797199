"""The holding-cost metric and objective term, and per-group completions after the warm-up.

Oracles: per-task records (every leg of a routed task is a record of its own class) plus the
tasks still in the system at the horizon give the exact area under each class's count, which
the collector integrates at events.
"""

from __future__ import annotations

import math

import pytest

from dispatch.model import WAITING
from dispatch.objective import Objective
from dispatch.policies import make_policy
from dispatch.scenario import scenario_from_dict
from dispatch.simulator import Simulation, simulate


def _routed(warmup: float, patience: bool = False) -> dict:
    """Two classes, a routed second leg, one flexible and one dedicated group."""
    a = {
        "name": "a",
        "holding_cost": 3.0,
        "arrivals": {"kind": "poisson", "rate": 0.8},
        "handling": {"kind": "exponential", "mean": 1.0},
    }
    if patience:
        a["patience"] = {"kind": "exponential", "mean": 2.0}
    return {
        "horizon": 3000.0,
        "warmup": warmup,
        "classes": [
            a,
            {"name": "b", "holding_cost": 0.5, "handling": {"kind": "exponential", "mean": 0.8}},
        ],
        "reviewers": [
            {"name": "flex", "count": 1, "classes": ["a", "b"]},
            {"name": "solo", "count": 1, "classes": ["b"]},
        ],
        "routing": [{"from": "a", "to": "b", "prob": 0.7}],
    }


def _oracle(sim: Simulation, records) -> list[float]:
    """Area of each class's count over [warmup, horizon] x holding cost / window."""
    lo, hi = sim.warmup, sim.horizon
    area = [0.0] * len(sim.class_names)
    for cls, arr, end in zip(records["class_id"], records["arrival"], records["end"], strict=True):
        area[cls] += max(0.0, min(end, hi) - max(arr, lo))
    pending = [t for b in sim.buckets for t in b.tasks if t.state == WAITING]
    pending += [r.task for r in sim.reviewers if r.task is not None]
    for t in pending:
        area[t.cls] += hi - max(t.arrival, lo)
    h = [c.holding_cost for c in sim.scenario.classes]
    return [hc * a / (hi - lo) for hc, a in zip(h, area, strict=True)]


@pytest.mark.parametrize("warmup,patience", [(0.0, False), (500.0, False), (500.0, True)])
def test_holding_cost_equals_the_area_under_every_leg(warmup, patience):
    scen = scenario_from_dict(_routed(warmup, patience))
    sim = Simulation(scen, make_policy("fifo"), seed=3, record_tasks=True)
    res = sim.run()
    want = _oracle(sim, res.records)
    got = [res.per_class[n]["holding_cost"] for n in sim.class_names]
    assert got == pytest.approx(want, rel=1e-9)
    assert res.overall["holding_cost"] == pytest.approx(sum(want), rel=1e-9)
    assert want[1] > 0  # the routed leg is charged


def test_holding_cost_is_littles_L_for_one_class_without_warmup():
    data = _routed(0.0)
    data["classes"] = data["classes"][:1]
    data["classes"][0]["holding_cost"] = 1.0
    data["routing"] = []
    data["reviewers"] = [{"name": "solo", "count": 1, "classes": ["a"]}]
    res = simulate(scenario_from_dict(data), "fifo", seed=1)
    assert res.overall["holding_cost"] == pytest.approx(res.overall["littles_L"], rel=1e-12)


def test_per_group_completed_counts_only_the_measured_tasks():
    """M/M/7, warm-up half the horizon: the groups' completions sum to overall.completed."""
    data = {
        "horizon": 2000.0,
        "warmup": 1000.0,
        "classes": [
            {
                "name": "t",
                "arrivals": {"kind": "poisson", "rate": 6.0},
                "handling": {"kind": "exponential", "mean": 1.0},
            }
        ],
        "reviewers": [
            {"name": "g1", "count": 4, "classes": ["t"]},
            {"name": "g2", "count": 3, "classes": ["t"]},
        ],
    }
    res = simulate(scenario_from_dict(data), "fifo", seed=0)
    done = sum(g["completed"] for g in res.per_group.values())
    assert done == res.overall["completed"]
    assert 0.4 * res.overall["arrivals"] < done  # not twice the measured window's


def test_holding_weight_is_off_by_default_and_prices_the_metric():
    res = simulate(scenario_from_dict(_routed(100.0)), "fifo", seed=2)
    o = res.overall
    assert Objective().cost(o) == o["objective"]
    only = Objective(harm=0, sla_breach=0, wrong_decision=0, false_enforcement=0, abandoned=0)
    assert only.model_copy(update={"holding": 2.0}).cost(o) == pytest.approx(
        2.0 * o["holding_cost"]
    )
    assert only.cost(o) == 0.0


def test_running_holding_cost_telescopes_to_the_final_one():
    scen = scenario_from_dict(_routed(200.0))
    sim = Simulation(scen, make_policy("fifo"), seed=4)
    obj = Objective(harm=0, sla_breach=0, wrong_decision=0, false_enforcement=0, abandoned=0)
    obj = obj.model_copy(update={"holding": 1.0})
    seen = []
    for t in (100.0, 1000.0, 2000.0, 3000.0):
        sim.advance_to(t)
        seen.append(obj.running_cost(sim.collector))
    res = sim.finish()
    assert seen[0] == 0.0 and seen == sorted(seen)
    assert seen[-1] == pytest.approx(res.overall["holding_cost"], rel=1e-12)
    assert math.isfinite(seen[-1])
