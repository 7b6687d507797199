"""What a learned dispatcher sees and how its actions become decisions.

Shared by the Gymnasium environments (:mod:`envs.audit_dispatch`, :mod:`envs.batch_dispatch`)
and by the ``learned`` policy (:mod:`dispatch.policies.learned`), so a model trained in an
environment sees exactly the same numbers when it runs inside ``dispatch simulate`` or an
experiment. Pure numpy: importing this module never imports torch.

Observation layout (float32, feature-major): ``B`` = number of buckets. Per-bucket features
come first, each a block of ``B`` values in bucket order (:meth:`ObservationBuilder.names`),
then the global features.

===  ==================  ===========  ===========================================================
blk  name                range        definition
===  ==================  ===========  ===========================================================
0    mean_risk           [0, 1]       mean upstream risk score of the waiting tasks (the class's
                                      prior mean risk, clipped into the band, when empty)
1    severe_share        [0, 1]       share of waiting tasks that count against wellbeing caps
2    harm_rate           [0, 2]       log1p(mean risk x severity x reach per minute) / log1p(1e4)
3    queue_len           [0, 2]       log1p(waiting tasks) / log1p(1000)
4    oldest_age          [0, 5]       (now - arrival of the oldest waiting task) / class SLA
5    expiry_pressure     [0, 1]       x / (1 + x), x = waiting x mean handling / mean patience:
                                      expected expiries during one handling time (0 without
                                      patience)
pull mode (the free reviewer asking for work):
6    eligible            {0, 1}       the reviewer's group may take this bucket's class/market
7    speed               [0, 4]       the group's speed factor for the class (0 if ineligible)
8    accuracy            [0, 1]       eligible x (r sens + (1 - r) spec - fatigue), r = block 0
batch mode:
6    free_eligible       [0, 1]       log1p(free reviewers eligible for the bucket) /
                                      log1p(number of reviewers)
===  ==================  ===========  ===========================================================

Globals (pull): ``tod_sin``, ``tod_cos`` (time of day, minute 0 = midnight, period 1440),
``elapsed`` (now / horizon), ``fatigue`` (the reviewer's accuracy drop / its group's
``max_drop``), ``at_cap`` (1 if the reviewer reached its wellbeing cap: severe buckets are
masked), ``free_reviewers`` (free reviewers incl. this one / all reviewers), ``backlog``
(log1p(all waiting tasks) / log1p(1e4), clipped to [0, 2]). Globals (batch): the same
without ``fatigue`` and ``at_cap``.

Everything static (eligibility, speeds, SLAs, priors) is precomputed per bucket and per
group at construction; a step costs one pass over the buckets (their running counters and
the oldest task) plus about fifteen small numpy operations on preallocated arrays (about
10 us for the 42 buckets of ``ecommerce_day``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.model import WAITING

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.simulator import Simulation

__all__ = [
    "BUCKET_FEATURES",
    "layout_digest",
    "ObservationBuilder",
    "WeightedAssigner",
    "fifo_choice",
    "holding_cost_rates",
    "weights_to_multipliers",
]

LOG_QUEUE = math.log1p(1000.0)
LOG_HARM = math.log1p(1e4)
LOG_BACKLOG = math.log1p(1e4)
AGE_CAP = 5.0
SPEED_CAP = 4.0
MINUTES_PER_DAY = 1440.0

BUCKET_FEATURES = (
    "mean_risk",
    "severe_share",
    "harm_rate",
    "queue_len",
    "oldest_age",
    "expiry_pressure",
)
PULL_FEATURES = ("eligible", "speed", "accuracy")
BATCH_FEATURES = ("free_eligible",)
PULL_GLOBALS = ("tod_sin", "tod_cos", "elapsed", "fatigue", "at_cap", "free_reviewers", "backlog")
BATCH_GLOBALS = ("tod_sin", "tod_cos", "elapsed", "free_reviewers", "backlog")
_BUCKET_HIGH = (1.0, 1.0, 2.0, 2.0, AGE_CAP, 1.0)


class ObservationBuilder:
    """Builds the observation vector of a running :class:`~dispatch.simulator.Simulation`.

    ``mode`` is ``"pull"`` (one free reviewer decides; :meth:`pull`) or ``"batch"`` (every
    free reviewer is assigned at once; :meth:`batch`). Each call returns a fresh float32
    array of length :attr:`size`, within ``[low, high]``.
    """

    def __init__(self, sim: Simulation, mode: str = "pull"):
        if mode not in ("pull", "batch"):
            raise ValueError(f"mode must be 'pull' or 'batch', got {mode!r}")
        self.sim = sim
        self.mode = mode
        scen = sim.scenario
        buckets = sim.buckets
        self.n_buckets = B = len(buckets)
        classes = scen.classes
        b_cls = np.array([b.cls for b in buckets], dtype=np.int64)
        self._inv_sla = np.array([1.0 / classes[c].sla for c in b_cls])
        mean_h = np.array([c.handling.expected for c in classes])
        pat = np.array(
            [c.patience.expected if c.patience is not None else math.inf for c in classes]
        )
        hp = np.where(np.isfinite(pat), mean_h / np.where(np.isfinite(pat), pat, 1.0), 0.0)
        self._hp = hp[b_cls]
        self._has_patience = bool(np.any(self._hp > 0))
        # Prior mean risk of each bucket's class, clipped into the bucket's risk band.
        bands = [0.0, *scen.risk_bands, 1.0]
        prior = []
        for b in buckets:
            h = classes[b.cls].harm
            p = h.risk.expected if h.risk is not None else h.prevalence
            prior.append(min(max(p, bands[b.band]), bands[b.band + 1]))
        self._prior = np.array(prior)
        self._groups = sim.groups
        self._reviewers = len(sim.reviewers)
        self._horizon = float(sim.horizon)
        feats = BUCKET_FEATURES + (PULL_FEATURES if mode == "pull" else BATCH_FEATURES)
        glob = PULL_GLOBALS if mode == "pull" else BATCH_GLOBALS
        self.n_bucket_features = len(feats)
        self.size = len(feats) * B + len(glob)
        self._g0 = len(feats) * B
        names = [f"{f}[{b.name}]" for f in feats for b in buckets]
        self._names = names + list(glob)
        high = np.concatenate(
            [np.full(B, h) for h in _BUCKET_HIGH]
            + ([np.ones(B), np.full(B, SPEED_CAP), np.ones(B)] if mode == "pull" else [np.ones(B)])
            + [np.ones(len(glob))]
        )
        low = np.zeros(self.size)
        gi = self._g0
        low[gi : gi + 2] = -1.0  # tod_sin, tod_cos
        high[self.size - 1] = 2.0  # backlog
        self.low = low.astype(np.float32)
        self.high = high.astype(np.float32)
        # Static per-group parts.
        G = len(sim.groups)
        elig = np.zeros((G, B))
        speed = np.zeros((G, B))
        sens = np.zeros((G, B))
        spec = np.zeros((G, B))
        for g in sim.groups:
            elig[g.index] = g.eligible_mask
            sp = np.array(g.speed)[b_cls]
            speed[g.index] = np.minimum(sp, SPEED_CAP) * g.eligible_mask
            sens[g.index] = np.array(g.sensitivity)[b_cls]
            spec[g.index] = np.array(g.specificity)[b_cls]
        self._elig_speed = np.concatenate([elig, speed], axis=1)  # (G, 2B): blocks 6, 7
        self._acc_slope = elig * (sens - spec)
        self._acc_icpt = elig * spec
        self._elig = elig
        self._fatigue_scale = [
            1.0 / g.fatigue.max_drop if g.fatigue is not None and g.fatigue.max_drop > 0 else 0.0
            for g in sim.groups
        ]
        self._log_reviewers = 1.0 / math.log1p(max(self._reviewers, 1))
        # Preallocated work arrays and views into the float64 buffer.
        self._buf = np.zeros(self.size)
        buf = self._buf
        self._blk3 = buf[: 3 * B].reshape(3, B)
        self._queue_len = buf[3 * B : 4 * B]
        self._age = buf[4 * B : 5 * B]
        self._expiry = buf[5 * B : 6 * B]
        self._mean_risk = buf[:B]
        if mode == "pull":
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
        if self.mode == "pull":
            self._es[:] = 0.0
            self._acc[:] = 0.0
        else:
            self._free[:] = 0.0
        ang = (now % MINUTES_PER_DAY) * (2.0 * math.pi / MINUTES_PER_DAY)
        glob = [math.sin(ang), math.cos(ang), min(now / self._horizon, 1.0)]
        if self.mode == "pull":
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


def layout_digest(scenario) -> str:
    """Digest of a scenario ignoring its horizon and warm-up (what a trained model depends
    on: classes, markets, bands, reviewers; episodes may be shorter than evaluation runs)."""
    return scenario.model_copy(update={"horizon": 1.0, "warmup": 0.0}).digest()


def fifo_choice(sim: Simulation, candidates: list[int]) -> int:
    """FIFO's choice among ``candidates``: the bucket whose oldest task arrived first.

    The deterministic stand-in for an invalid action of an unmasked agent.
    """
    buckets = sim.buckets
    return min(candidates, key=lambda b: (buckets[b].head().arrival, b))


def holding_cost_rates(sim: Simulation) -> list[tuple[Any, float]]:
    """(bucket, holding cost per task-minute) for every bucket whose class costs anything."""
    costs = [c.holding_cost for c in sim.scenario.classes]
    return [(b, costs[b.cls]) for b in sim.buckets if costs[b.cls] > 0]


class HoldingCost:
    """Integrates sum_k c_k x (class-k tasks waiting) over simulated time.

    Call :meth:`advance` with (t0, t1) whenever time moves on without an event in between
    (the simulator's ``on_advance`` hook does this); the queue lengths are constant there.
    """

    def __init__(self, sim: Simulation):
        self.pairs = holding_cost_rates(sim)
        self.total = 0.0

    def rate(self) -> float:
        r = 0.0
        for b, c in self.pairs:
            r += c * b.n
        return r

    def advance(self, t0: float, t1: float) -> None:
        if t1 > t0:
            r = 0.0
            for b, c in self.pairs:
                r += c * b.n
            self.total += r * (t1 - t0)


# -- batch mode: weights -> assignment --------------------------------------------------------
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
    If the solver layer is not importable, or the flow fails, a greedy assignment (each
    reviewer in turn takes its best remaining bucket) is used instead.
    """

    def __init__(self, sim: Simulation):
        self.sim = sim
        self.n_buckets = B = len(sim.buckets)
        classes = sim.scenario.classes
        b_cls = np.array([b.cls for b in sim.buckets], dtype=np.int64)
        self._inv_sla = np.array([1.0 / classes[c].sla for c in b_cls])
        G = len(sim.groups)
        self._elig = np.zeros((G, B), dtype=bool)
        self._sens = np.zeros((G, B))
        self._spec = np.zeros((G, B))
        for g in sim.groups:
            self._elig[g.index] = g.eligible_mask
            self._sens[g.index] = np.array(g.sensitivity)[b_cls]
            self._spec[g.index] = np.array(g.specificity)[b_cls]
        self._sens_l = self._sens.tolist()
        self._spec_l = self._spec.tolist()
        self._inv_sla_l = self._inv_sla.tolist()
        self.multipliers: list[float] = [1.0] * B
        self.solver_calls = 0
        self.greedy_calls = 0
        try:
            from dispatch.solvers import AssignmentProblem, solve_min_cost_flow
        except ImportError:  # pragma: no cover - solver layer missing
            self._solve = None
        else:
            self._problem = AssignmentProblem
            self._solve = solve_min_cost_flow

    def set_weights(self, weights: np.ndarray) -> None:
        self.multipliers = weights_to_multipliers(weights).tolist()

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        if not reviewers:
            return []
        if len(reviewers) == 1:
            return self._assign_one(reviewers[0], now)
        sim = self.sim
        buckets = sim.buckets
        # Rows: (group, at cap) in first-seen order, members in the order given; groups
        # with no work in any eligible bucket are dropped before anything else is computed.
        rows: dict[tuple[int, bool], list[Reviewer]] = {}
        has_work: dict[int, bool] = {}
        for r in reviewers:
            g = r.group
            w = has_work.get(g.index)
            if w is None:
                w = has_work[g.index] = any(buckets[b].n for b in g.eligible)
            if w:
                key = (g.index, g.cap is not None and r.at_cap(now))
                rows.setdefault(key, []).append(r)
        if not rows:
            return []
        if len(rows) == 1 and len(next(iter(rows.values()))) == 1:
            return self._assign_one(next(iter(rows.values()))[0], now)
        raw: list[float] = []
        ext = raw.extend
        for b in buckets:
            k = b.n
            if k:
                ext((k, b.sum_risk / k, now - b.head().arrival, b.n_severe))
            else:
                ext((0, 0.0, 0.0, 0))
        B = self.n_buckets
        X = np.fromiter(raw, dtype=np.float64, count=4 * B).reshape(B, 4).T
        n, risk, age, n_sev = X
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
        capacity = n.astype(np.int64)
        counts = None
        if len(keys) == 1:  # one row: filling the best buckets first is optimal
            counts = _greedy(value, eligible, supply, capacity)
        elif self._solve is not None:
            res = self._solve(
                self._problem(value, eligible, supply, capacity, assign_all=True), scale=1e3
            )
            if res.ok:
                counts = res.counts
                self.solver_calls += 1
        if counts is None:  # solver layer missing or failed
            counts = _greedy(value, eligible, supply, capacity)
            self.greedy_calls += 1
        out: list[tuple[Reviewer, int]] = []
        for ri, key in enumerate(keys):
            members = rows[key]
            j = 0
            for bi in np.flatnonzero(counts[ri]):
                for _ in range(int(counts[ri, bi])):
                    out.append((members[j], int(bi)))
                    j += 1
        return out

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
