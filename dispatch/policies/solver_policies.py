"""OR-Tools optimisers as batch dispatch policies: ``flow``, ``lsa`` and ``cpsat``.

All three solve the same problem each epoch -- give the free reviewers the waiting tasks
that maximise the total value of :mod:`dispatch.policies.batch_value` (its docstring has
the formula and the aggregation) -- and differ in how:

* ``flow``: tasks aggregated into (bucket x urgency band x severe) columns, identical
  reviewers into rows; a min-cost flow (exact for that aggregated problem, milliseconds).
* ``lsa``: one column per task over the first ``max_tasks_per_bucket`` tasks of each
  bucket, one row per reviewer; the exact per-task optimum of the value model within that
  window (a unit-capacity min-cost flow, see :func:`dispatch.solvers.solve_linear_assignment`).
  Meant for small instances and as the reference the bucketed flow is checked against.
* ``cpsat``: the ``flow`` model plus side constraints a flow cannot express (wellbeing
  caps of merged rows, diversion caps, market coverage floors, team quotas) with CP-SAT.

Every policy is ``mode = "batch"``: every ``interval`` minutes, and with ``on_demand``
also at the instant a task arrives or a reviewer frees up, the simulator hands over all
free reviewers. The simulator then starts, for each returned (reviewer, bucket) pair, the
oldest task of that bucket, so how the solver's counts become pairs matters; see
:func:`realise`.

The ``reserve`` parameter is the rules' trunk reservation (:class:`Reservation`): per
reserved group, the ``k`` least fatigued free reviewers may only take protected work
unless the unprotected backlog exceeds the threshold.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dispatch.errors import ConfigError
from dispatch.model import WAITING
from dispatch.policies.base import Policy
from dispatch.policies.batch_value import Epoch, EpochBuilder, ValueParams
from dispatch.policies.registry import register
from dispatch.policies.rules import Reservation
from dispatch.solvers import (
    AssignmentProblem,
    SideConstraints,
    max_assignable,
    solve_cpsat,
    solve_linear_assignment,
    solve_min_cost_flow,
)

if TYPE_CHECKING:
    from dispatch.model import Reviewer

_CFG = ConfigDict(extra="forbid", use_attribute_docstrings=True)

__all__ = ["BatchSolver", "CPSATPolicy", "FlowPolicy", "LSAPolicy", "realise"]


class SolverParams(ValueParams):
    """Parameters shared by every solver policy (value model + epoch timing + reservation)."""

    interval: float = Field(default=1.0, gt=0)
    """Minutes between periodic epochs."""
    on_demand: bool = True
    """Also solve at the instant a task arrives or a reviewer becomes free."""
    reserve: Reservation | None = None
    """Trunk reservation for urgent classes, as in the rules (off by default)."""


def realise(ep: Epoch, counts: np.ndarray, sort_key: np.ndarray) -> list[tuple[Reviewer, int]]:
    """Turn a solver's ``(R, C)`` counts into (reviewer, bucket) pairs the simulator accepts.

    A bucket serves oldest first, so k assignments into a bucket's columns take its next k
    live tasks, in the order the pairs are returned. Two things are decided here:

    1. *Which member of a row* goes to which column: rows may merge reviewers at and below
       their wellbeing cap (CP-SAT), so severe columns draw uncapped members first.
    2. *Who gets which position* in the bucket: reviewers are queued by ``sort_key`` of
       their column (urgency band, or task position for ``lsa``), and the bucket's live
       tasks are walked from the head; a severe task goes to the first reviewer in the
       queue not at their cap, a non-severe one preferably to a capped reviewer (who can
       take nothing else). If only capped reviewers remain in front of a severe head, the
       rest of that bucket's reviewers stay free this epoch (the head cannot be skipped).

    The pairs are therefore valid by construction: eligibility comes from the columns,
    caps from the walk, and no bucket is asked for more than its live tasks.
    """
    members = ep.members
    capped = ep.capped
    col_bucket = ep.col_bucket
    col_severe = ep.col_severe
    per_bucket: dict[int, list[tuple[Any, int, Reviewer, bool]]] = {}
    seq = 0
    rows_i, cols_i = np.nonzero(counts)
    if rows_i.size == 0:
        return []
    for i in np.unique(rows_i):
        ok = [m for m in members[i] if m.id not in capped]
        at_cap = [m for m in members[i] if m.id in capped]
        cols = cols_i[rows_i == i]
        # Severe columns first so they get the members still allowed severe work.
        cols = sorted(cols.tolist(), key=lambda c: (not col_severe[c], c))
        for c in cols:
            for _ in range(int(counts[i, c])):
                if col_severe[c]:
                    r = ok.pop(0) if ok else at_cap.pop(0)
                else:
                    r = at_cap.pop(0) if at_cap else ok.pop(0)
                b = int(col_bucket[c])
                per_bucket.setdefault(b, []).append((sort_key[c], seq, r, r.id in capped))
                seq += 1
    pairs: list[tuple[Reviewer, int]] = []
    buckets = ep.buckets
    for b in sorted(per_bucket):
        queue = sorted(per_bucket[b], key=lambda e: (e[0], e[1]))
        for t in buckets[b].tasks:
            if not queue:
                break
            if t.state != WAITING:
                continue
            if t.severe:
                j = next((k for k, e in enumerate(queue) if not e[3]), None)
                if j is None:
                    break
            else:
                j = next((k for k, e in enumerate(queue) if e[3]), 0)
            pairs.append((queue.pop(j)[2], b))
    return pairs


class BatchSolver(Policy):
    """Shared epoch pipeline: rows -> bounded scan -> columns -> solve -> realise.

    Subclasses set ``split_cap`` / ``per_task`` and implement :meth:`solve`. ``stats`` counts
    epochs, assignments, solver calls and shortcuts (single free reviewer: the optimum is
    the best column, no solver needed) for diagnostics and tests.
    """

    mode = "batch"
    Params = SolverParams
    split_cap = True
    per_task = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.batch_interval = float(self.params.interval)
        self.on_demand = bool(self.params.on_demand)
        self.stats: dict[str, float] = {}

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        self.builder = EpochBuilder(sim, self.params)
        self.stats = {
            "epochs": 0,
            "assigned": 0,
            "shortcuts": 0,
            "solver_calls": 0,
            "solve_ms": 0.0,
            "dropped": 0,
        }
        res = self.params.reserve
        if res is not None:
            names = sim.class_names
            unknown = set(res.classes) - set(names)
            if unknown:
                raise ConfigError(f"unknown classes {sorted(unknown)}", field="reserve.classes")
            cls = {names.index(c) for c in res.classes}
            b = self.builder
            b.res_protected = np.isin(b.b_cls, sorted(cls))
            if res.groups is not None:
                gnames = [g.name for g in sim.groups]
                bad = set(res.groups) - set(gnames)
                if bad:
                    raise ConfigError(f"unknown groups {sorted(bad)}", field="reserve.groups")
                b.res_groups = {gnames.index(g) for g in res.groups}
            else:
                b.res_groups = {
                    g.index for g in sim.groups if (b.group_mask[g.index] & b.res_protected).any()
                }
            b.res_k = res.k
            b.res_threshold = res.backlog_threshold

    # -- pipeline ------------------------------------------------------------------------------
    def build(self, reviewers: list[Reviewer], now: float) -> Epoch:
        """The epoch as arrays (rows, scanned tasks, columns with values)."""
        b = self.builder
        ep = b.rows(reviewers, now, split_cap=self.split_cap)
        depth = self._depth()
        b.scan(ep, depth, tail=not self.per_task)
        b.columns(ep, per_task=self.per_task, mask_cap=self.split_cap)
        return ep

    def _depth(self) -> int:
        return self.params.scan_limit

    def problem(self, ep: Epoch) -> AssignmentProblem:
        return AssignmentProblem(
            ep.value, ep.eligible, ep.supply, ep.capacity, assign_all=self.params.work_conserving
        )

    def solve(self, ep: Epoch) -> np.ndarray:
        raise NotImplementedError

    def sort_key(self, ep: Epoch) -> np.ndarray:
        """Queue order of a column's reviewers within its bucket: most urgent band first."""
        return ep.col_band

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        st = self.stats
        st["epochs"] += 1
        # Most on-demand epochs find the free reviewers with nothing they could take (an
        # arrival for a busy team): filter by group before building anything.
        buckets = self.sim.buckets
        has_work: dict[int, bool] = {}
        keep = []
        for r in reviewers:
            g = r.group
            ok = has_work.get(g.index)
            if ok is None:
                ok = has_work[g.index] = any(buckets[b].n for b in g.eligible)
            if ok:
                keep.append(r)
        if not keep:
            return []
        ep = self.build(keep, now)
        if ep.value.size == 0 or not ep.eligible.any():
            return []
        counts = self.solve(ep)
        pairs = realise(ep, counts, self.sort_key(ep))
        st["assigned"] += len(pairs)
        st["dropped"] += int(counts.sum()) - len(pairs)
        self.after(ep, counts, pairs)
        return pairs

    def after(self, ep: Epoch, counts: np.ndarray, pairs: list[tuple[Reviewer, int]]) -> None:
        """Hook for per-epoch bookkeeping (CP-SAT records its side-constraint counts)."""

    def _single(self, problem: AssignmentProblem) -> np.ndarray | None:
        """The optimum when a single reviewer has any eligible column, else ``None``."""
        active = problem.eligible.any(axis=1)
        if problem.supply[active].sum() != 1:
            return None
        self.stats["shortcuts"] += 1
        i = int(np.flatnonzero(active)[0])
        gain = np.rint(problem.value[i] * self.params.scale)
        gain = np.where(problem.eligible[i], gain, -np.inf)
        c = int(np.argmax(gain))
        counts = np.zeros(problem.value.shape, dtype=np.int64)
        if problem.assign_all or gain[c] > 0:
            counts[i, c] = 1
        return counts

    def _flow(self, problem: AssignmentProblem) -> np.ndarray:
        """Min-cost flow; a lower scale on integer overflow (values are rarely that big).

        Shortcut: when a single reviewer has any eligible column the optimum is its best
        column (by the same rounded gains the flow uses, so ties and "not worth doing"
        match) and no solver is needed -- the common case of an on-demand epoch.
        """
        counts = self._single(problem)
        if counts is not None:
            return counts
        scale = self.params.scale
        for _ in range(3):
            res = solve_min_cost_flow(problem, scale=scale)
            self.stats["solver_calls"] += 1
            self.stats["solve_ms"] += res.solve_ms
            if res.status == "OPTIMAL":
                return res.counts
            scale /= 100.0
        raise RuntimeError(f"min-cost flow failed: {res.status}")


