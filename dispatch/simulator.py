"""The SimPy engine: tasks arrive, wait in buckets, are dispatched to reviewers, decided.

Events are SimPy timeouts with callbacks (arrivals, completions, expiries, shift changes,
batch epochs, backlog samples) on one :class:`simpy.Environment`. There is no process per
task: a day of a million tasks costs a handful of events per task and no generator frames.

Data flows one way: scenario -> :class:`Simulation` (state) <-> policy (decisions) ->
:class:`~dispatch.metrics.Collector` (records) -> :class:`~dispatch.metrics.SimResult`.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from collections.abc import Callable
from heapq import heappush
from typing import Any

import simpy
from simpy.events import NORMAL

from dispatch.arrivals import arrival_times
from dispatch.errors import ConfigError
from dispatch.factory import TaskFactory
from dispatch.metrics import Collector, SimResult
from dispatch.model import DONE, EXPIRED, IN_SERVICE, WAITING, Bucket, Group, Item, Reviewer, Task
from dispatch.policies.base import Policy
from dispatch.randomness import Buffered, Streams
from dispatch.scenario import ReplayArrivals, RoutingRule, Scenario
from dispatch.schedule import duty_intervals


class _Call:
    """A minimal SimPy event: fires its callbacks with ``_value`` at its scheduled time.

    ``simpy.Environment.step`` only needs ``callbacks`` and ``_ok`` from an event; skipping
    ``Timeout``'s generality halves the cost of scheduling on the hot path.
    """

    __slots__ = ("callbacks", "_value", "_ok")

    def __init__(self, fn, value):
        self.callbacks = [fn]
        self._value = value
        self._ok = True


class InvalidDecision(RuntimeError):
    """A policy returned a bucket the reviewer may not take (a bug in the policy)."""


class Simulation:
    """One run of a scenario under a policy with a seed.

    Attributes read by policies: ``scenario``, ``buckets`` (list of :class:`Bucket`),
    ``groups``, ``reviewers``, ``class_names``, ``market_names``, ``env.now``, and the helper
    :meth:`candidates`.
    """

    def __init__(
        self,
        scenario: Scenario,
        policy: Policy,
        seed: int = 0,
        *,
        record_tasks: bool = False,
        data: Any | None = None,
    ):
        if data is None and (scenario.data.task_logs or scenario.data.rosters):
            from dispatch.importers import resolve_data

            scenario, data = resolve_data(scenario)
        self.scenario = scenario
        self.policy = policy
        self.seed = int(seed)
        self.env = simpy.Environment()
        self.horizon = scenario.horizon
        self.warmup = scenario.warmup
        self.class_names = [c.name for c in scenario.classes]
        self.market_names = list(scenario.markets)
        self.streams = Streams(self.seed, self.class_names)
        self._data = data
        self._build_buckets()
        self._build_reviewers()
        self._build_routing()
        self.collector = Collector(self, record_tasks=record_tasks)
        self._next_id = 0
        self._open_items: dict[Item, None] = {}  # insertion-ordered: deterministic sums
        policy.bind(self, self.streams.policy)
        self._batch = policy.mode == "batch"
        self._defer = bool(getattr(policy, "defer", False))
        self._on_demand = self._batch and bool(getattr(policy, "on_demand", False))
        self._epoch_pending = False
        self.pending: deque[Reviewer] = deque()
        # Stepping only: called as on_advance(now, t_next) before simulated time moves on
        # from ``now`` to the next event at ``t_next`` (or to the horizon), so an external
        # decision maker can integrate piecewise-constant state (e.g. holding cost).
        self.on_advance: Callable[[float, float], None] | None = None
        self._started = False

    # -- construction ----------------------------------------------------------------------
    def _build_buckets(self) -> None:
        scen = self.scenario
        self.market_index = {m: i for i, m in enumerate(self.market_names)}
        self.bands = list(scen.risk_bands)
        nb = len(self.bands) + 1
        self.buckets: list[Bucket] = []
        self.bucket_of: dict[tuple[int, int, int], int] = {}
        for ci, c in enumerate(scen.classes):
            markets = list(c.market_mix) if c.market_mix else self.market_names
            for m in markets:
                mi = self.market_index[m]
                for band in range(nb):
                    hi = self.bands[band] if band < len(self.bands) else 1.0
                    thr = c.severe_risk_threshold
                    severe_possible = thr is not None and hi >= thr
                    name = c.name if len(self.market_names) == 1 else f"{c.name}/{m}"
                    if nb > 1:
                        name += f"/r{band}"
                    b = Bucket(len(self.buckets), ci, mi, band, name, severe_possible)
                    self.bucket_of[(ci, mi, band)] = b.index
                    self.buckets.append(b)
        self._bucket_base: list[dict[int, int]] = [{} for _ in scen.classes]
        for (ci, mi, band), bi in self.bucket_of.items():
            if band == 0:
                self._bucket_base[ci][mi] = bi
        self.buckets_of_class = [
            [b.index for b in self.buckets if b.cls == ci] for ci in range(len(scen.classes))
        ]

    def _build_reviewers(self) -> None:
        scen = self.scenario
        self.groups: list[Group] = []
        self.reviewers: list[Reviewer] = []
        for gi, g in enumerate(scen.reviewers):
            cls_ok = {self.class_names.index(c) for c in g.classes}
            mk_ok = (
                set(range(len(self.market_names)))
                if g.markets == "all"
                else {self.market_index[m] for m in g.markets}
            )
            eligible = [b.index for b in self.buckets if b.cls in cls_ok and b.market in mk_ok]
            sens, spec, speed = [], [], []
            for ci, c in enumerate(scen.classes):
                acc = g.accuracy.get(c.name, g.default_accuracy)
                sens.append(acc.sensitivity)
                spec.append(acc.specificity)
                speed.append(g.speed.get(c.name, 1.0) if ci in cls_ok else 0.0)
            grp = Group(
                gi,
                g.name,
                g,
                eligible,
                len(self.buckets),
                sens,
                spec,
                speed,
                g.wellbeing_cap,
                g.fatigue,
            )
            self.groups.append(grp)
            for _ in range(g.count):
                r = Reviewer(len(self.reviewers), grp)
                r.event = _Call(None, r)
                grp.members.append(r)
                self.reviewers.append(r)
        # Idle groups offered a new task: specialists (fewest eligible buckets) first.
        self.bucket_groups: list[list[Group]] = []
        for b in self.buckets:
            gs = [g for g in self.groups if b.index in set(g.eligible) and g.members]
            gs.sort(key=lambda g: (len(g.eligible), g.index))
            self.bucket_groups.append(gs)

    def _build_routing(self) -> None:
        rules = self.scenario.all_routing()
        self.routes_from: list[list[tuple[int, RoutingRule]]] = [[] for _ in self.class_names]
        per_class_count = [0] * len(self.class_names)
        for rule in rules:
            ci = self.class_names.index(rule.source)
            self.routes_from[ci].append((per_class_count[ci], rule))
            per_class_count[ci] += 1
        self.route_target = {id(r): self.class_names.index(r.target) for r in rules}
        self.factories = [
            TaskFactory(self.scenario, ci, self.streams, per_class_count[ci], self.market_index)
            for ci in range(len(self.class_names))
        ]
        self.followup_factories = [
            TaskFactory(
                self.scenario, ci, self.streams, per_class_count[ci], self.market_index, True
            )
            for ci in range(len(self.class_names))
        ]
        self._delays = {
            id(r): Buffered(lambda n, d=r.delay: d.sample(self.streams.delays, n))
            for r in rules
            if r.delay is not None
        }

    # -- helpers for policies ----------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.env._now

    def candidates(self, reviewer: Reviewer, now: float | None = None) -> list[int]:
        """Buckets this reviewer may take a task from now: eligible, non-empty, within cap."""
        buckets = self.buckets
        out = [b for b in reviewer.group.eligible if buckets[b].n > 0]
        if reviewer.group.cap is not None and out:
            t = self.env._now if now is None else now
            if reviewer.at_cap(t):
                out = [b for b in out if not buckets[b].head().severe]
        return out

    def band_of(self, risk: float) -> int:
        return bisect.bisect_right(self.bands, risk) if self.bands else 0

    def _at(self, delay: float, fn, payload: Any = None) -> None:
        env = self.env
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), _Call(fn, payload)))

    # -- arrivals --------------------------------------------------------------------------
    def _start_arrivals(self) -> None:
        data = self._data
        for ci, c in enumerate(self.scenario.classes):
            replay = None
            if isinstance(c.arrivals, ReplayArrivals):
                replay = data.replay_times(c.arrivals.log, c.name) if data else []
            gen = arrival_times(
                c.arrivals, self.streams.of(c.name, "arrivals"), self.horizon, replay
            )
            self._next_arrival(ci, gen, replay is not None)
        if data is not None:
            for row in data.backlog_rows():
                self._seed_backlog(row)

    def _next_arrival(self, ci: int, gen, replayed: bool, ev: _Call | None = None) -> None:
        t = next(gen, None)
        if t is None:
            return
        env = self.env
        if ev is None:
            ev = _Call(self._on_arrival_event, (ci, gen, replayed))
        else:  # one pending arrival per class: reuse its event object
            ev.callbacks = [self._on_arrival_event]
        heappush(env._queue, (t, NORMAL, next(env._eid), ev))

    def _on_arrival_event(self, ev) -> None:
        ci, gen, replayed = ev._value
        now = self.env._now
        if replayed:
            self._create_task(ci, now, now, self._data.next_replay_row(self.class_names[ci]))
        else:
            self._create_task(ci, now, now, None)
        self._next_arrival(ci, gen, replayed, ev)

    def _seed_backlog(self, row) -> None:
        ci = self.class_names.index(row.cls)
        self._create_task(ci, row.arrival, 0.0, row)

    def _create_task(self, ci: int, arrival: float, now: float, row=None) -> Task:
        task = Task()
        task.id = self._next_id
        self._next_id += 1
        fac = self.factories[ci]
        fac.draw(task, arrival)
        if row is not None:
            row.apply(task, self.market_index, fac.severe_threshold)
            if row.severity == row.severity:
                task.severity = row.severity
            if row.reach == row.reach:
                task.reach = row.reach
            if row.label == row.label:
                task.violating = bool(row.label)
        task.counted = (arrival if arrival > 0.0 else 0.0) >= self.warmup
        task.root = task
        task.item = task
        task.arrival = arrival
        task.deadline = arrival + fac.sla
        if task.expires_at != math.inf:
            task.end_of_life = task.expires_at
        elif fac.lifetime is not None:
            task.end_of_life = arrival + fac.lifetime
        else:
            task.end_of_life = math.inf
        self._enqueue(task, now)
        return task

    def _spawn_followup(self, parent: Task, rule: RoutingRule) -> None:
        delay_buf = self._delays.get(id(rule))
        item = parent.item
        item.open_tasks += 1
        if item.violating:
            self._open_items[item] = None
        if delay_buf is None:
            self._make_followup((parent, rule))
        else:
            self._at(delay_buf.next(), self._on_followup_event, (parent, rule))

    def _on_followup_event(self, ev) -> None:
        self._make_followup(ev._value)

    def _make_followup(self, payload) -> None:
        parent, rule = payload
        now = self.env._now
        ci = self.route_target[id(rule)]
        task = Task()
        task.id = self._next_id
        self._next_id += 1
        fac = self.followup_factories[ci]
        fac.draw(task, now)
        item = parent.item
        task.market = parent.market
        task.risk = parent.risk
        task.violating = item.violating
        task.severity = item.severity
        task.reach = item.reach
        task.end_of_life = item.end_of_life
        thr = fac.severe_threshold
        task.severe = thr is not None and parent.risk >= thr
        task.item = item
        task.root = parent.root
        task.arrival = now
        task.deadline = now + fac.sla
        task.counted = now >= self.warmup
        parent.item.open_tasks -= 1  # _enqueue counts it again
        self._enqueue(task, now)

    def _enqueue(self, task: Task, now: float) -> None:
        item = task.item
        item.open_tasks += 1
        if item.violating:
            self._open_items[item] = None
        bi = self._bucket_base[task.cls].get(task.market)
        if bi is None:
            raise ConfigError(
                f"a task of class {self.class_names[task.cls]} arrived for market "
                f"{self.market_names[task.market]}, which the class's market_mix excludes"
            )
        if self.bands:
            bi += bisect.bisect_right(self.bands, task.risk)
        task.bucket = bi
        b = self.buckets[bi]
        b.tasks.append(task)
        b.n += 1
        b.sum_risk += task.risk
        b.sum_harm_rate += task.risk * task.severity * task.reach
        if task.severe:
            b.n_severe += 1
        self.collector.on_arrival(task, now)
        if task.expires_at != math.inf:
            if task.expires_at <= now:
                self._expire(task)
                return
            self._at(task.expires_at - now, self._on_expiry_event, task)
        if not self._batch:
            self._offer_bucket(bi, now)
        elif self._on_demand and not self._epoch_pending:
            # Solve again only if someone free could take the new task.
            for g in self.bucket_groups[bi]:
                if g.idle:
                    self.request_epoch()
                    break

    def _remove_from_bucket(self, task: Task) -> None:
        b = self.buckets[task.bucket]
        b.n -= 1
        b.sum_risk -= task.risk
        b.sum_harm_rate -= task.risk * task.severity * task.reach
        if task.severe:
            b.n_severe -= 1

    def _on_expiry_event(self, ev) -> None:
        task = ev._value
        if task.state == WAITING:
            self._expire(task)

    def _expire(self, task: Task) -> None:
        task.state = EXPIRED
        self._remove_from_bucket(task)
        self.collector.on_expire(task, self.env._now)
        self._task_resolved(task)

    # -- dispatching -----------------------------------------------------------------------
    def _offer_bucket(self, bi: int, now: float) -> None:
        """A task arrived in bucket ``bi``: let idle eligible reviewers pull."""
        groups = self.bucket_groups[bi]
        if not groups:
            return
        if len(groups) > 1:
            groups = self.policy.group_order(bi, groups)
        for g in groups:
            idle = g.idle
            tries = 0
            while idle and tries < 3:
                r = idle.popleft()
                r.in_idle = False
                if self._pull(r, now):
                    return
                tries += 1
                idle.append(r)
                r.in_idle = True

    def _pull(self, r: Reviewer, now: float) -> bool:
        """Ask the policy which bucket free reviewer ``r`` takes; start it. False if none."""
        buckets = self.buckets
        g = r.group
        if g.single >= 0:  # one eligible bucket: no list to filter
            if not buckets[g.single].n:
                return False
            cands = g.eligible
        else:
            cands = [b for b in g.eligible if buckets[b].n]
            if not cands:
                return False
        if g.cap is not None and r.at_cap(now):
            cands = [b for b in cands if not buckets[b].head().severe]
            if not cands:
                return False
        if self._defer:
            # An external decision maker (a Gymnasium env) decides: park the reviewer.
            self.pending.append(r)
            return True
        bi = self.policy.select(r, cands, now)
        if bi is None:
            return False
        if bi not in cands:
            raise InvalidDecision(
                f"policy {self.policy.name} chose bucket {bi} for reviewer {r.id} "
                f"({r.group.name}); allowed: {cands}"
            )
        self._start(r, bi, now)
        return True

    def _start(self, r: Reviewer, bi: int, now: float) -> None:
        b = self.buckets[bi]
        tasks = b.tasks
        task = tasks.popleft()
        while task.state != WAITING:  # drop expired tasks found at the head
            task = tasks.popleft()
        task.state = IN_SERVICE
        task.start = now
        task.reviewer = r
        b.n -= 1
        b.sum_risk -= task.risk
        b.sum_harm_rate -= task.risk * task.severity * task.reach
        if task.severe:
            b.n_severe -= 1
        g = r.group
        if g.fatigue is not None:
            r.fatigue = r.current_fatigue(now)
            r.fatigue_t = now
        r.busy = True
        r.task = task
        if task.severe:
            r.severe_times.append(now)
            r.severe_done += 1
        self.collector.on_start(task, r, now)
        env = self.env
        ev = r.event  # one pending completion per reviewer: reuse its event object
        ev.callbacks = [self._on_complete_event]
        heappush(env._queue, (now + task.work / g.speed[task.cls], NORMAL, next(env._eid), ev))

    def _on_complete_event(self, ev) -> None:
        r: Reviewer = ev._value
        now = self.env._now
        task = r.task
        g = r.group
        drop = 0.0
        if g.fatigue is not None:
            r.fatigue = r.current_fatigue(now)
            r.fatigue_t = now
            drop = r.fatigue
        ci = task.cls
        item = task.item
        if item.violating:
            positive = task.decision_u < g.sensitivity[ci] - drop
        else:
            positive = task.decision_u >= g.specificity[ci] - drop
        task.state = DONE
        r.busy = False
        r.task = None
        r.completed += 1
        if positive and item.enforced_at is None:
            item.enforced_at = now
        self.collector.on_complete(task, r, positive, now)
        routes = self.routes_from[ci]
        if routes:
            for k, rule in routes:
                if task.route_u[k] < rule.prob and _route_applies(rule.when, positive, item):
                    self._spawn_followup(task, rule)
        item.open_tasks -= 1
        if not item.open_tasks and item.violating:
            self._open_items.pop(item, None)
            self.collector.on_item_closed(item, now)
        if r.leaving or not r.on_duty or self._batch or not self._pull(r, now):
            self._reviewer_free(r, now)

    def _reviewer_free(self, r: Reviewer, now: float) -> None:
        """Reviewer ``r`` found no work (or goes off duty): park it in its group's idle list."""
        if r.leaving or not r.on_duty:
            r.leaving = False
            r.on_duty = False
            return
        r.idle_since = now
        r.in_idle = True
        r.group.idle.append(r)
        if self._on_demand:
            self.request_epoch()
        if r.group.cap is not None and r.severe_times and r.at_cap(now):
            # Wake up when the oldest severe item leaves the rolling hour.
            self._at(r.severe_times[0] + 60.0 - now + 1e-9, self._on_wake_event, r)

    def _on_wake_event(self, ev) -> None:
        r = ev._value
        if r.in_idle and not r.busy and r.on_duty and not self._batch:
            r.group.idle.remove(r)
            r.in_idle = False
            if not self._pull(r, self.env._now):
                r.group.idle.append(r)
                r.in_idle = True

    def _task_resolved(self, task: Task) -> None:
        item = task.item
        item.open_tasks -= 1
        if item.open_tasks == 0 and item.violating:
            self._open_items.pop(item, None)
            self.collector.on_item_closed(item, self.env._now)

    # -- batch epochs ----------------------------------------------------------------------
    def _on_epoch_event(self, ev) -> None:
        now = self.env._now
        self.run_epoch(now)
        if now + self.policy.batch_interval < self.horizon:
            self._at(self.policy.batch_interval, self._on_epoch_event)

    def request_epoch(self) -> None:
        """Batch policies with ``on_demand``: solve again now (once per instant), in
        addition to the periodic epochs, when work or a reviewer has just become free."""
        if not self._epoch_pending:
            self._epoch_pending = True
            self._at(0.0, self._on_demand_epoch_event)

    def _on_demand_epoch_event(self, ev) -> None:
        self._epoch_pending = False
        self.run_epoch(self.env._now)

    def run_epoch(self, now: float) -> int:
        """Give all free reviewers to the policy's batch assignment; returns tasks started."""
        free = [r for g in self.groups for r in g.idle]
        if not free:
            return 0
        pairs = self.policy.assign(free, now)
        started = 0
        buckets = self.buckets
        touched: set[int] = set()
        for r, bi in pairs:
            if not r.in_idle or r.busy:
                raise InvalidDecision(f"reviewer {r.id} assigned twice or not free")
            g = r.group
            b = buckets[bi] if 0 <= bi < len(buckets) else None
            if (
                b is None
                or not g.eligible_mask[bi]
                or b.n <= 0
                or (g.cap is not None and b.head().severe and r.at_cap(now))
            ):
                raise InvalidDecision(
                    f"policy {self.policy.name} assigned bucket {bi} to reviewer {r.id} "
                    f"({g.name}), which is not eligible, empty or over its cap"
                )
            r.in_idle = False
            touched.add(g.index)
            self._start(r, bi, now)
            started += 1
        for gi in touched:  # rebuild idle lists once instead of O(n) removals per pair
            g = self.groups[gi]
            g.idle = deque(x for x in g.idle if x.in_idle)
        return started

    # -- shifts ----------------------------------------------------------------------------
    def _start_shifts(self) -> None:
        for g in self.groups:
            if not g.spec.shifts:
                for r in g.members:
                    r.in_idle = True
                    g.idle.append(r)
                continue
            intervals = duty_intervals(g.spec.shifts, self.horizon)
            on_now = any(a <= 0.0 < b for a, b in intervals)
            g.on_duty = on_now
            for r in g.members:
                r.on_duty = on_now
                if on_now:
                    r.in_idle = True
                    g.idle.append(r)
            for a, b in intervals:
                if a > 0.0:
                    self._at(a, self._on_duty_event, (g, True))
                if b < self.horizon:
                    self._at(b, self._on_duty_event, (g, False))

    def _on_duty_event(self, ev) -> None:
        g, on = ev._value
        now = self.env._now
        if on == g.on_duty:
            return
        g.on_duty = on
        self.collector.on_duty_change(g, on, now)
        if not on:
            for r in g.members:
                if r.busy:
                    r.leaving = True
                else:
                    r.on_duty = False
                r.in_idle = False
            g.idle.clear()
            return
        for r in g.members:
            if r.busy:
                r.leaving = False
                r.on_duty = True
                continue
            r.on_duty = True
            if g.fatigue is not None:
                r.fatigue = r.current_fatigue(now)
                r.fatigue_t = now
            r.in_idle = True
            g.idle.append(r)
        if not self._batch:
            for r in list(g.idle):
                if r.in_idle and self.candidates(r, now):
                    g.idle.remove(r)
                    r.in_idle = False
                    if not self._pull(r, now):
                        g.idle.append(r)
                        r.in_idle = True

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

    def run_until(self, t: float) -> None:
        """Advance simulated time to ``min(t, horizon)`` (batch-mode stepping)."""
        self.start()
        self.env.run(until=min(t, self.horizon))

    # -- stepping by decision (for Gymnasium environments) ------------------------------------
    def next_decision(self) -> tuple[Reviewer, list[int]] | None:
        """Run until a free reviewer needs a decision; ``None`` when the horizon is reached.

        Only for policies with ``defer = True``: the caller answers with :meth:`decide`.
        Reviewers whose options vanished while they waited (another reviewer took the last
        task) are parked idle without asking.
        """
        self.start()
        env = self.env
        queue = env._queue
        horizon = self.horizon
        advance = self.on_advance
        while True:
            while self.pending:
                r = self.pending[0]
                cands = self.candidates(r, env._now)
                if cands:
                    return r, cands
                self.pending.popleft()
                self._reviewer_free(r, env._now)
            if not queue or queue[0][0] >= horizon:
                if env._now < horizon:
                    if advance is not None:
                        advance(env._now, horizon)
                    env.run(until=horizon)
                return None
            if advance is not None:
                advance(env._now, queue[0][0])
            env.step()

    def decide(self, bucket: int | None) -> None:
        """Answer the pending decision: the reviewer takes ``bucket`` (or stays idle)."""
        r = self.pending.popleft()
        now = self.env._now
        if bucket is None:
            self._reviewer_free(r, now)
            return
        if bucket not in self.candidates(r, now):
            raise InvalidDecision(f"bucket {bucket} is not a valid choice for reviewer {r.id}")
        self._start(r, bucket, now)

    def finish(self) -> SimResult:
        """Close the books at the horizon and compute the metrics."""
        now = self.horizon
        for item in list(self._open_items):
            self.collector.on_item_closed(item, now)
        self._open_items.clear()
        return self.collector.finish(now)


def _route_applies(when: str, positive: bool, item: Item) -> bool:
    if when == "any":
        return True
    if when == "positive":
        return positive
    if when == "negative":
        return not positive
    if when == "false_positive":
        return positive and not item.violating
    return positive and item.violating  # true_positive


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
