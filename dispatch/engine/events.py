"""The event loop of a simulation: the clock, scheduling and stepping.

Every event is a SimPy event on one :class:`simpy.Environment`, pushed straight onto its
heap as ``(time, priority, id, event)``. Inside the engine a minimal event (:class:`_Call`)
replaces ``simpy.Timeout``: ``Environment.step`` only needs ``callbacks`` and ``_ok``, and
skipping ``Timeout``'s generality halves the cost of scheduling on the hot path. Code
outside the engine schedules through :meth:`EventLoop.schedule` and steps with
:meth:`EventLoop.advance_to` / :meth:`EventLoop.next_decision`, never through SimPy's
private fields.
"""

from __future__ import annotations

from collections.abc import Callable
from heapq import heappush
from typing import TYPE_CHECKING, Any

from simpy.events import NORMAL, URGENT

if TYPE_CHECKING:
    import simpy

    from dispatch.model import Reviewer


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


class EventLoop:
    """Clock, scheduling and stepping of a :class:`~dispatch.simulator.Simulation`."""

    env: simpy.Environment
    horizon: float
    on_advance: Callable[[float, float], None] | None

    # -- the clock and scheduling (public) -------------------------------------------------------
    @property
    def now(self) -> float:
        """Simulated minutes since the start."""
        return self.env._now

    def schedule(
        self, at: float, fn: Callable[[Any], None], value: Any = None, *, first: bool = False
    ) -> None:
        """Call ``fn(value)`` at absolute simulated minute ``at`` (>= now).

        Events of one instant run in the order they were scheduled; ``first=True`` runs this
        one before every ordinary event of its instant (e.g. new dispatcher weights before
        that minute's arrivals, shift changes and batch epoch).
        """
        env = self.env
        if at < env._now:
            raise ValueError(f"cannot schedule at minute {at}: the clock is at {env._now}")
        ev = _Call(lambda _ev: fn(value), None)
        heappush(env._queue, (at, URGENT if first else NORMAL, next(env._eid), ev))

    def peek(self) -> float:
        """Time of the next scheduled event (``inf`` if none)."""
        return self.env.peek()

    # -- internal scheduling (engine only) -------------------------------------------------------
    def _at(self, delay: float, fn, payload: Any = None) -> None:
        """Call ``fn(event)`` after ``delay`` minutes; ``event._value`` is ``payload``."""
        env = self.env
        heappush(env._queue, (env._now + delay, NORMAL, next(env._eid), _Call(fn, payload)))

    # -- stepping ---------------------------------------------------------------------------------
    def start(self) -> None:  # implemented by Simulation
        raise NotImplementedError

    def advance_to(self, t: float, integrate: Callable[[float, float], None] | None = None) -> None:
        """Process every event strictly before ``t`` and set the clock to ``min(t, horizon)``.

        Events at exactly ``t`` (such as the batch epoch at ``t``) stay queued: they run at
        the next call, after an external decider (the batch environment's agent) has acted
        for that instant. ``integrate(t0, t1)`` is called for every stretch without events
        (piecewise-constant state such as the holding cost).
        """
        self.start()
        env = self.env
        t = min(t, self.horizon)
        while True:
            nxt = env.peek()
            if nxt >= t:
                break
            if integrate is not None:
                integrate(env._now, nxt)
            env.step()
        if integrate is not None:
            integrate(env._now, t)
        if env._now < t:
            env._now = t

    def next_decision(self) -> tuple[Reviewer, list[int]] | None:
        """Run until a free reviewer needs a decision; ``None`` when the horizon is reached.

        Only for policies with ``defer = True``: the caller answers with :meth:`decide`.
        Reviewers whose options vanished while they waited (another reviewer took the last
        task) are parked idle without asking. ``on_advance(now, t_next)`` is called before
        simulated time moves on from ``now`` to the next event at ``t_next`` (or to the
        horizon).
        """
        self.start()
        env = self.env
        queue = env._queue
        horizon = self.horizon
        advance = self.on_advance
        pending = self.pending
        while True:
            while pending:
                r = pending[0]
                cands = self.candidates(r, env._now)
                if cands:
                    return r, cands
                pending.popleft()
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
