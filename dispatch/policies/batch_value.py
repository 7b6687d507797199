"""The value model of the batch optimisers, and how one epoch becomes an assignment problem.

Value of giving reviewer ``r`` one task ``t`` now
-------------------------------------------------

Every term is in units of the comparison objective (:mod:`dispatch.objective`: one SLA
breach = ``sla_breach``, one wrong decision = ``wrong_decision``, ...), so the solvers
maximise an estimate of the objective they are judged by. The question each term answers
is "what does taking ``t`` now save compared with leaving it for later?". *Later* is
modelled as a random deferral ``D ~ Exponential(mean tau)``, so ``P(D > x) = exp(-x/tau)``
and ``E[min(D, L)] = tau (1 - exp(-L/tau))``. With ``c`` the task's class, ``g`` the
reviewer's group, ``h = E[work_c] / speed_g,c`` the expected handling time, ``finish = now +
h``, ``p`` the calibrated risk score and ``sens``/``spec`` the reviewer's accuracy on ``c``
minus its current fatigue drop::

    v(r, t) =  harm x p x sens x severity x reach x E[min(D_h, end_of_life - finish)] / 1000
             + sla_breach x [finish <= deadline] x max(P(D > deadline - finish),
                                                       P(D > expires_at - now))
             + abandoned x P(D > expires_at - now)
             - lateness x max(0, finish - max(deadline, now)) / sla_c
             - wrong_decision x (p (1 - sens) + (1 - p)(1 - spec))
             - false_enforcement x (1 - p)(1 - spec)
             - h x price(g, c)

    tau   = deferral (minutes);  D_h uses tau_h = max(deferral, head-of-line wait of the
            bucket) when harm_wait_from_queue
    price(g, c) = guard x A(g, c) x sum over guarded classes c' != c that g serves of
                  V(g, c') x arrivals of c' per minute in g's markets x busy share of c''s pool

and, with ``per_minute``, ``v / h`` (value per minute of reviewer time, the c-mu index).

Why these terms:

* **Harm** counts only the violating views the review *cuts short*: the content is
  enforced at ``finish`` with probability ``p x sens``; left alone it stays up for the
  deferral (or until its end of life). Deferrals are long for backlogged queues, so the
  harm term uses the bucket's head-of-line wait (how long its oldest task has waited, a
  classic predictor of the wait ahead) as ``tau_h``. Content already enforced (an appeal, a
  QA re-review of a takedown) has nothing left to avert and gets no harm term.
* **SLA**: a breach is charged once per task, so the value of serving now is the chance
  the deadline would pass during the deferral -- close to 1 at the last moment, zero when
  *this* reviewer cannot make it anyway. An already-breached task has a sunk breach and
  earns nothing here (it still earns its harm term).
* **Lateness** is deliberately the lateness *this assignment causes* past the deadline (a
  slow reviewer on a task due in two minutes), not the total lateness: charging the wait a
  task has already suffered would push the oldest overdue tasks to the back for ever.
* **Expiry**: a task with patience (a live stream) not started before ``expires_at`` is
  abandoned (``abandoned``) and breaches its SLA; starting it now saves both.
* **Wrong decisions** are charged on every review whoever does it, so across tasks they
  mostly cancel; across reviewers they route high-risk work to accurate reviewers.
* **Guard** (option value of perishable work): a one-epoch matching cannot see the live
  streams that will arrive while a live-capable reviewer is busy on a short video, and
  without this term it happily spends specialists on work generalists could do, then lets
  streams expire in the evening peak. ``price`` charges each minute such a reviewer spends
  on other work with the value a guarded task (default: classes with patience) would
  bring, ``V(g, c')`` (the value model on a class-average task), times their arrival rate,
  times the share of the guarded pool that is busy now (the chance nobody else is free).
  ``A(g, c)`` is the share of the on-duty reviewers eligible for ``c`` outside ``g``: work
  only ``g`` can do (merchant risk for senior reviewers) is not penalised. On
  ``ecommerce_day`` (seeds 0-4) the flow without it scores 10,735 on the objective, with
  it 10,441 (c-mu, the best rule: 10,601).

Everything is cheap: a handful of vectorised numpy operations over (rows x scanned tasks).
:func:`task_value` is the scalar reference implementation used by the tests.

Integer scaling: the OR-Tools solvers need integer costs; values are multiplied by
``scale`` (default 1000, i.e. resolved to a thousandth of an SLA breach) and rounded. Values
below ``0.5 / scale`` round to 0 and count as "not worth doing" when the policy is not
work-conserving; ties closer than that may be broken either way.

From one epoch to an assignment problem
---------------------------------------

* **Rows**: free reviewers with the same group, cap state (at their wellbeing cap or not),
  reservation hold and fatigue (rounded to ``fatigue_bin``) are identical for the
  optimiser and become one row whose ``supply`` is their number.
* **Columns**: a bucket can give at most as many tasks this epoch as there are free
  reviewers eligible for it, ``F_b``, so only its first ``min(n_b, F_b, scan_limit)`` live
  tasks are scanned, oldest first. Those tasks are grouped into columns by urgency band
  (overdue / less than ``urgent_fraction`` of the SLA left or expiring within ``deferral``
  / the rest) and severity (counts against wellbeing caps or not); a column's value for a
  row is the mean value of its tasks and its capacity their count. The column capacities
  of a bucket therefore sum to at most ``bucket.n``. When ``F_b`` exceeds ``scan_limit`` a
  tail column stands for the unscanned tasks, valued from the bucket's running sums.
* **Execution is oldest first**: a bucket serves its head, so k assignments into a bucket's
  columns become "the next k tasks of that bucket" whatever columns the solver chose; since
  deadlines are monotone along a bucket (one class, one SLA), the most urgent bands are the
  head anyway. See :func:`dispatch.policies.solver_policies.realise` for how reviewers are
  matched to those positions without breaking a wellbeing cap.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dispatch.arrivals import rate_function
from dispatch.errors import ConfigError
from dispatch.model import WAITING
from dispatch.objective import HARM_UNIT, Objective
from dispatch.scenario import PoissonArrivals, ProfileArrivals

if TYPE_CHECKING:
    from dispatch.model import Reviewer, Task
    from dispatch.simulator import Simulation

_CFG = ConfigDict(extra="forbid", use_attribute_docstrings=True)
_OBJ = Objective()

OVERDUE, URGENT, REST = 0, 1, 2
"""Urgency bands of a task, most urgent first."""


class ValueWeights(BaseModel):
    """Objective weights the value model prices with; defaults are the comparison objective's."""

    model_config = _CFG
    harm: float = Field(default=_OBJ.harm, ge=0)
    """Per 1000 severity-weighted violating views averted."""
    sla_breach: float = Field(default=_OBJ.sla_breach, ge=0)
    """Per SLA breach avoided (decided on time instead of late or expired)."""
    wrong_decision: float = Field(default=_OBJ.wrong_decision, ge=0)
    """Per expected wrong decision (false positive or false negative)."""
    false_enforcement: float = Field(default=_OBJ.false_enforcement, ge=0)
    """Extra cost per expected false enforcement (a merchant wrongly punished)."""
    abandoned: float = Field(default=_OBJ.abandoned, ge=0)
    """Per task saved from expiring unreviewed (a live stream that ends)."""
    lateness: float = Field(default=0.5, ge=0)
    """Per SLA-length of lateness past the deadline that the assignment itself causes."""


