"""Builds observation vectors from a running simulation (see :mod:`dispatch.observation`)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dispatch.layout import Layout
from dispatch.model import WAITING
from dispatch.observation.features import (
    LOG_BACKLOG,
    LOG_HARM,
    LOG_QUEUE,
    MINUTES_PER_DAY,
    SPEED_CAP,
    features,
)
from dispatch.policies.base import PolicyMode

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.simulator import Simulation

__all__ = ["ObservationBuilder"]


class ObservationBuilder:
    """Builds the observation vector of a running :class:`~dispatch.simulator.Simulation`.

    Built from a :class:`~dispatch.layout.Layout` (names, bounds and sizes are known without
    a simulation) and bound to a simulation with :meth:`bind` before :meth:`pull`,
    :meth:`batch` or :meth:`empty` are called. Passing a simulation instead of a layout
    does both. ``mode`` is ``PolicyMode.PULL`` (one free reviewer decides; :meth:`pull`) or
    ``PolicyMode.BATCH`` (every free reviewer is assigned at once; :meth:`batch`). Each
    call returns a fresh float32 array of length :attr:`size`, within ``[low, high]``.
    """

    def __init__(self, layout: Layout | Simulation, mode: PolicyMode | str = PolicyMode.PULL):
        if mode not in tuple(PolicyMode):
            raise ValueError(f"mode must be 'pull' or 'batch', got {mode!r}")
        sim = None
        if not isinstance(layout, Layout):
            sim, layout = layout, layout.layout
        self.layout = layout
        self.mode = mode = PolicyMode(mode)
        self.n_buckets = B = layout.n_buckets
        self._static_buckets(layout)
        self._reviewers = layout.headcount
        self._horizon = float(layout.scenario.horizon)
        feats = features(mode, per_bucket=True)
        glob = features(mode, per_bucket=False)
        self.size = len(feats) * B + len(glob)
        self._g0 = len(feats) * B
        self._names = [f"{f.name}[{b.name}]" for f in feats for b in layout.buckets]
        self._names += [f.name for f in glob]
        self.low = np.concatenate([np.full(B, f.low) for f in feats] + [[f.low for f in glob]])
        self.high = np.concatenate([np.full(B, f.high) for f in feats] + [[f.high for f in glob]])
        self.low = self.low.astype(np.float32)
        self.high = self.high.astype(np.float32)
        self._static_groups(layout)
        self._allocate(B, len(layout.groups))
        self.sim: Simulation | None = None
        if sim is not None:
            self.bind(sim)

    def bind(self, sim: Simulation) -> ObservationBuilder:
        """Read the state of ``sim`` (a run of this builder's layout) from now on."""
        if [b.name for b in sim.buckets] != self.layout.bucket_names:
            raise ValueError("the simulation's buckets differ from the builder's layout")
        self.sim = sim
        self._groups = sim.groups
        return self

    def _static_buckets(self, layout: Layout) -> None:
        """Per-bucket constants: 1 / SLA, handling / patience, the class prior risk."""
        classes = layout.scenario.classes
        b_cls = layout.b_cls
        self._inv_sla = np.array([1.0 / classes[c].sla for c in b_cls])
        mean_h = np.array([c.handling.expected for c in classes])
        pat = np.array(
            [c.patience.expected if c.patience is not None else math.inf for c in classes]
        )
        hp = np.where(np.isfinite(pat), mean_h / np.where(np.isfinite(pat), pat, 1.0), 0.0)
        self._hp = hp[b_cls]
        self._has_patience = bool(np.any(self._hp > 0))
        # Prior mean risk of each bucket's class, clipped into the bucket's risk band.
        bands = [0.0, *layout.bands, 1.0]
        prior = []
        for b in layout.buckets:
            h = classes[b.cls].harm
            p = h.risk.expected if h.risk is not None else h.prevalence
            prior.append(min(max(p, bands[b.band]), bands[b.band + 1]))
        self._prior = np.array(prior)

    def _static_groups(self, layout: Layout) -> None:
        """Per-group constants: eligibility, capped speed and accuracy slopes per bucket."""
        b_cls = layout.b_cls
        G, B = len(layout.groups), layout.n_buckets
        elig = np.zeros((G, B))
        speed = np.zeros((G, B))
        sens = np.zeros((G, B))
        spec = np.zeros((G, B))
        for g in layout.groups:
            elig[g.index] = g.eligible_mask
            sp = np.array(g.speed)[b_cls]
            speed[g.index] = np.minimum(sp, SPEED_CAP) * g.eligible_mask
            sens[g.index] = np.array(g.sensitivity)[b_cls]
            spec[g.index] = np.array(g.specificity)[b_cls]
        self._elig_speed = np.concatenate([elig, speed], axis=1)  # (G, 2B): eligible, speed
        self._acc_slope = elig * (sens - spec)
        self._acc_icpt = elig * spec
        self._elig = elig
        self._fatigue_scale = [
            1.0 / g.fatigue.max_drop if g.fatigue is not None and g.fatigue.max_drop > 0 else 0.0
            for g in layout.groups
        ]
        self._log_reviewers = 1.0 / math.log1p(max(self._reviewers, 1))

    def _allocate(self, B: int, G: int) -> None:
        """Preallocated work arrays and views into the float64 buffer."""
        self._buf = np.zeros(self.size)
        buf = self._buf
        self._blk3 = buf[: 3 * B].reshape(3, B)
        self._queue_len = buf[3 * B : 4 * B]
        self._age = buf[4 * B : 5 * B]
        self._expiry = buf[5 * B : 6 * B]
        self._mean_risk = buf[:B]
        if self.mode == PolicyMode.PULL:
            self._es = buf[6 * B : 8 * B]
            self._acc = buf[8 * B : 9 * B]
        else:
            self._free = buf[6 * B : 7 * B]
        self._logq = buf[2 * B : 4 * B]
        self._logq_scale = np.concatenate([np.full(B, 1.0 / LOG_HARM), np.full(B, 1.0 / LOG_QUEUE)])
        # Raw per-bucket state, one row each: n, sum_risk, n_severe, sum_harm_rate, oldest
        # arrival; _X0 is the all-empty state.
        self._X0 = np.zeros((5, B))
        self._X0[1] = self._prior
        self._X0[4] = math.inf
        self._X = self._X0.copy()
        self._low64 = self.low.astype(np.float64)
        self._high64 = self.high.astype(np.float64)
        self._inv = np.empty(B)
        self._tmp = np.empty(B)
        self._idle_counts = np.zeros(G)

    # -- introspection ------------------------------------------------------------------------
    def names(self) -> list[str]:
        """One name per observation index: ``feature[bucket]`` blocks, then globals."""
        return list(self._names)

    # -- building -----------------------------------------------------------------------------
    def _buckets(self, now: float) -> float:
        """Fill the per-bucket blocks 0-5; returns the total backlog.

        One Python pass gathers the running counters and oldest arrival of the non-empty
        buckets into a copy of a precomputed all-empty state (empty buckets: risk = the class
        prior, oldest arrival = +inf so the age comes out -inf and is clipped to 0); the
        rest is a dozen numpy operations on preallocated arrays.
        """
        idx: list[int] = []
        vals: list[float] = []
        ext = vals.extend
        total = 0
        for i, b in enumerate(self.sim.buckets):
            n = b.n
            if n:
                total += n
                t = b.tasks[0]
                if t.state != WAITING:
                    t = b.head()
                idx.append(i)
                ext((n, b.sum_risk, b.n_severe, b.sum_harm_rate, t.arrival))
        X = self._X
        np.copyto(X, self._X0)
        if idx:
            X[:, idx] = np.array(vals).reshape(len(idx), 5).T
        n = X[0]
        inv = self._inv
        np.maximum(n, 1.0, out=inv)
        np.divide(1.0, inv, out=inv)
        np.multiply(X[1:4], inv, out=self._blk3)  # mean risk, severe share, mean harm rate
        lq = self._logq
        np.copyto(self._queue_len, n)
        np.log1p(lq, out=lq)  # harm rate and queue length blocks at once
        lq *= self._logq_scale
        age = self._age
        np.subtract(now, X[4], out=age)
        age *= self._inv_sla
        if self._has_patience:
            e = self._expiry
            np.multiply(n, self._hp, out=e)
            tmp = self._tmp
            np.add(e, 1.0, out=tmp)
            np.divide(e, tmp, out=e)
        return float(total)

    def _finish(self) -> np.ndarray:
        return _clip32(self._buf, self._low64, self._high64)

    def pull(self, reviewer: Reviewer) -> np.ndarray:
        """Observation for a free ``reviewer`` choosing its next bucket."""
        sim = self.sim
        now = sim.now
        total = self._buckets(now)
        g = reviewer.group
        gi = g.index
        self._es[:] = self._elig_speed[gi]
        # Expected accuracy at the bucket's mean risk (the class prior when empty).
        acc = self._acc
        np.multiply(self._mean_risk, self._acc_slope[gi], out=acc)
        acc += self._acc_icpt[gi]
        fat = 0.0
        if g.fatigue is not None:
            fat = reviewer.current_fatigue(now)
            if fat > 0.0:
                acc -= fat * self._elig[gi]
        # Free reviewers, this one included: while an environment decides, the asking
        # reviewer is pending (``sim.pending_count``); inside a direct run it is in neither count.
        free = (sim.pending_count or 1) + sim.free_count()
        ang = (now % MINUTES_PER_DAY) * (2.0 * math.pi / MINUTES_PER_DAY)
        self._buf[self._g0 :] = (
            math.sin(ang),
            math.cos(ang),
            now / self._horizon,
            fat * self._fatigue_scale[gi],
            1.0 if g.cap is not None and reviewer.at_cap(now) else 0.0,
            free / self._reviewers,
            math.log1p(total) / LOG_BACKLOG,
        )
        return self._finish()

    def empty(self) -> np.ndarray:
        """Observation with no reviewer (used once an episode is over): per-bucket state
        and globals, reviewer blocks zero."""
        sim = self.sim
        now = sim.now
        total = self._buckets(now)
        if self.mode == PolicyMode.PULL:
            self._es[:] = 0.0
            self._acc[:] = 0.0
        else:
            self._free[:] = 0.0
        ang = (now % MINUTES_PER_DAY) * (2.0 * math.pi / MINUTES_PER_DAY)
        glob = [math.sin(ang), math.cos(ang), min(now / self._horizon, 1.0)]
        if self.mode == PolicyMode.PULL:
            glob += [0.0, 0.0]
        glob += [0.0, math.log1p(total) / LOG_BACKLOG]
        self._buf[self._g0 :] = glob
        return self._finish()

    def batch(self) -> np.ndarray:
        """Observation for a batch epoch: per-bucket state and free eligible reviewers."""
        sim = self.sim
        now = sim.now
        total = self._buckets(now)
        counts = self._idle_counts
        free = 0
        for g in self._groups:
            k = sim.free_count(g)
            counts[g.index] = k
            free += k
        f = self._free
        np.dot(counts, self._elig, out=f)
        np.log1p(f, out=f)
        f *= self._log_reviewers
        ang = (now % MINUTES_PER_DAY) * (2.0 * math.pi / MINUTES_PER_DAY)
        self._buf[self._g0 :] = (
            math.sin(ang),
            math.cos(ang),
            min(now / self._horizon, 1.0),
            free / max(self._reviewers, 1),
            math.log1p(total) / LOG_BACKLOG,
        )
        return self._finish()


try:  # the clip ufunc itself: half the overhead of np.clip's Python wrapper
    from numpy._core.umath import clip as _uclip

    def _clip32(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return _uclip(x, low, high, dtype=np.float32)

except ImportError:  # pragma: no cover - other numpy layouts

    def _clip32(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> np.ndarray:
        return np.clip(x, low, high).astype(np.float32)
