"""Task life in the engine: arrivals, backlog, routed follow-ups, queueing and expiry.

A task's random attributes are all drawn when it is created (:mod:`dispatch.factory`), so
the world a policy faces does not depend on the policy. One arrival event per class is
pending at any time and is reused; a follow-up (QA re-review, escalation, appeal) is
created when a decision routes one, after the rule's delay.
"""

from __future__ import annotations

import bisect
import math
from heapq import heappush
from typing import TYPE_CHECKING

from simpy.events import NORMAL

from dispatch.arrivals import arrival_times
from dispatch.engine.events import _Call
from dispatch.errors import ConfigError
from dispatch.model import EXPIRED, WAITING, Item, Task
from dispatch.scenario import ReplayArrivals

if TYPE_CHECKING:
    from dispatch.layout import Route


class TaskFlow:
    """Creating, queueing and expiring tasks (mixin of :class:`~dispatch.simulator.Simulation`)."""

    # -- arrivals ----------------------------------------------------------------------------
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
        if ev is None:
            ev = _Call(self._on_arrival_event, (ci, gen, replayed))
        else:  # one pending arrival per class: reuse its event object
            ev.callbacks = [self._on_arrival_event]
        env = self.env
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

    # -- follow-ups ----------------------------------------------------------------------------
    def _route(self, task: Task, positive: bool, routes: tuple[Route, ...]) -> None:
        """Spawn the follow-ups a decision on ``task`` routes (its coins drawn at arrival)."""
        item = task.item
        for route in routes:
            rule = route.rule
            if task.route_u[route.k] < rule.prob and _route_applies(rule.when, positive, item):
                self._spawn_followup(task, route)

    def _spawn_followup(self, parent: Task, route: Route) -> None:
        delay_buf = self._delays[route.index]
        item = parent.item
        item.open_tasks += 1
        if item.violating:
            self._open_items[item] = None
        if delay_buf is None:
            self._make_followup((parent, route))
        else:
            self._at(delay_buf.next(), self._on_followup_event, (parent, route))

    def _on_followup_event(self, ev) -> None:
        self._make_followup(ev._value)

    def _make_followup(self, payload: tuple[Task, Route]) -> None:
        parent, route = payload
        now = self.env._now
        task = Task()
        task.id = self._next_id
        self._next_id += 1
        fac = self.followup_factories[route.target]
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

    # -- queueing and expiry -------------------------------------------------------------------
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
        self.buckets[bi].push(task)
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

    def _on_expiry_event(self, ev) -> None:
        task = ev._value
        if task.state == WAITING:
            self._expire(task)

    def _expire(self, task: Task) -> None:
        task.state = EXPIRED
        self.buckets[task.bucket].discard(task)
        self.collector.on_expire(task, self.env._now)
        self._task_resolved(task)

    def _task_resolved(self, task: Task) -> None:
        item = task.item
        item.open_tasks -= 1
        if item.open_tasks == 0 and item.violating:
            self._open_items.pop(item, None)
            self.collector.on_item_closed(item, self.env._now)


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
