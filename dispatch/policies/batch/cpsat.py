"""``cpsat``: the flow's model plus side constraints, solved with OR-Tools CP-SAT.

The side constraints (``constraints.*`` parameters, :class:`~dispatch.policies.batch.params.CPSATConstraints`)
are what a min-cost flow cannot express: wellbeing caps of rows that merge reviewers at and
below their cap, a cap on specialists diverted to other classes, market coverage floors and
team quotas. See :mod:`dispatch.policies.batch.flow` for the shared pipeline.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from dispatch.errors import ConfigError
from dispatch.policies.batch.epoch import Epoch
from dispatch.policies.batch.params import CPSATParams, MaxDiverted
from dispatch.policies.batch.solver import BatchSolver
from dispatch.policies.registry import register
from dispatch.solvers import AssignmentProblem, SideConstraints, max_assignable, solve_cpsat

if TYPE_CHECKING:
    from dispatch.layout import Layout
    from dispatch.model import Reviewer

__all__ = ["CPSATPolicy"]


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
        self._seed = int(rng.integers(0, 2**31 - 1))
        self._relaxed = False
        lay = sim.layout
        c = self.params.constraints
        self._div = _diversion(lay, c.max_diverted)
        self._cov = []
        for m, n in c.min_coverage.items():
            if m not in lay.market_index:
                raise ConfigError(f"unknown market {m!r}", field=f"{_FIELD}.min_coverage")
            if n < 0:
                raise ConfigError("must be non-negative", field=f"{_FIELD}.min_coverage.{m}")
            self._cov.append((m, lay.market_index[m], int(n)))
        self._quota = []
        for k, q in enumerate(c.team_quota):
            gi = _group_idx(lay, [q.group], f"team_quota.{k}.group")
            ci = _class_idx(lay, q.classes, f"team_quota.{k}.classes")
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
        p = self.params.solver
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


_FIELD = "policy cpsat: constraints"


def _class_idx(lay: Layout, names: list[str], fld: str) -> np.ndarray:
    bad = set(names) - set(lay.class_names)
    if bad:
        raise ConfigError(f"unknown classes {sorted(bad)}", field=f"{_FIELD}.{fld}")
    return np.array(sorted(lay.class_names.index(c) for c in names), dtype=np.int64)


def _group_idx(lay: Layout, names: list[str], fld: str) -> np.ndarray:
    gnames = [g.name for g in lay.groups]
    bad = set(names) - set(gnames)
    if bad:
        raise ConfigError(f"unknown groups {sorted(bad)}", field=f"{_FIELD}.{fld}")
    return np.array(sorted(gnames.index(g) for g in names), dtype=np.int64)


def _diversion(lay: Layout, md: MaxDiverted | None) -> tuple | None:
    """(groups, kept classes, n, concurrent) of ``max_diverted``, or ``None``."""
    if md is None:
        return None
    ci = _class_idx(lay, md.classes, "max_diverted.classes")
    kept = np.isin(lay.b_cls, ci)
    if md.groups is None:
        gi = np.array(
            [g.index for g in lay.groups if (lay.group_mask[g.index] & kept).any()],
            dtype=np.int64,
        )
    else:
        gi = _group_idx(lay, md.groups, "max_diverted.groups")
    return (gi, set(ci.tolist()), md.n, md.concurrent)
