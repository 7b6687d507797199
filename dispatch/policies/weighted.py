"""Hybrid dispatchers: a learned model's per-bucket weights tilt a batch assignment.

An agent (the batch environment's, or a trained ``learned`` / ``onnx`` policy) outputs one
weight in [-1, 1] per bucket every few minutes; between its decisions an assigner turns the
weights into (reviewer, bucket) pairs at every batch epoch:

* :class:`WeightedAssigner` (``assigner: weighted``): multipliers ``exp(2 w)`` on an
  accuracy-weighted least-slack value, solved as a work-conserving min-cost flow;
* :class:`FlowAssigner` (``assigner: flow``): the ``flow`` policy with ``weight_scale x w``
  added to every eligible column of the bucket, so all-zero weights *are* ``flow``.

:func:`make_assigner` and :func:`assigner_timing` build either from the environment's
keyword arguments (recorded in a run's ``env.json``); :class:`WeightedBatchPolicy` is the
batch policy the environment runs.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.errors import ConfigError
from dispatch.observation import AGE_CAP
from dispatch.policies.base import Policy, PolicyMode, with_work
from dispatch.policies.batch.flow import FlowPolicy
from dispatch.solvers import SCALE, AssignmentProblem, solve_min_cost_flow

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.simulator import Simulation

__all__ = [
    "ASSIGNERS",
    "FlowAssigner",
    "WeightedAssigner",
    "WeightedBatchPolicy",
    "assigner_timing",
    "make_assigner",
    "weights_to_multipliers",
]

WEIGHT_GAIN = 2.0


def weights_to_multipliers(weights: np.ndarray) -> np.ndarray:
    """Map agent actions in [-1, 1] to value multipliers ``exp(2 w)`` in [e^-2, e^2]."""
    w = np.clip(np.asarray(weights, dtype=np.float64), -1.0, 1.0)
    return np.exp(WEIGHT_GAIN * w)


class WeightedAssigner:
    """Batch assignment of free reviewers to buckets with per-bucket priority multipliers.

    The value of giving a task of bucket ``b`` to a reviewer of group ``g`` is

        multiplier[b] x accuracy[g, b] x (1 + min(oldest age / SLA, 5))

    where ``accuracy`` is the group's expected accuracy at the bucket's mean risk (no
    fatigue), so with all weights 0 this is an accuracy-weighted least-SLA-slack rule, and
    the agent tilts it bucket by bucket. Reviewers are aggregated into rows by (group, at
    wellbeing cap); reviewers at their cap may only take buckets holding no severe task
    (when a single reviewer is free, the exact rule applies instead: any bucket whose oldest
    task is not severe, and the best bucket is picked directly, without a solver).
    The assignment is work-conserving (``assign_all``): as many reviewers as possible get
    work, then the total value is maximised, by :func:`dispatch.solvers.solve_min_cost_flow`.
    If the flow fails, a greedy assignment (each reviewer in turn takes its best remaining
    bucket) is used instead.
    """

    def __init__(self, sim: Simulation):
        self.sim = sim
        lay = sim.layout
        self.n_buckets = B = lay.n_buckets
        b_cls = lay.b_cls
        self._inv_sla = 1.0 / lay.sla[b_cls]
        self._elig = lay.group_mask.copy()
        self._sens = lay.sensitivity[:, b_cls].reshape(len(lay.groups), B)
        self._spec = lay.specificity[:, b_cls].reshape(len(lay.groups), B)
        self._sens_l = self._sens.tolist()
        self._spec_l = self._spec.tolist()
        self._inv_sla_l = self._inv_sla.tolist()
        self.multipliers: list[float] = [1.0] * B
        self.solver_calls = 0
        self.greedy_calls = 0

    def set_weights(self, weights: np.ndarray) -> None:
        self.multipliers = weights_to_multipliers(weights).tolist()

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        if not reviewers:
            return []
        if len(reviewers) == 1:
            return self._assign_one(reviewers[0], now)
        rows = self._rows(reviewers, now)
        if not rows:
            return []
        if len(rows) == 1 and len(next(iter(rows.values()))) == 1:
            return self._assign_one(next(iter(rows.values()))[0], now)
        n, risk, age, n_sev = self._bucket_state(now)
        urgency = 1.0 + np.minimum(age * self._inv_sla, AGE_CAP)
        scale = np.asarray(self.multipliers) * urgency
        keys = list(rows)
        gidx = np.array([k[0] for k in keys])
        capped = np.array([k[1] for k in keys])
        eligible = self._elig[gidx] & (n > 0)
        if capped.any():
            eligible[capped] &= n_sev == 0
        if not eligible.any():
            return []
        value = (risk * self._sens[gidx] + (1.0 - risk) * self._spec[gidx]) * scale
        supply = np.array([len(rows[k]) for k in keys], dtype=np.int64)
        counts = self._solve(value, eligible, supply, n.astype(np.int64))
        out: list[tuple[Reviewer, int]] = []
        for ri, key in enumerate(keys):
            members = rows[key]
            j = 0
            for bi in np.flatnonzero(counts[ri]):
                for _ in range(int(counts[ri, bi])):
                    out.append((members[j], int(bi)))
                    j += 1
        return out

    def _rows(
        self, reviewers: list[Reviewer], now: float
    ) -> dict[tuple[int, bool], list[Reviewer]]:
        """Rows: (group, at cap) in first-seen order, members in the order given; groups
        with no work in any eligible bucket are dropped before anything else is computed."""
        rows: dict[tuple[int, bool], list[Reviewer]] = {}
        for r in with_work(self.sim, reviewers):
            g = r.group
            key = (g.index, g.cap is not None and r.at_cap(now))
            rows.setdefault(key, []).append(r)
        return rows

    def _bucket_state(self, now: float) -> np.ndarray:
        """``(4, B)``: waiting tasks, mean risk, age of the oldest task, severe tasks."""
        raw: list[float] = []
        ext = raw.extend
        for b in self.sim.buckets:
            k = b.n
            if k:
                ext((k, b.sum_risk / k, now - b.head().arrival, b.n_severe))
            else:
                ext((0, 0.0, 0.0, 0))
        B = self.n_buckets
        return np.fromiter(raw, dtype=np.float64, count=4 * B).reshape(B, 4).T

    def _solve(
        self, value: np.ndarray, eligible: np.ndarray, supply: np.ndarray, capacity: np.ndarray
    ) -> np.ndarray:
        """Counts per (row, bucket): greedy for one row (optimal), else the min-cost flow."""
        if len(supply) > 1:
            res = solve_min_cost_flow(
                AssignmentProblem(value, eligible, supply, capacity, assign_all=True), scale=SCALE
            )
            if res.ok:
                self.solver_calls += 1
                return res.counts
            self.greedy_calls += 1  # the flow failed
        return _greedy(value, eligible, supply, capacity)

    def _assign_one(self, r: Reviewer, now: float) -> list[tuple[Reviewer, int]]:
        """One free reviewer (the common on-demand case): its best candidate bucket."""
        sim = self.sim
        cands = sim.candidates(r, now)
        if not cands:
            return []
        if len(cands) > 1:
            buckets = sim.buckets
            gi = r.group.index
            sens = self._sens_l[gi]
            spec = self._spec_l[gi]
            inv_sla = self._inv_sla_l
            mult = self.multipliers
            best = -1.0
            for bi in cands:
                b = buckets[bi]
                p = b.sum_risk / b.n
                u = (now - b.head().arrival) * inv_sla[bi]
                v = mult[bi] * (p * sens[bi] + (1.0 - p) * spec[bi]) * (1.0 + min(u, AGE_CAP))
                if v > best:
                    best, choice = v, bi
        else:
            choice = cands[0]
        return [(r, choice)]


def _greedy(
    value: np.ndarray, eligible: np.ndarray, supply: np.ndarray, capacity: np.ndarray
) -> np.ndarray:
    counts = np.zeros(value.shape, dtype=np.int64)
    cap = capacity.copy()
    v = np.where(eligible, value, -np.inf)
    for r in range(value.shape[0]):
        for _ in range(int(supply[r])):
            row = np.where(cap > 0, v[r], -np.inf)
            b = int(np.argmax(row))
            if not np.isfinite(row[b]):
                break
            counts[r, b] += 1
            cap[b] -= 1
    return counts


ASSIGNERS = ("weighted", "flow")
"""Batch assigners the agent's per-bucket weights can tilt (env kwarg ``assigner``)."""


