"""One epoch of a batch optimiser as arrays: rows of reviewers, scanned tasks, columns.

:class:`EpochBuilder` turns the simulation state at an epoch into an :class:`Epoch` in three
steps (the aggregation is described in :mod:`dispatch.policies.batch.value`):

1. :meth:`~EpochBuilder.rows`: free reviewers that are identical for the optimiser (group,
   cap state, reservation hold, binned fatigue) become one row with a ``supply``;
2. :meth:`~EpochBuilder.scan`: the first live tasks of every bucket some row may serve are
   read (bounded by ``aggregation.scan_limit`` and by the bucket's free takers), plus a tail
   pseudo-task standing for the takeable tasks beyond the scan, and valued for every row;
3. :meth:`~EpochBuilder.columns`: scanned tasks are grouped into columns (bucket x urgency
   band x severe, or one per task) whose value is the mean of their tasks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from dispatch.model import WAITING
from dispatch.policies.batch.guard import GuardPrice
from dispatch.policies.batch.params import SolverParams
from dispatch.policies.batch.value import OVERDUE, REST, URGENT, value_matrix

if TYPE_CHECKING:
    from dispatch.layout import Layout
    from dispatch.model import Bucket, Reviewer, Task
    from dispatch.policies.rules import Reservation
    from dispatch.simulator import Simulation

__all__ = ["SCAN_COLUMNS", "Epoch", "EpochBuilder", "Scan"]


SCAN_COLUMNS = (
    "bucket",
    "pos",
    "band",
    "severe",
    "weight",
    "risk",
    "harm_rate",
    "end_of_life",
    "deadline",
    "expires_at",
    "harm_deferral",
)
"""One row per scanned entry (see :class:`Scan`), in this column order."""


@dataclass
class Scan:
    """The entries scanned in one epoch, by bucket then position from the head.

    Entries are live tasks, plus (aggregated solvers) one *tail* entry per bucket after its
    scanned tasks: a pseudo-task (``tasks[i]`` is ``None``) standing for ``weight`` unscanned
    tasks, valued from the bucket's running sums, in band REST and without expiry. The
    arrays are the columns of :data:`SCAN_COLUMNS`; the float ones are the value model's
    inputs (``harm_rate`` = severity x reach, 0 once the content is enforced; for a tail the
    mean risk-weighted rate; ``harm_deferral`` = tau_h of the entry's bucket).
    """

    tasks: list[Task | None]
    bucket: np.ndarray
    pos: np.ndarray
    band: np.ndarray
    severe: np.ndarray
    weight: np.ndarray
    risk: np.ndarray
    harm_rate: np.ndarray
    end_of_life: np.ndarray
    deadline: np.ndarray
    expires_at: np.ndarray
    harm_deferral: np.ndarray

    @classmethod
    def from_rows(cls, tasks: list[Task | None], rows: list[tuple]) -> Scan:
        """Columns from row tuples (one ``np.array`` call: small epochs are the norm)."""
        a = np.array(rows, dtype=float).reshape(len(rows), len(SCAN_COLUMNS))
        cols = dict(zip(SCAN_COLUMNS, a.T, strict=True))
        for key in ("bucket", "pos", "band", "weight"):
            cols[key] = cols[key].astype(np.int64)
        cols["severe"] = cols["severe"].astype(bool)
        return cls(tasks=tasks, **cols)


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
    """Turns the simulation state at an epoch into an :class:`Epoch` (one per policy run).

    Static facts (per group x class accuracy and speed, class SLAs and mean work, bucket
    classes and markets) come from the :class:`~dispatch.layout.Layout` as numpy arrays;
    an epoch then costs one pass over the free reviewers, a bounded scan of the candidate
    buckets and a few vectorised operations. :meth:`bind` attaches the running simulation.
    """

    def __init__(self, layout: Layout, params: SolverParams):
        self.layout = layout
        self.params = params
        self.value = params.value
        self.aggregation = params.aggregation
        self.mean_work = layout.mean_work
        self.sla = layout.sla
        self.speed = layout.speed
        self.sens = layout.sensitivity
        self.spec = layout.specificity
        self.group_mask = layout.group_mask
        self.b_cls = layout.b_cls
        self.b_market = layout.b_market
        # Trunk reservation (set_reservation): groups held, protected buckets, k, threshold.
        self.res_groups: set[int] = set()
        self.res_protected = np.zeros(layout.n_buckets, dtype=bool)
        self.res_k = 0
        self.res_threshold = 0
        self.guard_price = GuardPrice(layout, params.value)
        self.sim: Simulation | None = None

    def bind(self, sim: Simulation) -> EpochBuilder:
        self.sim = sim
        return self

    def set_reservation(self, res: Reservation) -> None:
        """Hold ``res.k`` free reviewers of the reserved groups for the protected classes."""
        cls, self.res_groups = res.resolve(self.layout)
        self.res_protected = np.isin(self.b_cls, sorted(cls))
        self.res_k = res.k
        self.res_threshold = res.backlog_threshold

    # -- rows --------------------------------------------------------------------------------
    def rows(self, reviewers: list[Reviewer], now: float, split_cap: bool) -> Epoch:
        """Group the free reviewers into rows of identical reviewers."""
        bin_ = self.aggregation.fatigue_bin
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
        ok = self.group_mask[rg] if len(rg) else np.zeros((0, self.layout.n_buckets), dtype=bool)
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
        """Scan the first tasks of each bucket some free row may serve; value them per row.

        ``depth_cap`` bounds the scan per bucket; the scan also stops at ``F_b`` (free
        eligible reviewers) when ``tail`` is true (the aggregated solvers), in which case a
        tail pseudo-task stands for any takeable tasks beyond ``depth_cap``.
        """
        s = self._scan_tasks(ep, depth_cap, tail)
        ep.tasks = s.tasks
        ep.t_bucket = s.bucket
        ep.t_pos = s.pos
        ep.t_band = s.band
        ep.t_severe = s.severe
        ep.t_weight = s.weight
        if not s.tasks:
            ep.task_value = np.zeros((ep.n_rows, 0))
            ep.task_eligible = np.zeros((ep.n_rows, 0), dtype=bool)
            return
        cls_a = self.b_cls[s.bucket]
        g = ep.row_group
        speed = self.speed[g][:, cls_a]
        ok = ep.row_bucket_ok[:, s.bucket] & (speed > 0)
        handling = self.mean_work[cls_a] / np.where(speed > 0, speed, 1.0)
        fat = ep.row_fatigue[:, None]
        val = value_matrix(
            ep.now,
            handling,
            self.sens[g][:, cls_a] - fat,
            self.spec[g][:, cls_a] - fat,
            s.risk,
            s.harm_rate,
            s.end_of_life,
            s.deadline,
            s.expires_at,
            self.sla[cls_a],
            self.value,
            s.harm_deferral,
            self.guard_price(self.sim, ep.now)[g][:, cls_a]
            if self.guard_price.guarded.size
            else 0.0,
        )
        ep.task_value = np.where(ok, val, 0.0)
        ep.task_eligible = ok

    def _scan_tasks(self, ep: Epoch, depth_cap: int, tail: bool) -> Scan:
        """Read the live head of every candidate bucket into rows of :data:`SCAN_COLUMNS`.

        The urgency band of a task: OVERDUE past its deadline; URGENT with less than
        ``urgent_fraction`` of its SLA left or expiring within the deferral; else REST.
        """
        buckets = self.sim.buckets
        now = ep.now
        tau0 = self.value.deferral
        uf = self.aggregation.urgent_fraction
        free_per_bucket = ep.supply @ ep.row_bucket_ok if ep.n_rows else np.zeros(0)
        tasks: list[Task | None] = []
        rows: list[tuple] = []
        for b in np.flatnonzero(free_per_bucket).tolist():
            bk = buckets[b]
            n = bk.n
            if n <= 0:
                continue
            takers = int(free_per_bucket[b])
            depth = min(n, depth_cap, takers) if tail else min(n, depth_cap)
            urgent_slack = uf * self.sla[bk.cls]
            tau_h = tau0
            if self.value.harm_wait_from_queue:
                head = bk.head()
                if head is not None and now - head.arrival > tau0:
                    tau_h = now - head.arrival
            live = _live_head(bk, depth)
            for pos, t in enumerate(live):
                dl = t.deadline
                ex = t.expires_at
                if dl < now:
                    band = OVERDUE
                elif dl - now < urgent_slack or ex - now < tau0:
                    band = URGENT
                else:
                    band = REST
                hr = t.severity * t.reach if t.item.enforced_at is None else 0.0
                rows.append((b, pos, band, t.severe, 1, t.risk, hr, t.end_of_life, dl, ex, tau_h))
            tasks += live
            rest = min(n, takers) - len(live) if tail else 0
            if rest > 0 and live:
                rows.append(_tail_row(bk, live, rest, tau_h))
                tasks.append(None)
        return Scan.from_rows(tasks, rows)

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


def _live_head(bk: Bucket, depth: int) -> list[Task]:
    """The first ``depth`` live (waiting) tasks of a bucket, oldest first."""
    out: list[Task] = []
    if depth <= 0:
        return out
    for t in bk.tasks:
        if t.state == WAITING:
            out.append(t)
            if len(out) >= depth:
                break
    return out


def _tail_row(bk: Bucket, live: list[Task], rest: int, tau_h: float) -> tuple:
    """The tail entry standing for ``rest`` takeable tasks beyond the scanned ``live``.

    Valued from the bucket's running sums minus the scanned tasks' (mean risk, mean risk x
    severity x reach), with the last scanned task's deadline and end of life. The sums run
    in queue order, as the bucket's own counters do.
    """
    s_risk = 0.0
    s_hr = 0.0
    s_sev = 0
    for t in live:
        s_risk += t.risk
        s_hr += t.risk * t.severity * t.reach
        s_sev += bool(t.severe)
    k = len(live)
    m = bk.n - k
    mean_risk = max(bk.sum_risk - s_risk, 0.0) / m
    mean_phr = max(bk.sum_harm_rate - s_hr, 0.0) / m
    harm_rate = mean_phr / mean_risk if mean_risk > 0 else 0.0
    last = live[-1]
    severe = bk.n_severe - s_sev > 0
    return (
        bk.index,
        k,
        REST,
        severe,
        rest,
        mean_risk,
        harm_rate,
        last.end_of_life,
        last.deadline,
        math.inf,
        tau_h,
    )