class ValueParams(BaseModel):
    """Parameters of the value model and of the epoch aggregation (shared by all solvers)."""

    model_config = _CFG
    weights: ValueWeights = Field(default_factory=ValueWeights)
    """Objective weights (harm, sla_breach, wrong_decision, false_enforcement, abandoned,
    lateness)."""
    deferral: float = Field(default=10.0, gt=0)
    """Mean minutes tau a task waits more if not taken now (deferral ~ exponential)."""
    harm_wait_from_queue: bool = True
    """For the harm term, use the bucket's head-of-line wait as tau when longer."""
    guard: float = Field(default=1.0, ge=0)
    """Weight of the option value of guarded (perishable) work; 0 switches it off."""
    guard_classes: list[str] | None = None
    """Classes whose future arrivals are guarded; default every class with patience."""
    per_minute: bool = False
    """Divide each value by the reviewer's expected handling time (value per reviewer
    minute, the c-mu index)."""
    work_conserving: bool = True
    """Maximise the number of assignments first, then value: no reviewer idles while it has
    eligible work (unless held by a reservation); false: only positive-value assignments."""
    urgent_fraction: float = Field(default=0.25, gt=0, le=1)
    """A task is urgent when less than this share of its SLA is left."""
    fatigue_bin: float = Field(default=0.01, gt=0)
    """Reviewers whose fatigue drop rounds to the same multiple of this share a row."""
    scan_limit: int = Field(default=200, ge=1)
    """Most tasks scanned per bucket and epoch (a tail column stands for the rest)."""
    scale: float = Field(default=1000.0, gt=0)
    """Values are multiplied by this and rounded for the integer solvers."""


