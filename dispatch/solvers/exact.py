"""Exact per-task assignment (no bucketing) and the bucket -> task expansion.

This is the reference the bucketed solvers are checked against: every reviewer
gets at most one concrete task, every task at most one reviewer, and the total
value of positive-value eligible pairs is maximised.

Why min-cost flow and not ``linear_sum_assignment``: OR-Tools'
``SimpleLinearSumAssignment`` requires a *perfect* matching of the left side and
fails with ``INFEASIBLE`` on rectangular or sparse instances, which are exactly
ours (1,000 reviewers, 10,000 tasks, 20% eligibility, reviewers allowed to stay
idle). Padding it with dummy nodes doubles the problem; a unit-capacity
min-cost flow with a bypass arc (:func:`dispatch.solvers.flow.solve_transport`)
handles all of that directly and is exact (integral by total unimodularity) up
to the integer scaling of values (see :mod:`dispatch.solvers.flow`).
"""

from __future__ import annotations

import numpy as np

from .flow import solve_transport
from .problem import SCALE, AssignmentProblem, big_m

__all__ = ["assignment_objective", "expand_buckets", "solve_linear_assignment"]


def solve_linear_assignment(
    value: np.ndarray,
    eligible: np.ndarray,
    *,
    assign_all: bool = False,
    scale: float = SCALE,
) -> np.ndarray:
    """Optimal one-to-one reviewer -> task assignment.

    Args:
        value: float ``(R, T)`` value of reviewer ``r`` doing task ``t``.
        eligible: bool ``(R, T)``; ineligible pairs are never used.
        assign_all: if True, maximise the number of assigned reviewers first and
            value second (big-M, as in :class:`AssignmentProblem`); if False only
            pairs with positive (scaled) value are used.
        scale: values are rounded to integers as ``round(value * scale)``.

    Returns:
        int64 ``(R,)``: the task index for each reviewer, or ``-1`` if idle.

    Raises:
        ValueError: on shape mismatches or non-finite eligible values.
        RuntimeError: if the flow solver fails (e.g. ``BAD_COST_RANGE`` when
            ``scale`` is so large that integer costs overflow).
    """
    value = np.asarray(value, dtype=np.float64)
    eligible = np.asarray(eligible, dtype=bool)
    if value.ndim != 2:
        raise ValueError(f"value must be a 2-D (R, T) array, got shape {value.shape}")
    if eligible.shape != value.shape:
        raise ValueError(
            f"eligible must have the same shape as value (R, T) = {value.shape}, "
            f"got shape {eligible.shape}"
        )
    if not np.all(np.isfinite(value[eligible])):
        raise ValueError("value must be finite on eligible pairs")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    n_rows, n_tasks = value.shape
    assignment = np.full(n_rows, -1, dtype=np.int64)
    if n_rows == 0 or n_tasks == 0:
        return assignment

    # Work on the sparse arc list only: touching the dense (R, T) matrix more
    # than once costs more than the flow solve itself at 1,000 x 10,000.
    rows, cols = np.nonzero(eligible)
    gain = np.rint(value[rows, cols] * scale)
    if gain.size and np.abs(gain).max() > 2**53:
        raise ValueError("value * scale exceeds 2**53; use a smaller scale")
    gain = gain.astype(np.int64)
    if assign_all:
        if gain.size:
            gain += big_m(int(np.abs(gain).max()), min(n_rows, n_tasks))
    else:
        keep = gain > 0
        rows, cols, gain = rows[keep], cols[keep], gain[keep]

    flow, status = solve_transport(
        np.ones(n_rows, dtype=np.int64),
        np.ones(n_tasks, dtype=np.int64),
        rows,
        cols,
        gain,
        np.ones(rows.shape[0], dtype=np.int64),
    )
    if status != "OPTIMAL":
        raise RuntimeError(f"min-cost flow failed with status {status}; try a smaller scale")
    used = flow > 0
    assignment[rows[used]] = cols[used]
    return assignment


def assignment_objective(value: np.ndarray, assignment: np.ndarray) -> float:
    """Total value of an assignment vector from :func:`solve_linear_assignment`."""
    assignment = np.asarray(assignment)
    rows = np.flatnonzero(assignment >= 0)
    return float(np.asarray(value)[rows, assignment[rows]].sum())


def expand_buckets(problem: AssignmentProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expand a bucketed problem into the equivalent per-reviewer, per-task one.

    Each bucket ``b`` becomes ``capacity[b]`` identical task columns and each row
    ``r`` becomes ``supply[r]`` identical reviewer rows. The bucketed flow and
    the exact per-task assignment on the expansion must have the same optimum;
    tests use this to validate the aggregation.

    Returns:
        ``(value_RT, eligible_RT, task_bucket)`` where ``task_bucket[t]`` is the
        bucket of expanded task ``t``. Expanded reviewer ``i`` belongs to row
        ``np.repeat(np.arange(R), supply)[i]``.
    """
    row_of = np.repeat(np.arange(problem.n_rows), problem.supply)
    task_bucket = np.repeat(np.arange(problem.n_buckets), problem.capacity)
    value_rt = problem.value[np.ix_(row_of, task_bucket)]
    eligible_rt = problem.eligible[np.ix_(row_of, task_bucket)]
    return value_rt, eligible_rt, task_bucket
