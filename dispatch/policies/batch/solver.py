"""The epoch pipeline every batch optimiser shares: rows -> scan -> columns -> solve -> realise."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.policies.base import Policy, PolicyMode, with_work
from dispatch.policies.batch.epoch import Epoch, EpochBuilder
from dispatch.policies.batch.params import SolverParams
from dispatch.policies.batch.realise import realise
from dispatch.solvers import AssignmentProblem, solve_min_cost_flow

if TYPE_CHECKING:
    from dispatch.model import Reviewer

__all__ = ["BatchSolver"]


class BatchSolver(Policy):
    """Shared epoch pipeline: rows -> bounded scan -> columns -> solve -> realise.

    Subclasses set ``split_cap`` / ``per_task`` and implement :meth:`solve`. ``stats`` counts
    epochs, assignments, solver calls and shortcuts (single free reviewer: the optimum is
    the best column, no solver needed) for diagnostics and tests.
    """

    mode = PolicyMode.BATCH
    Params = SolverParams
    split_cap = True
    per_task = False

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.batch_interval = float(self.params.epoch.interval)
        self.on_demand = bool(self.params.epoch.on_demand)
        self.stats: dict[str, float] = {}

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        self.builder = EpochBuilder(sim.layout, self.params).bind(sim)
        self.stats = {
            "epochs": 0,
            "assigned": 0,
            "shortcuts": 0,
            "solver_calls": 0,
            "solve_ms": 0.0,
            "dropped": 0,
        }
        if self.params.reserve is not None:
            self.builder.set_reservation(self.params.reserve)

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
        return self.params.aggregation.scan_limit

    def problem(self, ep: Epoch) -> AssignmentProblem:
        return AssignmentProblem(
            ep.value,
            ep.eligible,
            ep.supply,
            ep.capacity,
            assign_all=self.params.solver.work_conserving,
        )

    def solve(self, ep: Epoch) -> np.ndarray:
        raise NotImplementedError

    def sort_key(self, ep: Epoch) -> np.ndarray:
        """Queue order of a column's reviewers within its bucket: most urgent band first."""
        return ep.col_band

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        st = self.stats
        st["epochs"] += 1
        keep = with_work(self.sim, reviewers)
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
        gain = np.rint(problem.value[i] * self.params.solver.scale)
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
        scale = self.params.solver.scale
        for _ in range(3):
            res = solve_min_cost_flow(problem, scale=scale)
            self.stats["solver_calls"] += 1
            self.stats["solve_ms"] += res.solve_ms
            if res.status == "OPTIMAL":
                return res.counts
            scale /= 100.0
        raise RuntimeError(f"min-cost flow failed: {res.status}")

    def describe(self) -> str:
        """``name(key=value, ...)`` over the flat parameter keys of earlier releases, so the
        ``policy`` label of results stays as recorded (see ``SolverParams.flat``)."""
        flat = self.params.flat()
        return f"{self.name}({', '.join(f'{k}={v}' for k, v in flat.items())})"