def task_value(
    *,
    now: float,
    risk: float,
    harm_rate: float,
    end_of_life: float,
    deadline: float,
    expires_at: float,
    sla: float,
    handling: float,
    sensitivity: float,
    specificity: float,
    params: ValueParams,
    harm_deferral: float | None = None,
    price: float = 0.0,
) -> float:
    """Scalar reference of the value model (see the module docstring for the formula).

    ``harm_rate`` is severity x reach (0 when the content is already enforced);
    ``sensitivity``/``specificity`` already include the fatigue drop; ``harm_deferral`` is
    ``tau_h`` (default ``params.deferral``); ``price`` is the guard price per minute of
    this reviewer's time on this class. The vectorised :func:`value_matrix` must agree
    with this to floating-point precision.
    """
    w = params.weights
    tau = params.deferral
    tau_h = tau if harm_deferral is None else harm_deferral
    finish = now + handling
    sens = min(max(sensitivity, 0.0), 1.0)
    spec = min(max(specificity, 0.0), 1.0)
    life_left = max(end_of_life - finish, 0.0)
    exposure = tau_h * -math.expm1(-life_left / tau_h)
    v = w.harm * risk * sens * harm_rate * exposure / HARM_UNIT
    u_exp = math.exp(-max(expires_at - now, 0.0) / tau)
    if finish <= deadline:
        u_dead = math.exp(-(deadline - finish) / tau)
        v += w.sla_breach * max(u_dead, u_exp)
    v += w.abandoned * u_exp
    v -= w.lateness * max(0.0, finish - max(deadline, now)) / sla
    v -= w.wrong_decision * (risk * (1 - sens) + (1 - risk) * (1 - spec))
    v -= w.false_enforcement * (1 - risk) * (1 - spec)
    v -= handling * price
    if params.per_minute:
        v /= handling
    return v