@register
class FlowPolicy(BatchSolver):
    """Min-cost flow on the aggregated epoch: exact for (rows x columns), milliseconds.

    The aggregation is the only approximation: a column's value is the mean over its tasks,
    and the tasks a bucket actually hands out are its next ones (see :func:`realise`).
    With one task per column (``test_bucketed_flow_equals_lsa_when_buckets_are_exact``)
    it coincides with ``lsa``.
    """

    name = "flow"
    summary = (
        "Bucketed min-cost flow each epoch: maximises the total value of the epoch's "
        "assignments (harm averted, SLA breaches and expiries avoided, minus expected wrong "
        "decisions and the guard price of reviewers needed for perishable work) over rows "
        "of identical reviewers x (bucket, urgency band) columns."
    )

    def solve(self, ep: Epoch) -> np.ndarray:
        return self._flow(self.problem(ep))


class LSAParams(SolverParams):
    max_tasks_per_bucket: int = Field(default=50, ge=1)
    """Tasks per bucket (oldest first) offered to the per-task assignment."""


@register
class LSAPolicy(BatchSolver):
    """Exact per-task assignment within the window of each bucket's first tasks.

    Exact per task *within that window*: every free reviewer is a row and each of the first
    ``max_tasks_per_bucket`` live tasks of a bucket is a column, and the unit-capacity
    assignment maximises the summed value model exactly (up to integer scaling). Tasks
    beyond the window are invisible. Execution is still oldest first: if the optimum skips
    a bucket's head for a later task of the same bucket, the reviewer gets the head (the
    simulator serves buckets in order); the reviewer the solver gave the earliest task of a
    bucket is handed its head. Rows x columns grow with the backlog, so this is for small
    instances and as the reference the bucketed ``flow`` is tested against.
    """

    name = "lsa"
    summary = (
        "Exact per-task linear sum assignment of free reviewers to the first "
        "max_tasks_per_bucket tasks of each bucket, maximising the same total value as "
        "flow (exact per task within that window; small instances)."
    )
    Params = LSAParams
    per_task = True

    def _depth(self) -> int:
        return self.params.max_tasks_per_bucket

    def sort_key(self, ep: Epoch) -> np.ndarray:
        # The reviewer given the oldest task of a bucket takes the head.
        return ep.t_pos[np.argsort(ep.col_of_task)] if ep.col_of_task.size else ep.col_band

    def solve(self, ep: Epoch) -> np.ndarray:
        single = self._single(self.problem(ep))
        if single is not None:
            return single
        row_of = np.repeat(np.arange(ep.n_rows), ep.supply)
        choice = solve_linear_assignment(
            ep.value[row_of],
            ep.eligible[row_of],
            assign_all=self.params.work_conserving,
            scale=self.params.scale,
        )
        self.stats["solver_calls"] += 1
        counts = np.zeros(ep.value.shape, dtype=np.int64)
        used = choice >= 0
        np.add.at(counts, (row_of[used], choice[used]), 1)
        return counts