class FlowAssigner:
    """The ``flow`` policy's assignment with the agent's weights as per-bucket bonuses.

    Each epoch is solved exactly as :class:`~dispatch.policies.batch.flow.FlowPolicy`
    with parameters ``params`` does it (value model of :mod:`dispatch.policies.batch.value`,
    bucketed min-cost flow, oldest-first realisation), except that the value of every
    eligible (row, column) gets ``scale x w[bucket]`` added: with all weights 0 the
    decisions are the ``flow`` policy's. Additive rather than multiplicative because most
    values are negative (the expected wrong-decision cost dominates routine work), so a
    multiplier would invert the meaning of a weight; ``scale`` is in objective units (1 = one
    SLA breach), and the typical spread of values within a row is of that order.

    The simulation's epochs follow the flow parameters (``epoch.interval``, default 1 minute,
    and ``epoch.on_demand``), independently of how often the weights change.
    """

    def __init__(self, sim, params: dict[str, Any] | None = None, scale: float = 1.0):
        if not (scale > 0 and math.isfinite(scale)):
            raise ConfigError(f"must be a positive number, got {scale}", field="weight_scale")
        bonus = np.zeros(len(sim.buckets))
        self._bonus = bonus
        self.scale = float(scale)

        class _TiltedFlow(FlowPolicy):  # not registered: only used here
            def build(self, reviewers, now):
                ep = super().build(reviewers, now)
                if ep.value.size and bonus.any():
                    ep.value = np.where(ep.eligible, ep.value + bonus[ep.col_bucket], 0.0)
                return ep

        self.policy = _TiltedFlow(**(params or {}))
        self.policy.bind(sim, sim.streams.policy)
        self.greedy_calls = 0

    @property
    def solver_calls(self) -> int:
        return int(self.policy.stats.get("solver_calls", 0))

    def set_weights(self, weights: np.ndarray) -> None:
        w = np.clip(np.asarray(weights, dtype=np.float64).reshape(self._bonus.shape), -1.0, 1.0)
        self._bonus[:] = self.scale * w

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        return self.policy.assign(reviewers, now)


