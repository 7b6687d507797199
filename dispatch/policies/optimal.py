"""The ``optimal`` policy: replays the policy table of ``dispatch optimum`` in the simulator.

The table gives, for each state (waiting tasks per queue, what each reviewer group is busy
on), the joint decision of the MDP: how many idle reviewers of each group start on each
queue. The MDP decides after *every* state change, while a pull policy is only asked when a
task arrives in a bucket an idle reviewer can take or a reviewer frees up. So this is a batch
policy with ``on_demand``: the simulator calls :meth:`Optimal.assign` at every arrival that
an idle reviewer could take and at every completion (including routed follow-ups, which are
enqueued before the completing reviewer is released, so one call sees both), and the policy
answers with the table's decision for the current state.

The events that do *not* trigger a call are arrivals to a queue no idle reviewer is
eligible for, and abandonments. After such an event the table must still say "do nothing",
or the simulator would miss a decision. That is always so for a work-conserving table (an
idle reviewer there has no eligible work, before and after), and :func:`missed_decisions`
checks it for any table at bind time (a warning names the count when it is not zero).

Waiting counts beyond the buffer of the study's previous step are clipped to it
(:attr:`OptimumResult.trusted`): next to a full buffer the truncated MDP may idle on purpose,
because arrivals to a full queue are lost, which would starve work on unbounded queues.
Engine state is read in one place, :func:`engine_state`.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dispatch.errors import ConfigError
from dispatch.policies.base import Policy
from dispatch.policies.registry import register

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.optimum.result import OptimumResult
    from dispatch.simulator import Simulation

_CACHE: dict[tuple[str, bool], OptimumResult] = {}


def engine_state(sim: Simulation) -> tuple[list[int], list[tuple[int, int]]]:
    """Waiting tasks per bucket and ``(group index, bucket)`` of every busy reviewer."""
    waiting = [b.n for b in sim.buckets]
    busy = [
        (r.group.index, r.current_bucket) for r in sim.reviewers if r.current_bucket is not None
    ]
    return waiting, busy


class OptimalParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    table: str | None = None
    """Policy table from `dispatch optimum --out DIR` (DIR/policy.npz); default: solve now
    (small scenarios only; cached per network in this process)."""
    work_conserving: bool = False
    """When solving now: restrict to work-conserving decisions."""
    max_states: int = Field(default=500_000, gt=0)
    """When solving now: refuse a truncated space larger than this."""
    time_limit: float = Field(default=120.0, gt=0)
    """When solving now: CPU seconds for the truncation study."""


@register
class Optimal(Policy):
    name = "optimal"
    summary = (
        "The exact optimum of a small exponential network (dispatch optimum): replays the "
        "solved policy table, deciding after every arrival and completion (batch, on demand)."
    )
    Params = OptimalParams
    mode = "batch"
    on_demand = True
    batch_interval = math.inf  # one epoch at time 0; every other call is on demand

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        from dispatch.optimum.network import network_digest, network_from_scenario

        net = network_from_scenario(sim.scenario)
        digest = network_digest(net)
        res = self._table(sim, digest)
        if res.digest != digest:
            raise ConfigError(
                f"the table was solved for another network ({res.scenario}, {res.digest}), "
                f"not this scenario's ({digest}); solve it with dispatch optimum",
                field="policy optimal: table",
            )
        self.result = res
        self._queue_of = {b: q for q, b in enumerate(res.queue_buckets)}
        self._group_of = {g["name"]: i for i, g in enumerate(res.groups)}
        self._sim_group = [self._group_of.get(g.name, -1) for g in sim.groups]
        self._pos = [{q: j for j, q in enumerate(g["eligible"])} for g in res.groups]
        n_missed = missed_decisions(res, margin=2)
        if n_missed:
            warnings.warn(
                f"policy optimal: in {n_missed} states the table acts after an event the "
                "simulator does not stop for (an arrival no idle reviewer may take, an "
                "abandonment); the simulated cost may exceed the optimum",
                stacklevel=2,
            )

    def _table(self, sim, digest: str) -> OptimumResult:
        from dispatch.optimum.result import OptimumResult

        p = self.params
        if p.table is not None:
            path = Path(p.table)
            if path.is_dir():
                path = path / ("policy_wc.npz" if p.work_conserving else "policy.npz")
            return OptimumResult.load(path)
        key = (digest, p.work_conserving)
        if key not in _CACHE:
            from dispatch.optimum import solve_optimum

            _CACHE[key] = solve_optimum(
                sim.scenario,
                work_conserving=p.work_conserving,
                max_states=p.max_states,
                time_limit=p.time_limit,
            )
        return _CACHE[key]

    def current_state(self) -> tuple[list[int], list[list[int]]]:
        """The table's view of the engine: waiting per queue, busy per group and queue."""
        res = self.result
        waiting, busy = engine_state(self.sim)
        w = [waiting[b] for b in res.queue_buckets]
        counts = [[0] * len(g["eligible"]) for g in res.groups]
        for gi, b in busy:
            g = self._sim_group[gi]
            counts[g][self._pos[g][self._queue_of[b]]] += 1
        return w, counts

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        res = self.result
        waiting, busy = self.current_state()
        decision = res.decision(waiting, busy)
        free: list[list[Reviewer]] = [[] for _ in res.groups]
        for r in reviewers:
            g = self._sim_group[r.group.index]
            if g >= 0:
                free[g].append(r)
        out = []
        for g, starts in enumerate(decision):
            for j, k in enumerate(starts):
                bucket = res.queue_buckets[res.groups[g]["eligible"][j]]
                for _ in range(k):
                    out.append((free[g].pop(), bucket))
        return out


def missed_decisions(res: OptimumResult, margin: int = 0) -> int:
    """States where the table does nothing, an event the simulator does not stop for
    happens, and the table would then act (0 means the simulator realises it exactly).

    ``margin`` > 0 counts only states whose queues are all at least ``margin`` below their
    buffer: near a full buffer the truncated MDP may idle a reviewer on purpose (arrivals to a
    full queue are lost, which is cheap), an artefact of the truncation in states that have
    next to no probability.
    """
    pol = res.policy
    Q = len(res.buffers)
    full = slice(None)
    inner = tuple(slice(0, b + 1 - margin) for b in res.buffers)
    missed = 0
    for si, state in enumerate(res.server_states):
        idle_ok = set()
        for g, busy in zip(res.groups, state, strict=True):
            if g["count"] - sum(busy) > 0:
                idle_ok.update(g["eligible"])
        p = pol[..., si]
        for q in range(Q):
            for step, on in (
                (1, res.arrival[q] > 0 and q not in idle_ok),
                (-1, res.abandon[q] > 0),
            ):
                if not on:
                    continue
                src, dst = [full] * Q, [full] * Q
                src[q], dst[q] = (
                    (slice(0, -1), slice(1, None))
                    if step > 0
                    else (
                        slice(1, None),
                        slice(0, -1),
                    )
                )
                hit = np.zeros(p.shape, dtype=bool)
                hit[tuple(src)] = (p[tuple(src)] == 0) & (p[tuple(dst)] != 0)
                missed += int(hit[inner].sum())
    return missed
