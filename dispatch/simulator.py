"""The SimPy engine: tasks arrive, wait in buckets, are dispatched to reviewers, decided.

Events are SimPy events with callbacks (arrivals, completions, expiries, shift changes,
batch epochs, backlog samples) on one :class:`simpy.Environment`. There is no process per
task: a day of a million tasks costs a handful of events per task and no generator frames.

Data flows one way: scenario -> :class:`~dispatch.layout.Layout` -> :class:`Simulation`
(state) <-> policy (decisions) -> :class:`~dispatch.metrics.Collector` (records) ->
:class:`~dispatch.metrics.SimResult`. The class is assembled from the mixins of
:mod:`dispatch.engine` (event loop, task flow, dispatching, shifts); this module wires a
layout into runtime objects and runs it.

The public API, for policies, environments and tools:

* state: ``scenario``, ``layout``, ``buckets`` (:class:`~dispatch.model.Bucket`, with
  ``n``, ``sum_risk``, ``sum_harm_rate``, ``n_severe``, ``head()``), ``groups``,
  ``reviewers``, ``class_names``, ``market_names``, ``horizon``, ``collector``;
* the clock: :attr:`now`, :meth:`schedule` (absolute time), :meth:`peek`;
* views: :meth:`candidates`, :meth:`free_count`, :meth:`idle_reviewers`,
  :attr:`pending_count`, ``reviewer.current_class``;
* running: :meth:`run`, :meth:`start`, :meth:`finish`; stepping:
  :meth:`advance_to` (batch environments), :meth:`next_decision` / :meth:`decide`
  (deferring pull policies), ``on_advance`` (integrate state between events).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import simpy

from dispatch.engine.dispatching import Dispatching
from dispatch.engine.events import EventLoop, InvalidDecision, _Call
from dispatch.engine.shifts import Shifts
from dispatch.engine.tasks import TaskFlow
from dispatch.factory import TaskFactory
from dispatch.layout import Layout
from dispatch.metrics import Collector, SimResult
from dispatch.model import Bucket, Group, Item, Reviewer
from dispatch.policies.base import Policy, PolicyMode
from dispatch.randomness import Buffered, Streams
from dispatch.scenario import Scenario

__all__ = ["InvalidDecision", "Simulation", "simulate"]


class Simulation(EventLoop, TaskFlow, Dispatching, Shifts):
    """One run of a scenario under a policy with a seed.

    ``layout`` may be passed when the caller already has the scenario's
    :class:`~dispatch.layout.Layout` (environments build one per episode otherwise); it
    must be the layout of ``scenario`` (after its ``data:`` is resolved).
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        seed: int = 0,
        *,
        record_tasks: bool = False,
        data: Any | None = None,
        layout: Layout | None = None,
    ):
        if data is None and (scenario.data.task_logs or scenario.data.rosters):
            from dispatch.importers import resolve_data

            scenario, data = resolve_data(scenario)
        if layout is None or layout.scenario is not scenario:
            layout = Layout.from_scenario(scenario)
        self.layout = layout
        self.scenario = scenario
        self.policy = policy
        self.seed = int(seed)
        self.env = simpy.Environment()
        self.horizon = scenario.horizon
        self.warmup = scenario.warmup
        self.class_names = list(layout.class_names)
        self.market_names = list(layout.market_names)
        self.market_index = layout.market_index
        self.bands = list(layout.bands)
        self.streams = Streams(self.seed, self.class_names)
        self._data = data
        self._build_runtime(layout)
        self._build_factories(layout)
        self.collector = Collector(self, record_tasks=record_tasks)
        self._next_id = 0
        self._open_items: dict[Item, None] = {}  # insertion-ordered: deterministic sums
        policy.bind(self, self.streams.policy)
        self._batch = policy.mode == PolicyMode.BATCH
        self._defer = bool(getattr(policy, "defer", False))
        self._on_demand = self._batch and bool(getattr(policy, "on_demand", False))
        self._epoch_pending = False
        self.pending: deque[Reviewer] = deque()
        """Engine-owned: free reviewers parked for an external decider (``pending_count``)."""
        self.on_advance: Callable[[float, float], None] | None = None
        """Stepping only: called as ``on_advance(now, t_next)`` before simulated time moves
        on from ``now`` to the next event at ``t_next`` (or to the horizon), so an external
        decision maker can integrate piecewise-constant state (e.g. holding cost)."""
        self._started = False

    # -- construction ----------------------------------------------------------------------
    def _build_runtime(self, layout: Layout) -> None:
        """Buckets, groups and reviewers as the mutable objects the engine works on."""
        self.buckets = [Bucket(b.index, b.cls, b.market, b.band, b.name) for b in layout.buckets]
        self.bucket_of = layout.bucket_of
        self._bucket_base = layout.base_bucket
        self.groups: list[Group] = []
        self.reviewers: list[Reviewer] = []
        for gs in layout.groups:
            grp = Group(gs)
            self.groups.append(grp)
            for _ in range(gs.headcount):
                r = Reviewer(len(self.reviewers), grp)
                r.event = _Call(None, r)
                grp.members.append(r)
                self.reviewers.append(r)
        # Idle groups offered a new task: specialists (fewest eligible buckets) first.
        self.bucket_groups = [[self.groups[gi] for gi in gs] for gs in layout.offer_order]

    def _build_factories(self, layout: Layout) -> None:
        """Task factories per class (arrivals and follow-ups) and routing delays."""
        n_routes = [len(rs) for rs in layout.routes_from]
        self.routes_from = layout.routes_from
        scen = self.scenario
        self.factories = [
            TaskFactory(scen, ci, self.streams, n_routes[ci], self.market_index)
            for ci in range(len(self.class_names))
        ]
        self.followup_factories = [
            TaskFactory(scen, ci, self.streams, n_routes[ci], self.market_index, True)
            for ci in range(len(self.class_names))
        ]
        self._delays = [
            None
            if r.rule.delay is None
            else Buffered(lambda n, d=r.rule.delay: d.sample(self.streams.delays, n))
            for r in layout.routes
        ]

    # -- running ---------------------------------------------------------------------------
    def start(self) -> None:
        """Schedule arrivals, shifts, epochs and sampling (done once, before stepping)."""
        if self._started:
            return
        self._started = True
        self._start_shifts()
        self._start_arrivals()
        if self._batch:
            self._at(0.0, self._on_epoch_event)
        self.collector.start()

    def run(self) -> SimResult:
        """Simulate the horizon and return the metrics."""
        self.start()
        if self._defer:
            raise RuntimeError("a deferring policy needs next_decision()/decide() stepping")
        self.env.run(until=self.horizon)
        return self.finish()

    def finish(self) -> SimResult:
        """Close the books at the horizon and compute the metrics."""
        now = self.horizon
        for item in list(self._open_items):
            self.collector.on_item_closed(item, now)
        self._open_items.clear()
        return self.collector.finish(now)


def simulate(
    scenario: Scenario,
    policy: Policy | str,
    seed: int = 0,
    *,
    record_tasks: bool = False,
    **policy_params: Any,
) -> SimResult:
    """Run one scenario under one policy (an instance or a registered name) with a seed."""
    if isinstance(policy, str):
        from dispatch.policies import make_policy

        policy = make_policy(policy, **policy_params)
    return Simulation(scenario, policy, seed, record_tasks=record_tasks).run()
