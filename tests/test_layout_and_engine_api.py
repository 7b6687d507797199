"""The Layout (static shape of an operation) and the engine's public API."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dispatch.errors import ConfigError
from dispatch.layout import Layout
from dispatch.model import EXPIRED, WAITING, Bucket, Task
from dispatch.policies import make_policy
from dispatch.policies.base import Policy, PolicyMode
from dispatch.scenario import Scenario, load_scenario, scenario_from_dict
from dispatch.simulator import Simulation
from tests.conftest import scenario_path
from tests.test_importers import roster_scenario


@pytest.fixture(scope="module")
def day() -> Scenario:
    return load_scenario(scenario_path("ecommerce_day"), {"horizon": 120})


# -- layout ------------------------------------------------------------------------------------


def test_layout_is_what_the_simulation_runs_on(day):
    lay = Layout.from_scenario(day)
    sim = Simulation(day, make_policy("fifo"), 0, layout=lay)
    assert sim.layout is lay
    assert [b.name for b in sim.buckets] == lay.bucket_names
    assert len(sim.reviewers) == lay.headcount == sum(g.count for g in day.reviewers)
    for g, gs in zip(sim.groups, lay.groups, strict=True):
        assert g.eligible == list(gs.eligible)
        assert np.array_equal(lay.group_mask[g.index], g.eligible_mask)
        assert np.array_equal(lay.speed[g.index], g.speed)
    # Every bucket is class x market x band, and found again by (class, market, band).
    for b in lay.buckets:
        assert lay.bucket_of[(b.cls, b.market, b.band)] == b.index
        assert b.index in lay.buckets_of_class[b.cls]
        assert lay.base_bucket[b.cls][b.market] + b.band == b.index
    assert not lay.b_cls.flags.writeable and not lay.group_mask.flags.writeable


def test_offer_order_puts_specialists_first(day):
    lay = Layout.from_scenario(day)
    for b, order in zip(lay.buckets, lay.offer_order, strict=True):
        sizes = [len(lay.groups[g].eligible) for g in order]
        assert sizes == sorted(sizes)
        assert set(order) == {
            g.index for g in lay.groups if g.eligible_mask[b.index] and g.headcount
        }


def test_routes_number_rules_per_source_class(day):
    lay = Layout.from_scenario(day)
    rules = day.all_routing()
    assert [r.rule for r in lay.routes] == rules
    for ci, routes in enumerate(lay.routes_from):
        assert [r.k for r in routes] == list(range(len(routes)))
        assert all(r.source == ci for r in routes)
        assert all(lay.class_names[r.target] == r.rule.target for r in routes)


def test_layout_needs_resolved_rosters(tmp_path: Path):
    scen = Scenario.model_validate(roster_scenario(tmp_path))
    with pytest.raises(ConfigError, match="not resolved"):
        Layout.from_scenario(scen)
    lay = Layout.resolve(scen)
    assert lay.scenario.data.rosters == []
    assert len(lay.groups) > len(scen.reviewers)


# -- engine API --------------------------------------------------------------------------------


class _Idle(Policy):
    name = "idle"

    def select(self, reviewer, candidates, now):
        return None


def _tiny() -> Scenario:
    return scenario_from_dict(
        {
            "horizon": 100,
            "classes": [{"name": "a", "handling": {"kind": "deterministic", "value": 1}}],
            "reviewers": [{"name": "g", "count": 1, "classes": ["a"]}],
        }
    )


def test_schedule_runs_callbacks_in_time_order_first_before_others():
    sim = Simulation(_tiny(), _Idle(), 0)
    sim.start()
    seen: list[tuple[float, str]] = []
    sim.schedule(5.0, lambda v: seen.append((sim.now, v)), "b")
    sim.schedule(5.0, lambda v: seen.append((sim.now, v)), "a", first=True)
    sim.schedule(2.5, lambda v: seen.append((sim.now, v)), "early")
    sim.advance_to(5.0)
    assert seen == [(2.5, "early")] and sim.now == 5.0  # events at t stay queued
    sim.advance_to(5.0 + 1e-9)
    assert seen == [(2.5, "early"), (5.0, "a"), (5.0, "b")]
    with pytest.raises(ValueError, match="cannot schedule"):
        sim.schedule(1.0, print)
    assert sim.peek() >= sim.now


def test_advance_to_integrates_every_stretch_and_stops_at_the_horizon():
    sim = Simulation(_tiny(), _Idle(), 0)
    stretches: list[tuple[float, float]] = []
    sim.schedule(10.0, lambda v: None)
    sim.advance_to(1e9, lambda t0, t1: stretches.append((t0, t1)))
    assert sim.now == 100.0
    assert stretches[0][0] == 0.0 and stretches[-1][1] == 100.0
    assert all(a[1] == b[0] for a, b in zip(stretches, stretches[1:], strict=False))


def _task(risk: float, severity: float, reach: float, severe: bool) -> Task:
    t = Task()
    t.risk, t.severity, t.reach, t.severe = risk, severity, reach, severe
    return t


def test_bucket_push_pop_discard_keep_the_counters():
    b = Bucket(0, 0, 0, 0, "x")
    tasks = [_task(0.1, 1.0, 2.0, False), _task(0.5, 3.0, 1.0, True), _task(0.9, 2.0, 5.0, True)]
    for t in tasks:
        b.push(t)
    assert (b.n, b.n_severe) == (3, 2)
    assert math.isclose(b.sum_harm_rate, 0.2 + 1.5 + 9.0)
    tasks[0].state = EXPIRED  # expired at the head: discarded, then skipped by pop
    b.discard(tasks[0])
    assert b.pop() is tasks[1] and tasks[1].state == WAITING
    assert (b.n, b.n_severe) == (1, 1)
    assert math.isclose(b.sum_risk, 0.9) and math.isclose(b.sum_harm_rate, 9.0)
    assert b.head() is tasks[2]


def test_free_and_pending_counts_and_current_class(day):
    sim = Simulation(day, make_policy("fifo"), 1)
    sim.advance_to(60.0)
    free = sim.free_count()
    assert free == sum(sim.free_count(g) for g in sim.groups) == len(sim.idle_reviewers())
    assert sim.pending_count == 0
    busy = [r for r in sim.reviewers if r.busy]
    assert busy and all(r.current_class == r.task.cls for r in busy)
    assert all(r.current_class is None for r in sim.reviewers if not r.busy)


def test_policy_mode_is_a_string():
    assert PolicyMode.BATCH == "batch" and PolicyMode("pull") is PolicyMode.PULL
    assert make_policy("flow").mode is PolicyMode.BATCH