def assigner_timing(
    kind: str, params: dict[str, Any] | None, interval: float, on_demand: bool
) -> tuple[float, bool]:
    """(simulation epoch interval, on_demand) of a batch assigner: the agent's own for
    ``weighted``, the flow policy's parameters for ``flow``."""
    if kind == "weighted":
        return float(interval), bool(on_demand)
    if kind == "flow":
        p = FlowPolicy.Params(**(params or {}))
        return float(p.epoch.interval), bool(p.epoch.on_demand)
    raise ConfigError(f"must be one of {ASSIGNERS}, got {kind!r}", field="assigner")


def make_assigner(
    sim, kind: str = "weighted", params: dict[str, Any] | None = None, scale: float = 1.0
):
    """The batch assigner ``kind`` for ``sim`` (``set_weights`` / ``assign``)."""
    if kind == "weighted":
        return WeightedAssigner(sim)
    if kind == "flow":
        return FlowAssigner(sim, params, scale)
    raise ConfigError(f"must be one of {ASSIGNERS}, got {kind!r}", field="assigner")


class WeightedBatchPolicy(Policy):
    """Batch policy whose assignment values are tilted by per-bucket weights.

    ``assign`` uses the assigner ``assigner`` (:class:`WeightedAssigner` or
    :class:`FlowAssigner`) with the weights last passed to :meth:`set_weights` (all 0 = the
    base rule or the ``flow`` policy). Used by :class:`~envs.batch_dispatch.BatchDispatchEnv`;
    the ``learned`` and ``onnx`` policies build the same assigner with :func:`make_assigner`.
    """

    name = "weighted_batch"
    summary = "Batch assignment (min-cost flow) with per-bucket priority multipliers."
    mode = PolicyMode.BATCH

    def __init__(
        self,
        interval: float = 5.0,
        on_demand: bool = True,
        assigner: str = "weighted",
        assigner_params: dict[str, Any] | None = None,
        weight_scale: float = 1.0,
    ):
        super().__init__()
        if not interval > 0:
            raise ConfigError(f"must be > 0, got {interval}", field="interval")
        self.kind = assigner
        self.assigner_params = assigner_params
        self.weight_scale = float(weight_scale)
        # The simulation's epochs: the agent's interval for ``weighted``, the flow
        # policy's own timing for ``flow`` (weights still change every ``interval``).
        self.batch_interval, self.on_demand = assigner_timing(
            assigner, assigner_params, interval, on_demand
        )
        self.assigner: WeightedAssigner | FlowAssigner | None = None

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        self.assigner = make_assigner(sim, self.kind, self.assigner_params, self.weight_scale)

    def set_weights(self, weights: np.ndarray) -> None:
        self.assigner.set_weights(weights)

    def assign(self, reviewers, now):
        return self.assigner.assign(reviewers, now)

    def describe(self) -> str:
        extra = "" if self.kind == "weighted" else f", assigner={self.kind}"
        return f"{self.name}(interval={self.batch_interval}, on_demand={self.on_demand}{extra})"