class MaxDiverted(BaseModel):
    """At most ``n`` reviewers of ``groups`` assigned outside ``classes`` per epoch."""

    model_config = _CFG
    classes: list[str] = Field(min_length=1)
    """The classes the groups are kept for (e.g. [live_stream])."""
    groups: list[str] | None = None
    """Specialist groups; default every group eligible for those classes."""
    n: int = Field(ge=0)
    """Most of them assigned to other classes in one epoch."""
    concurrent: bool = False
    """Count those already busy outside the classes too: at most n diverted at any time."""


class TeamQuota(BaseModel):
    """At least ``n`` assignments of ``group``'s reviewers into ``classes`` per epoch."""

    model_config = _CFG
    group: str
    """Reviewer group."""
    classes: list[str] = Field(min_length=1)
    """Classes the quota counts."""
    n: int = Field(ge=0)
    """Assignments per epoch (capped at what is achievable)."""


class CPSATParams(SolverParams):
    time_limit_s: float = Field(default=1.0, gt=0)
    """CP-SAT budget per epoch (deterministic time units when deterministic)."""
    deterministic: bool = True
    """Single worker with a seed fixed at bind time: same seed, same decisions."""
    max_diverted: MaxDiverted | None = None
    """Cap on specialists pulled onto other classes ({classes, groups, n, concurrent})."""
    min_coverage: dict[str, int] = Field(default_factory=dict)
    """Market -> at least this many assignments into its buckets per epoch (when work and
    eligible reviewers are there)."""
    team_quota: list[TeamQuota] = Field(default_factory=list)
    """[{group, classes, n}]: at least n assignments of a group into those classes."""
    verify_with_flow: bool = True
    """Solve the flow first and keep it when it already satisfies every side constraint
    (it is then optimal for the constrained model too); false: always call CP-SAT."""


