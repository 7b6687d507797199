"""The one interface every dispatcher implements: rules, solvers, learned and exported models.

The simulator owns the state; a policy only decides. It is asked in two ways:

* **pull** — a reviewer is free: :meth:`Policy.select` gets the reviewer and the buckets it
  may take work from right now (eligible for its classes and markets, non-empty, and within
  its wellbeing cap) and returns one of them, or ``None`` to leave the reviewer idle.
* **batch** — when ``mode == PolicyMode.BATCH``, every ``batch_interval`` minutes
  :meth:`Policy.assign` gets all free reviewers at once and returns (reviewer, bucket)
  pairs; the simulator checks every pair and starts the oldest task of each chosen bucket.

Buckets are queues of class x market x risk band; within a bucket tasks are served oldest
first. Policies read the simulation through ``self.sim`` (a :class:`~dispatch.simulator.Simulation`)
with its public API only (``buckets``, ``groups``, ``layout``, ``now``, ``candidates``,
``free_count``, ``schedule``, ...; never the engine's private state) and draw randomness
only from ``self.rng``, which the simulator derives from the run seed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict

if TYPE_CHECKING:
    from dispatch.model import Group, Reviewer
    from dispatch.simulator import Simulation


def with_work(sim: Simulation, reviewers: list[Reviewer]) -> list[Reviewer]:
    """The reviewers whose group has a waiting task in some eligible bucket.

    Most on-demand epochs find the free reviewers with nothing they could take (an arrival
    for a busy team): batch policies filter by group before building anything.
    """
    buckets = sim.buckets
    has_work: dict[int, bool] = {}
    keep = []
    for r in reviewers:
        g = r.group
        ok = has_work.get(g.index)
        if ok is None:
            ok = has_work[g.index] = any(buckets[b].n for b in g.eligible)
        if ok:
            keep.append(r)
    return keep


class PolicyMode(StrEnum):
    """How the simulator asks a policy (a ``str``: ``PolicyMode.BATCH == "batch"``)."""

    PULL = "pull"
    """A free reviewer asks: :meth:`Policy.select`."""
    BATCH = "batch"
    """All free reviewers at once, every epoch: :meth:`Policy.assign`."""


class NoParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Policy:
    """Base class of dispatchers. Subclasses set ``name``, ``summary`` and ``Params``."""

    name: ClassVar[str] = "base"
    summary: ClassVar[str] = ""
    Params: ClassVar[type[BaseModel]] = NoParams
    mode: PolicyMode = PolicyMode.PULL
    batch_interval: float = 1.0
    on_demand: bool = False
    """Batch mode: also solve as soon as a task arrives or a reviewer frees up."""
    defer: bool = False
    """Pull mode: park decisions for an external decider (see Simulation.next_decision)."""

    def __init__(self, **params: Any):
        self.params = self.Params(**params)
        self.sim: Simulation | None = None
        self.rng: np.random.Generator | None = None

    def bind(self, sim: Simulation, rng: np.random.Generator) -> None:
        """Called once before a run: the simulation to read and the policy's own stream."""
        self.sim = sim
        self.rng = rng

    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        """Pull decision: a bucket index from ``candidates`` or ``None`` (stay idle)."""
        raise NotImplementedError

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        """Batch decision. Default: ask :meth:`select` for each reviewer in turn."""
        sim = self.sim
        assert sim is not None
        out: list[tuple[Reviewer, int]] = []
        taken: dict[int, int] = {}
        buckets = sim.buckets
        for r in reviewers:
            capped = r.group.cap is not None and r.at_cap(now)
            # A reviewer at its wellbeing cap gets a bucket someone else also draws from this
            # epoch only if no severe task waits there (it would not know which task it gets).
            cands = [
                b
                for b in sim.candidates(r, now)
                if buckets[b].n - taken.get(b, 0) > 0
                and not (capped and taken.get(b) and buckets[b].n_severe > 0)
            ]
            if not cands:
                continue
            b = self.select(r, cands, now)
            if b is not None:
                out.append((r, b))
                taken[b] = taken.get(b, 0) + 1
        return out

    def group_order(self, bucket: int, groups: list[Group]) -> list[Group]:
        """Which idle reviewer groups are offered a newly arrived task first.

        Default: the scenario's order, precomputed by the simulator (specialists, i.e. the
        groups eligible for the fewest buckets, first, keeping flexible reviewers free).
        """
        return groups

    def describe(self) -> str:
        params = self.params.model_dump()
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in params.items())})"
