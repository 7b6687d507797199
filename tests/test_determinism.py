"""Same scenario and seed give identical metrics to the bit; policies share the world."""

from __future__ import annotations

import numpy as np

from dispatch.policies import make_policy
from dispatch.scenario import load_scenario
from dispatch.simulator import Simulation, simulate
from tests.conftest import scenario_path


def test_same_seed_identical_to_the_bit():
    scen = load_scenario(scenario_path("ecommerce_day"))
    a = simulate(scen, "harm_rate", 11)
    b = simulate(scen, "harm_rate", 11)
    assert a.to_json() == b.to_json()
    assert a.timeseries == b.timeseries
    c = simulate(scen, "harm_rate", 12)
    assert a.to_json() != c.to_json()


def test_policies_face_the_same_world():
    """Common random numbers: same arrivals, attributes, work and decision coins."""
    scen = load_scenario(scenario_path("ecommerce_day"), {"horizon": 600})
    frames = {}
    for name in ("fifo", "priority", "random"):
        res = Simulation(scen, make_policy(name), 4, record_tasks=True).run()
        df = res.records
        # Follow-ups (QA, appeals) depend on decisions; the exogenous tasks must not.
        frames[name] = df[df.root_id == -1].sort_values("task_id")
    cols = ["class_id", "market_id", "arrival", "risk", "violating", "severity", "reach"]
    base = frames["fifo"].set_index(["class_id", "arrival"])
    for name in ("priority", "random"):
        other = frames[name].set_index(["class_id", "arrival"])
        common = base.index.intersection(other.index)
        assert len(common) > 0.9 * len(base)
        for col in ["risk", "violating", "severity", "reach", "market_id"]:
            assert np.array_equal(
                base.loc[common, col].to_numpy(), other.loc[common, col].to_numpy()
            ), col
    del cols


def test_handling_draws_are_shared_across_policies():
    """A task's work content is drawn at arrival: FIFO and LQF on one server with one
    class must give every task the same service time."""
    scen = load_scenario(scenario_path("mmc"), {"horizon": 300, "reviewers.servers.count": 3})
    a = Simulation(scen, make_policy("fifo"), 2, record_tasks=True).run().records
    b = Simulation(scen, make_policy("lqf"), 2, record_tasks=True).run().records
    a = a[a.outcome == "completed"].set_index("arrival")
    b = b[b.outcome == "completed"].set_index("arrival")
    common = a.index.intersection(b.index)
    assert np.allclose(
        (a.loc[common, "end"] - a.loc[common, "start"]).to_numpy(),
        (b.loc[common, "end"] - b.loc[common, "start"]).to_numpy(),
    )
