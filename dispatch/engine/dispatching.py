"""Who takes what: pull decisions, batch epochs, starting and completing reviews.

*Pull* policies are asked when a reviewer becomes free (its review done, its shift
started, its wellbeing cap lifted) and when a task arrives while eligible reviewers idle
(groups offered in the layout's order, specialists first). *Batch* policies get every free
reviewer at each epoch and, with ``on_demand``, whenever work or a reviewer becomes free.
Every decision is validated here: a policy can never start a task a reviewer may not take.
"""

from __future__ import annotations

from collections import deque
from heapq import heappush

from simpy.events import NORMAL

from dispatch.engine.events import InvalidDecision
from dispatch.model import DONE, IN_SERVICE, Group, Reviewer


class Dispatching:
    """Decisions and reviews (mixin of :class:`~dispatch.simulator.Simulation`)."""

    # -- public, read-only views for policies and environments ---------------------------------
    def candidates(self, reviewer: Reviewer, now: float | None = None) -> list[int]:
        """Buckets this reviewer may take a task from now: eligible, non-empty, within cap."""
        buckets = self.buckets
        out = [b for b in reviewer.group.eligible if buckets[b].n > 0]
        if reviewer.group.cap is not None and out:
            t = self.env._now if now is None else now
            if reviewer.at_cap(t):
                out = [b for b in out if not buckets[b].head().severe]
        return out

    def free_count(self, group: Group | None = None) -> int:
        """Free reviewers parked idle, in ``group`` or in every group.

        A reviewer an external decider is being asked about (:meth:`next_decision`) is in
        neither count: see :attr:`pending_count`.
        """
        if group is not None:
            return len(group.idle)
        n = 0
        for g in self.groups:
            n += len(g.idle)
        return n

    def idle_reviewers(self, group: Group | None = None) -> list[Reviewer]:
        """A copy of the free reviewers parked idle (in ``group``, or all, by group)."""
        if group is not None:
            return list(group.idle)
        return [r for g in self.groups for r in g.idle]

    @property
    def pending_count(self) -> int:
        """Free reviewers waiting for an external decider's answer (deferring policies)."""
        return len(self.pending)

    # -- pull ----------------------------------------------------------------------------------
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

    # -- reviews -------------------------------------------------------------------------------
    def _start(self, r: Reviewer, bi: int, now: float) -> None:
        task = self.buckets[bi].pop()
        task.state = IN_SERVICE
        task.start = now
        task.reviewer = r
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
        ev = r.event  # one pending completion per reviewer: reuse its event object
        ev.callbacks = [self._on_complete_event]
        env = self.env  # the hot path pushes onto SimPy's heap directly (see engine.events)
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
            self._route(task, positive, routes)
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

    # -- batch epochs --------------------------------------------------------------------------
    def _on_epoch_event(self, ev) -> None:
        now = self.env._now
        self.run_epoch(now)
        if now + self.policy.batch_interval < self.horizon:
            self._at(self.policy.batch_interval, self._on_epoch_event)

    @property
    def epoch_pending(self) -> bool:
        """An on-demand epoch is scheduled at this instant (it decides before time moves)."""
        return self._epoch_pending

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
        touched: set[int] = set()
        for r, bi in pairs:
            self._check_pair(r, bi, now)
            r.in_idle = False
            touched.add(r.group.index)
            self._start(r, bi, now)
            started += 1
        for gi in touched:  # rebuild idle lists once instead of O(n) removals per pair
            g = self.groups[gi]
            g.idle = deque(x for x in g.idle if x.in_idle)
        return started

    def _check_pair(self, r: Reviewer, bi: int, now: float) -> None:
        """Raise :class:`InvalidDecision` unless free ``r`` may take bucket ``bi``'s head now."""
        if not r.in_idle or r.busy:
            raise InvalidDecision(f"reviewer {r.id} assigned twice or not free")
        g = r.group
        buckets = self.buckets
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