@register
class CPSATPolicy(BatchSolver):
    """The flow's model plus side constraints, solved with CP-SAT (``solve_cpsat``).

    Rows merge reviewers at and below their wellbeing cap, so the cap becomes the side
    constraint "at most ``severe_remaining`` severe tasks per row" (members not at their
    cap; one task per reviewer per epoch). With ``verify_with_flow`` the flow is solved
    first (with the restrictions a flow can express exactly) and kept when it meets every
    side constraint: adding constraints can only lower the optimum, so a flow optimum that
    satisfies them is optimal for the constrained model too, and CP-SAT runs only in
    epochs where a constraint binds.
    Floors that are jointly unreachable are relaxed last-listed first (counted in
    ``floors_dropped``); if CP-SAT still finds nothing (time limit, model error) the flow
    solution trimmed to the hard upper bounds is used (``fallbacks``). Deterministic mode
    uses one worker and a seed drawn from the policy's stream at bind time, so the same
    run seed gives the same decisions.
    """

    name = "cpsat"
    summary = (
        "CP-SAT each epoch: the flow's value maximisation plus side constraints a flow cannot "
        "express (wellbeing caps, max specialists diverted, market coverage floors, team "
        "quotas); falls back to the flow solution if CP-SAT fails."
    )
    Params = CPSATParams
    split_cap = False

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        p = self.params
        self._seed = int(rng.integers(0, 2**31 - 1))
        self._relaxed = False
        cnames = sim.class_names
        gnames = [g.name for g in sim.groups]
        b_cls = self.builder.b_cls

        def class_idx(names: list[str], fld: str) -> np.ndarray:
            bad = set(names) - set(cnames)
            if bad:
                raise ConfigError(f"unknown classes {sorted(bad)}", field=f"policy cpsat: {fld}")
            return np.array(sorted(cnames.index(c) for c in names), dtype=np.int64)

        def group_idx(names: list[str], fld: str) -> np.ndarray:
            bad = set(names) - set(gnames)
            if bad:
                raise ConfigError(f"unknown groups {sorted(bad)}", field=f"policy cpsat: {fld}")
            return np.array(sorted(gnames.index(g) for g in names), dtype=np.int64)

        self._div = None
        if p.max_diverted is not None:
            md = p.max_diverted
            ci = class_idx(md.classes, "max_diverted.classes")
            kept = np.isin(b_cls, ci)
            if md.groups is None:
                gi = np.array(
                    [
                        g.index
                        for g in sim.groups
                        if (self.builder.group_mask[g.index] & kept).any()
                    ],
                    dtype=np.int64,
                )
            else:
                gi = group_idx(md.groups, "max_diverted.groups")
            self._div = (gi, set(ci.tolist()), md.n, md.concurrent)
        self._cov = []
        for m, n in p.min_coverage.items():
            if m not in sim.market_index:
                raise ConfigError(f"unknown market {m!r}", field="policy cpsat: min_coverage")
            if n < 0:
                raise ConfigError("must be non-negative", field=f"policy cpsat: min_coverage.{m}")
            self._cov.append((m, sim.market_index[m], int(n)))
        self._quota = []
        for k, q in enumerate(p.team_quota):
            gi = group_idx([q.group], f"team_quota.{k}.group")
            ci = class_idx(q.classes, f"team_quota.{k}.classes")
            self._quota.append((int(gi[0]), ci, q.n))
        self.stats.update(
            {
                "cpsat_calls": 0,
                "flow_verified": 0,
                "fallbacks": 0,
                "max_diverted_epoch": 0,
                "coverage_short": 0,
                "quota_short": 0,
                "floors_dropped": 0,
            }
        )

    # -- constraints of one epoch --------------------------------------------------------------
    def _allowance(self) -> int:
        gi, classes, n, concurrent = self._div
        if not concurrent:
            return n
        busy = 0
        for g in gi:
            for r in self.sim.groups[int(g)].members:
                cls = r.current_class
                if cls is not None and cls not in classes:
                    busy += 1
        return max(n - busy, 0)

    def constraints(self, ep: Epoch) -> SideConstraints:
        """The epoch's :class:`SideConstraints` over its rows and columns."""
        b = self.builder
        col_cls = b.b_cls[ep.col_bucket]
        col_market = b.b_market[ep.col_bucket]
        max_rb = []
        if self._div is not None:
            gi, classes, _, _ = self._div
            rm = np.isin(ep.row_group, gi)
            bm = ~np.isin(col_cls, sorted(classes))
            max_rb.append((rm, bm, self._allowance()))
        mins = [(col_market == mi, n) for _, mi, n in self._cov]
        quota = [(ep.row_group == g, np.isin(col_cls, ci), n) for g, ci, n in self._quota]
        return SideConstraints(
            severe_bucket=ep.col_severe,
            severe_remaining=ep.severe_remaining,
            max_rows_to_buckets=max_rb,
            min_assign_to_buckets=mins,
            row_group_quota=quota,
        )

    @staticmethod
    def _block(counts: np.ndarray, rm: np.ndarray, bm: np.ndarray) -> int:
        return int(counts[np.ix_(rm, bm)].sum()) if rm.any() and bm.any() else 0

    def satisfied(self, problem: AssignmentProblem, cons: SideConstraints, counts) -> bool:
        """Whether ``counts`` meets every side constraint (floors capped as CP-SAT caps them)."""
        sev = (counts[:, cons.severe_bucket]).sum(axis=1)
        if np.any(sev > cons.severe_remaining):
            return False
        for rm, bm, n in cons.max_rows_to_buckets:
            if self._block(counts, rm, bm) > n:
                return False
        for rm, bm, n in cons.floors(problem.n_rows):
            got = self._block(counts, rm, bm)
            if got >= n:
                continue
            if not (problem.eligible & np.outer(rm, bm)).any():
                continue
            reach = max_assignable(problem, rm, bm, cons.severe_bucket, cons.severe_remaining)
            if got < min(n, reach):
                return False
        return True

    def solve(self, ep: Epoch) -> np.ndarray:
        p = self.params
        st = self.stats
        problem = self.problem(ep)
        cons = self.constraints(ep)
        self._relaxed = False
        # Exact restrictions a flow can express: rows with nobody below the cap take no
        # severe work, and a spent diversion allowance closes the diverted arcs. Partial
        # allowances and floors are what needs CP-SAT.
        no_sev = ep.severe_remaining == 0
        flow_elig = ep.eligible & ~(no_sev[:, None] & ep.col_severe[None, :])
        for rm, bm, n in cons.max_rows_to_buckets:
            if n == 0:
                flow_elig = flow_elig & ~np.outer(rm, bm)
        flow_problem = AssignmentProblem(
            ep.value, flow_elig, ep.supply, ep.capacity, assign_all=p.work_conserving
        )
        flow = self._flow(flow_problem)
        if p.verify_with_flow and self.satisfied(problem, cons, flow):
            st["flow_verified"] += 1
            return flow
        while True:
            res = solve_cpsat(
                problem,
                cons,
                time_limit_s=p.time_limit_s,
                deterministic=p.deterministic,
                seed=self._seed,
                scale=p.scale,
            )
            st["cpsat_calls"] += 1
            st["solver_calls"] += 1
            st["solve_ms"] += res.solve_ms
            if res.ok:
                return res.counts
            if res.status != "INFEASIBLE" or not cons.floors(ep.n_rows):
                break
            # Floors that are reachable one by one but not together (two markets competing
            # for the same multi-market reviewers): give way from the last listed, team
            # quotas before market coverage. Without floors the model is always feasible.
            self._relaxed = True
            st["floors_dropped"] += 1
            if cons.row_group_quota:
                cons = replace(cons, row_group_quota=cons.row_group_quota[:-1])
            else:
                cons = replace(cons, min_assign_to_buckets=cons.min_assign_to_buckets[:-1])
        st["fallbacks"] += 1
        return self._trim(ep, flow, cons)

    def _trim(self, ep: Epoch, counts: np.ndarray, cons: SideConstraints) -> np.ndarray:
        """Make a fallback flow solution respect every *upper* bound (caps, diversion).

        Floors and quotas may be missed in a fallback; hard limits never are. Assignments
        are dropped lowest value first; the reviewers stay free until the next epoch.
        """
        counts = counts.copy()

        def drop(sel: np.ndarray, excess: int) -> None:
            arcs = np.argwhere(sel & (counts > 0))
            order = np.argsort(ep.value[arcs[:, 0], arcs[:, 1]], kind="stable")
            for i, c in arcs[order]:
                if excess <= 0:
                    return
                k = min(int(counts[i, c]), excess)
                counts[i, c] -= k
                excess -= k

        for i in range(ep.n_rows):
            sel = np.zeros_like(ep.eligible)
            sel[i, cons.severe_bucket] = True
            drop(sel, int(counts[i, cons.severe_bucket].sum() - cons.severe_remaining[i]))
        for rm, bm, n in cons.max_rows_to_buckets:
            drop(np.outer(rm, bm), self._block(counts, rm, bm) - n)
        return counts

    def after(self, ep: Epoch, counts: np.ndarray, pairs: list[tuple[Reviewer, int]]) -> None:
        """Record the realised per-epoch side-constraint counts (for tests and reports)."""
        st = self.stats
        b = self.builder
        if self._div is not None:
            gi, classes, _, _ = self._div
            gset = set(gi.tolist())
            div = sum(1 for r, bi in pairs if r.group.index in gset and b.b_cls[bi] not in classes)
            st["max_diverted_epoch"] = max(st["max_diverted_epoch"], div)
        if not (self._cov or self._quota) or self._relaxed:
            # Shortfalls are only counted when every floor was kept (a relaxed epoch had
            # floors that were not jointly achievable).
            return
        cons = self.constraints(ep)
        real = np.zeros_like(counts)
        row_of = {r.id: i for i, ms in enumerate(ep.members) for r in ms}
        col_of_bucket = {}
        for c, bi in enumerate(ep.col_bucket.tolist()):
            col_of_bucket.setdefault(bi, c)
        for r, bi in pairs:
            real[row_of[r.id], col_of_bucket[bi]] += 1
        problem = self.problem(ep)
        for rm, bm, n in cons.floors(ep.n_rows)[: len(self._cov)]:
            got = self._block(real, rm, bm)
            if got < n and (problem.eligible & np.outer(rm, bm)).any():
                reach = max_assignable(problem, rm, bm, cons.severe_bucket, cons.severe_remaining)
                st["coverage_short"] += int(got < min(n, reach))
        for rm, bm, n in cons.floors(ep.n_rows)[len(self._cov) :]:
            got = self._block(real, rm, bm)
            if got < n and (problem.eligible & np.outer(rm, bm)).any():
                reach = max_assignable(problem, rm, bm, cons.severe_bucket, cons.severe_remaining)
                st["quota_short"] += int(got < min(n, reach))