def value_matrix(
    now: float,
    handling: np.ndarray,
    sens: np.ndarray,
    spec: np.ndarray,
    risk: np.ndarray,
    harm_rate: np.ndarray,
    end_of_life: np.ndarray,
    deadline: np.ndarray,
    expires_at: np.ndarray,
    sla: np.ndarray,
    params: ValueParams,
    harm_deferral: np.ndarray | float | None = None,
    price: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Vectorised :func:`task_value`: ``(R, T)`` reviewer-side arrays, ``(T,)`` task arrays.

    ``handling``, ``sens``, ``spec`` and ``price`` are per (row, task): the row's expected
    handling time, fatigue-adjusted accuracy and guard price on the task's class. They must
    be finite, so callers put a placeholder on ineligible pairs and mask them afterwards.
    ``harm_rate`` is severity x reach (as in :func:`task_value`); the risk factor is applied
    here.
    """
    w = params.weights
    tau = params.deferral
    tau_h = tau if harm_deferral is None else harm_deferral
    finish = now + handling
    sens = np.clip(sens, 0.0, 1.0)
    spec = np.clip(spec, 0.0, 1.0)
    life_left = np.maximum(end_of_life - finish, 0.0)
    exposure = tau_h * -np.expm1(-life_left / tau_h)
    v = (w.harm / HARM_UNIT) * (risk * harm_rate) * sens * exposure
    u_exp = np.exp(-np.maximum(expires_at - now, 0.0) / tau)
    slack = deadline - finish
    on_time = slack >= 0
    u_dead = np.exp(-np.where(on_time, slack, 0.0) / tau)
    v += np.where(on_time, w.sla_breach * np.maximum(u_dead, u_exp), 0.0)
    v += w.abandoned * u_exp
    if w.lateness:
        v -= (w.lateness / sla) * np.maximum(finish - np.maximum(deadline, now), 0.0)
    fn = risk * (1 - sens)
    fp = (1 - risk) * (1 - spec)
    v -= w.wrong_decision * (fn + fp) + w.false_enforcement * fp
    v -= handling * price
    if params.per_minute:
        v = v / handling
    return v


@dataclass
class Epoch:
    """One epoch as arrays: rows of identical free reviewers, scanned tasks, columns.

    Attributes (R rows, T scanned tasks, C columns, B buckets of the simulation):
        members: the reviewers of each row (row ``i`` has ``supply[i] = len(members[i])``).
        row_group, row_fatigue, row_at_cap, row_held: per-row facts; rows are split by cap
            state when ``split_cap`` (flow, lsa). CP-SAT merges cap states and limits
            severe work with ``severe_remaining`` (members not at their cap) instead;
            ``row_at_cap`` is then true only if every member is at its cap.
        supply: reviewers per row; severe_remaining: members of the row not at their cap
            (one task per reviewer per epoch, so that is the row's severe allowance).
        capped: ids of the free reviewers at their wellbeing cap now.
        buckets: the simulation's buckets (read when realising the assignment).
        row_bucket_ok: bool ``(R, B)``: eligible and not held off the bucket by a reservation.
        tasks: the scanned tasks (``None`` for a tail pseudo-task), by bucket then position.
        t_bucket, t_pos, t_band, t_severe: per-task bucket, position from the head, urgency
            band, counts-against-caps flag.
        t_weight: tasks an entry stands for (1, or the unscanned count for a tail entry).
        task_value, task_eligible: ``(R, T)`` value of one task for one reviewer of the
            row, and whether the row may take it.
        col_bucket, col_band, col_severe, capacity, col_of_task: the columns.
        value, eligible: ``(R, C)`` column values (mean over the column's tasks) and
            eligibility (``eligible`` masks severe columns off at-cap rows if ``split_cap``).
    """

    now: float
    members: list[list[Reviewer]]
    row_group: np.ndarray
    row_fatigue: np.ndarray
    row_at_cap: np.ndarray
    row_held: np.ndarray
    supply: np.ndarray
    severe_remaining: np.ndarray
    row_bucket_ok: np.ndarray
    capped: set[int] = field(default_factory=set)
    buckets: list = field(default_factory=list)
    tasks: list[Task | None] = field(default_factory=list)
    t_bucket: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_pos: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_band: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    t_severe: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    t_weight: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    task_value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    task_eligible: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))
    col_bucket: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    col_band: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    col_severe: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    col_of_task: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    capacity: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    value: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    eligible: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), bool))

    @property
    def n_rows(self) -> int:
        return len(self.members)


class EpochBuilder:
    """Turns the simulation state at an epoch into an :class:`Epoch` (bind once per run).

    Static facts (per group x class accuracy and speed, class SLAs and mean work, bucket
    classes and markets) are cached as numpy arrays at construction; an epoch then costs
    one pass over the free reviewers, a bounded scan of the candidate buckets and a few
    vectorised operations.
    """

    def __init__(self, sim: Simulation, params: ValueParams):
        self.sim = sim
        self.params = params
        sc = sim.scenario
        self.mean_work = np.array([c.handling.expected for c in sc.classes], dtype=float)
        self.sla = np.array([c.sla for c in sc.classes], dtype=float)
        groups = sim.groups
        self.speed = np.array([g.speed for g in groups], dtype=float).reshape(len(groups), -1)
        self.sens = np.array([g.sensitivity for g in groups], dtype=float).reshape(len(groups), -1)
        self.spec = np.array([g.specificity for g in groups], dtype=float).reshape(len(groups), -1)
        nb = len(sim.buckets)
        self.group_mask = (
            np.array([g.eligible_mask for g in groups], dtype=bool).reshape(len(groups), nb)
            if groups
            else np.zeros((0, nb), dtype=bool)
        )
        self.b_cls = np.array([b.cls for b in sim.buckets], dtype=np.int64)
        self.b_market = np.array([b.market for b in sim.buckets], dtype=np.int64)
        # Reservation: set by the policy (group indices held, protected bucket mask, k,
        # backlog threshold); None when off.
        self.res_groups: set[int] = set()
        self.res_protected = np.zeros(nb, dtype=bool)
        self.res_k = 0
        self.res_threshold = 0
        self._init_guard()

    # -- guard price ---------------------------------------------------------------------------
    def _init_guard(self) -> None:
        """Static parts of the guard price: guarded classes, their rates, typical values."""
        sim = self.sim
        sc = sim.scenario
        p = self.params
        names = sim.class_names
        if p.guard_classes is not None:
            bad = set(p.guard_classes) - set(names)
            if bad:
                raise ConfigError(f"unknown classes {sorted(bad)}", field="guard_classes")
            guarded = sorted(names.index(c) for c in p.guard_classes)
        else:
            guarded = [i for i, c in enumerate(sc.classes) if c.patience is not None]
        self._rates = {}
        for ci in guarded:
            arr = sc.classes[ci].arrivals
            if isinstance(arr, PoissonArrivals | ProfileArrivals):
                self._rates[ci] = rate_function(arr)
        self.guarded = (
            np.array(sorted(self._rates), dtype=np.int64) if p.guard > 0 else np.zeros(0, np.int64)
        )
        n_groups, n_cls = self.speed.shape
        n_mk = len(sim.market_names)
        self._price_t = math.nan
        self._price = np.zeros((n_groups, n_cls))
        if not self.guarded.size:
            return
        # Arrivals of class c per minute in group g's markets = rate_c(t) x share[g, c].
        covers = np.zeros((n_groups, n_mk), dtype=bool)
        for gi in range(n_groups):
            covers[gi, self.b_market[self.group_mask[gi]]] = True
        self._share = np.zeros((n_groups, n_cls))
        for ci in self.guarded:
            c = sc.classes[ci]
            if c.market_mix:
                mix = np.zeros(n_mk)
                for m, x in c.market_mix.items():
                    mix[sim.market_index[m]] = x
                mix /= mix.sum()
            else:
                mix = np.full(n_mk, 1.0 / n_mk)
            self._share[:, ci] = covers @ mix
        # V(g, c): the value model on a class-average task, fresh, not per minute.
        flat = p.model_copy(update={"per_minute": False})
        self._typical = np.zeros((n_groups, n_cls))
        for ci in self.guarded:
            c = sc.classes[ci]
            h = c.harm
            risk = h.risk.expected if h.risk is not None else h.prevalence
            patience = c.patience.expected if c.patience is not None else math.inf
            life = h.lifetime if h.lifetime is not None else patience
            for gi in range(n_groups):
                if self.speed[gi, ci] <= 0:
                    continue
                v = task_value(
                    now=0.0,
                    risk=risk,
                    harm_rate=h.severity.expected * h.reach.expected,
                    end_of_life=life,
                    deadline=c.sla,
                    expires_at=patience,
                    sla=c.sla,
                    handling=self.mean_work[ci] / self.speed[gi, ci],
                    sensitivity=self.sens[gi, ci],
                    specificity=self.spec[gi, ci],
                    params=flat,
                )
                self._typical[gi, ci] = max(v, 0.0)

    def guard_price(self, now: float) -> np.ndarray:
        """``(G, C)`` guard price per reviewer-minute (see the module docstring).

        Recomputed once per instant: on-duty and busy counts per group are one pass over
        the reviewers.
        """
        if now == self._price_t:
            return self._price
        self._price_t = now
        groups = self.sim.groups
        # On duty, a reviewer is either busy or in its group's idle list.
        on = np.array([len(g.members) if g.on_duty else 0 for g in groups], dtype=float)
        free = np.array([self.sim.free_count(g) for g in groups], dtype=float)
        busy = np.maximum(on - free, 0.0)
        elig = self.speed > 0
        pool = on @ elig  # (C,) on-duty reviewers eligible per class
        busy_share = np.divide(busy @ elig, pool, out=np.zeros_like(pool), where=pool > 0)
        # A(g, c): share of c's on-duty pool outside g.
        outside = np.divide(
            pool[None, :] - on[:, None] * elig,
            pool[None, :],
            out=np.zeros_like(self._price),
            where=pool[None, :] > 0,
        )
        price = np.zeros_like(self._price)
        for ci in self.guarded:
            lam = self._rates[ci](now)
            per_group = self._typical[:, ci] * self._share[:, ci] * lam * busy_share[ci]
            term = np.repeat(per_group[:, None], price.shape[1], axis=1)
            term[:, ci] = 0.0  # guarded work itself is not charged for its own class
            price += term
        self._price = self.params.guard * outside * price
        return self._price

    # -- rows --------------------------------------------------------------------------------
    def rows(self, reviewers: list[Reviewer], now: float, split_cap: bool) -> Epoch:
        """Group the free reviewers into rows of identical reviewers."""
        bin_ = self.params.fatigue_bin
        held_ids = self._held(reviewers, now)
        keys: dict[tuple, int] = {}
        members: list[list[Reviewer]] = []
        row_group: list[int] = []
        row_fat: list[float] = []
        row_cap: list[bool] = []
        row_held: list[bool] = []
        sev_rem: list[int] = []
        capped_ids: set[int] = set()
        for r in reviewers:
            g = r.group
            capped = g.cap is not None and r.at_cap(now)
            fb = round(r.current_fatigue(now) / bin_) if g.fatigue is not None else 0
            held = r.id in held_ids
            key = (g.index, capped if split_cap else False, held, fb)
            i = keys.get(key)
            if i is None:
                i = keys[key] = len(members)
                members.append([])
                row_group.append(g.index)
                row_fat.append(fb * bin_)
                row_cap.append(True)
                row_held.append(held)
                sev_rem.append(0)
            members[i].append(r)
            row_cap[i] = row_cap[i] and capped  # a merged row is "at cap" if all are
            if capped:
                capped_ids.add(r.id)
            else:
                sev_rem[i] += 1
        rg = np.array(row_group, dtype=np.int64)
        held_a = np.array(row_held, dtype=bool)
        ok = self.group_mask[rg] if len(rg) else np.zeros((0, len(self.b_cls)), dtype=bool)
        if held_a.any():
            ok = ok & ~(held_a[:, None] & ~self.res_protected[None, :])
        return Epoch(
            now=now,
            members=members,
            row_group=rg,
            row_fatigue=np.array(row_fat, dtype=float),
            row_at_cap=np.array(row_cap, dtype=bool),
            row_held=held_a,
            supply=np.array([len(m) for m in members], dtype=np.int64),
            severe_remaining=np.array(sev_rem, dtype=np.int64),
            row_bucket_ok=ok,
            capped=capped_ids,
            buckets=self.sim.buckets,
        )

    def _held(self, reviewers: list[Reviewer], now: float) -> set[int]:
        """Trunk reservation: ids of free reviewers kept for the protected classes.

        Per reserved group: unless the unprotected backlog it could serve exceeds the
        threshold, the ``k`` least fatigued free reviewers may take protected work only,
        exactly the rules' "take other work only when that still leaves k idle".
        """
        if not self.res_groups:
            return set()
        by_group: dict[int, list[Reviewer]] = {}
        for r in reviewers:
            if r.group.index in self.res_groups:
                by_group.setdefault(r.group.index, []).append(r)
        held: set[int] = set()
        buckets = self.sim.buckets
        for gi, rs in by_group.items():
            mask = self.group_mask[gi] & ~self.res_protected
            backlog = sum(buckets[b].n for b in np.flatnonzero(mask))
            if backlog > self.res_threshold:
                continue
            rs = sorted(rs, key=lambda r: (r.current_fatigue(now), r.id))
            held.update(r.id for r in rs[: self.res_k])
        return held

    # -- tasks -------------------------------------------------------------------------------
    def scan(self, ep: Epoch, depth_cap: int, tail: bool) -> None:
        """Scan the first tasks of each bucket some free row may serve; fill task arrays.

        ``depth_cap`` bounds the scan per bucket; the scan also stops at ``F_b`` (free
        eligible reviewers) when ``tail`` is true (the aggregated solvers), in which case a
        tail pseudo-task stands for any takeable tasks beyond ``depth_cap``.
        """
        sim = self.sim
        buckets = sim.buckets
        now = ep.now
        free_per_bucket = ep.supply @ ep.row_bucket_ok if ep.n_rows else np.zeros(0)
        uf = self.params.urgent_fraction
        tau0 = self.params.deferral
        harm_from_queue = self.params.harm_wait_from_queue
        sla = self.sla
        tasks: list[Task | None] = []
        tb: list[int] = []
        tpos: list[int] = []
        tband: list[int] = []
        tsev: list[bool] = []
        tweight: list[int] = []
        # Per-task features in parallel lists (risk, harm_rate, eol, deadline, expires, cls).
        f_risk: list[float] = []
        f_hr: list[float] = []
        f_eol: list[float] = []
        f_dead: list[float] = []
        f_exp: list[float] = []
        f_cls: list[int] = []
        f_tauh: list[float] = []
        for b in np.flatnonzero(free_per_bucket):
            bk = buckets[b]
            n = bk.n
            if n <= 0:
                continue
            takers = int(free_per_bucket[b])
            depth = min(n, depth_cap, takers) if tail else min(n, depth_cap)
            cls = bk.cls
            urgent_slack = uf * sla[cls]
            pos = 0
            s_risk = s_hr = 0.0
            s_sev = 0
            last = None
            tau_h = tau0
            if harm_from_queue:
                head = bk.head()
                if head is not None and now - head.arrival > tau0:
                    tau_h = now - head.arrival
            for t in bk.tasks:
                if pos >= depth:
                    break
                if t.state != WAITING:
                    continue
                last = t
                hr = t.severity * t.reach if t.item.enforced_at is None else 0.0
                dl = t.deadline
                ex = t.expires_at
                if dl < now:
                    band = OVERDUE
                elif dl - now < urgent_slack or ex - now < tau0:
                    band = URGENT
                else:
                    band = REST
                tasks.append(t)
                tb.append(int(b))
                tpos.append(pos)
                tband.append(band)
                tsev.append(bool(t.severe))
                tweight.append(1)
                f_risk.append(t.risk)
                f_hr.append(hr)
                f_eol.append(t.end_of_life)
                f_dead.append(dl)
                f_exp.append(ex)
                f_cls.append(cls)
                f_tauh.append(tau_h)
                s_risk += t.risk
                s_hr += t.risk * t.severity * t.reach
                s_sev += bool(t.severe)
                pos += 1
            rest = min(n, takers) - pos if tail else 0
            if rest > 0 and last is not None:
                # Tail pseudo-task: the unscanned tasks the takers could still reach, valued
                # from the bucket's running sums (mean risk, mean risk x severity x reach).
                m = n - pos
                mean_risk = max(bk.sum_risk - s_risk, 0.0) / m
                mean_phr = max(bk.sum_harm_rate - s_hr, 0.0) / m
                tasks.append(None)
                tb.append(int(b))
                tpos.append(pos)
                tband.append(REST)
                tsev.append(bk.n_severe - s_sev > 0)
                tweight.append(rest)
                f_risk.append(mean_risk)
                f_hr.append(mean_phr / mean_risk if mean_risk > 0 else 0.0)
                f_eol.append(last.end_of_life)
                f_dead.append(last.deadline)
                f_exp.append(math.inf)
                f_cls.append(cls)
                f_tauh.append(tau_h)
        ep.tasks = tasks
        ep.t_bucket = np.array(tb, dtype=np.int64)
        ep.t_pos = np.array(tpos, dtype=np.int64)
        ep.t_band = np.array(tband, dtype=np.int64)
        ep.t_severe = np.array(tsev, dtype=bool)
        ep.t_weight = np.array(tweight, dtype=np.int64)
        if not tasks:
            ep.task_value = np.zeros((ep.n_rows, 0))
            ep.task_eligible = np.zeros((ep.n_rows, 0), dtype=bool)
            return
        cls_a = np.array(f_cls, dtype=np.int64)
        g = ep.row_group
        speed = self.speed[g][:, cls_a]
        ok = ep.row_bucket_ok[:, ep.t_bucket] & (speed > 0)
        handling = self.mean_work[cls_a] / np.where(speed > 0, speed, 1.0)
        fat = ep.row_fatigue[:, None]
        val = value_matrix(
            now,
            handling,
            self.sens[g][:, cls_a] - fat,
            self.spec[g][:, cls_a] - fat,
            np.array(f_risk),
            np.array(f_hr),
            np.array(f_eol),
            np.array(f_dead),
            np.array(f_exp),
            sla[cls_a],
            self.params,
            np.array(f_tauh),
            self.guard_price(now)[g][:, cls_a] if self.guarded.size else 0.0,
        )
        ep.task_value = np.where(ok, val, 0.0)
        ep.task_eligible = ok

    # -- columns -----------------------------------------------------------------------------
    def columns(self, ep: Epoch, per_task: bool, mask_cap: bool) -> None:
        """Group scanned tasks into columns and average their values.

        ``per_task``: one column per scanned task (the exact per-task problem); otherwise
        one per (bucket, urgency band, severe). ``mask_cap``: at-cap rows are ineligible
        for severe columns (flow, lsa); CP-SAT instead passes the caps as constraints.
        """
        T = len(ep.tasks)
        if per_task:
            col_of_task = np.arange(T, dtype=np.int64)
            n_cols = T
        else:
            key = (ep.t_bucket * 3 + ep.t_band) * 2 + ep.t_severe
            _, first, col_of_task = np.unique(key, return_index=True, return_inverse=True)
            col_of_task = col_of_task.reshape(-1).astype(np.int64)
            n_cols = len(first)
        ep.col_of_task = col_of_task
        cap = np.bincount(col_of_task, weights=ep.t_weight, minlength=n_cols).astype(np.int64)
        ep.capacity = cap
        first_task = np.full(n_cols, T, dtype=np.int64)
        np.minimum.at(first_task, col_of_task, np.arange(T))
        ep.col_bucket = ep.t_bucket[first_task] if T else np.zeros(0, np.int64)
        ep.col_band = ep.t_band[first_task] if T else np.zeros(0, np.int64)
        ep.col_severe = ep.t_severe[first_task] if T else np.zeros(0, bool)
        if per_task or n_cols == T:
            # Columns are single tasks (weights only > 1 for tail pseudo-tasks).
            order = np.argsort(col_of_task, kind="stable") if not per_task else None
            val = ep.task_value if per_task else ep.task_value[:, order]
            elig = ep.task_eligible if per_task else ep.task_eligible[:, order]
        else:
            agg = np.zeros((T, n_cols))
            agg[np.arange(T), col_of_task] = ep.t_weight / cap[col_of_task]
            val = ep.task_value @ agg
            # Eligibility is per bucket, so any task of the column decides.
            elig = ep.task_eligible[:, first_task]
        if mask_cap and ep.row_at_cap.any():
            elig = elig & ~(ep.row_at_cap[:, None] & ep.col_severe[None, :])
        ep.value = np.where(elig, val, 0.0)
        ep.eligible = elig
