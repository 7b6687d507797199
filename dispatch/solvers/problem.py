"""Problem and result containers for one batch-dispatch epoch.

The optimisation layer is deliberately independent of the simulator: a dispatcher
turns its state (free reviewers, waiting tasks) into plain numpy arrays, calls a
solver, and turns the returned count matrix back into concrete hand-outs. Keeping
the boundary at numpy arrays means the solvers can be tested exhaustively on tiny
instances and benchmarked without spinning up a simulation.

Shapes used throughout:

* ``R`` rows. A row stands for ``supply[r]`` *identical* reviewers (same
  eligibility, same value for every bucket). Aggregating identical reviewers keeps
  the flow network small; a row with ``supply == 1`` is an individual reviewer.
* ``B`` buckets. A bucket holds ``capacity[b]`` interchangeable tasks (same class x
  market x risk band), so the solver only has to decide *how many* tasks of each
  bucket go to each row, not which ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["SCALE", "AssignmentProblem", "AssignmentResult", "aggregate_rows", "big_m"]

SCALE = 1000.0
"""Default integer resolution of every solver: a value ``v`` (in objective units, 1 = one
SLA breach) becomes the integer ``round(v * SCALE)``, i.e. values are resolved to a
thousandth of an objective unit. The min-cost flow, the assignment and CP-SAT share it, so
one problem gives one integer objective whichever solver runs it; the batch policies pass
their ``solver.scale`` parameter, whose default is this constant."""


def _as_int_vector(name: str, arr: object, length: int, length_name: str) -> np.ndarray:
    """Coerce ``arr`` to a non-negative int64 vector of a given length or raise.

    Floats are accepted only if they are integral, because silently truncating
    ``2.7`` reviewers to ``2`` would hide an upstream bug.
    """
    a = np.asarray(arr)
    if a.ndim != 1 or a.shape[0] != length:
        raise ValueError(
            f"{name} must have shape ({length_name},) = ({length},), got shape {a.shape}"
        )
    if a.size and not np.issubdtype(a.dtype, np.integer):
        if a.dtype == bool or not np.issubdtype(a.dtype, np.floating):
            raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must contain whole numbers, got non-integral values")
    a = a.astype(np.int64, copy=True)
    if a.size and a.min() < 0:
        bad = int(np.flatnonzero(a < 0)[0])
        raise ValueError(f"{name} must be non-negative, got {name}[{bad}] = {a[bad]}")
    return a


@dataclass(frozen=True)
class AssignmentProblem:
    """One batch epoch: match free reviewer rows to task buckets.

    Attributes:
        value: float ``(R, B)``; value of handing one task of bucket ``b`` to one
            reviewer of row ``r``. Higher is better; negative means "not worth doing"
            (e.g. the expected mis-decision cost exceeds the backlog relief).
        eligible: bool ``(R, B)``; hard skill/language/clearance gate. Ineligible
            arcs are never used, whatever their value.
        supply: int ``(R,)``; number of identical reviewers row ``r`` stands for.
            Defaults to ones (one row per reviewer).
        capacity: int ``(B,)``; number of tasks waiting in bucket ``b``. Defaults
            to ones, i.e. every column is a single task (the unbucketed problem).
        assign_all: work-conserving mode. If True the solvers first maximise the
            *number* of assignments and only then the total value (lexicographic),
            so an idle reviewer with any eligible task always gets one even at a
            negative value. This is implemented by adding a big constant ``M`` (see
            :func:`big_m`) to every eligible arc value: one extra assignment is then
            worth more than any possible difference in total value, so maximising
            ``sum((value + M) * counts)`` is exactly the lexicographic objective.
            If False (default), only arcs with positive value are used and
            reviewers may be left idle.

    Inputs are copied and validated in ``__post_init__``; invalid shapes or
    negative counts raise ``ValueError`` naming the offending field, because a
    silently broadcast value matrix would produce plausible-looking but wrong
    dispatch decisions.
    """

    value: np.ndarray
    eligible: np.ndarray
    supply: np.ndarray | None = None
    capacity: np.ndarray | None = None
    assign_all: bool = False

    def __post_init__(self) -> None:
        value = np.asarray(self.value)
        if value.ndim != 2:
            raise ValueError(f"value must be a 2-D (R, B) array, got shape {value.shape}")
        if value.size and not np.issubdtype(value.dtype, np.number):
            raise ValueError(f"value must be numeric, got dtype {value.dtype}")
        value = value.astype(np.float64, copy=True)
        if not np.all(np.isfinite(value)):
            raise ValueError("value must be finite (no NaN/inf); mask pairs with eligible instead")
        n_rows, n_buckets = value.shape

        eligible = np.asarray(self.eligible)
        if eligible.shape != value.shape:
            raise ValueError(
                f"eligible must have the same shape as value (R, B) = {value.shape}, "
                f"got shape {eligible.shape}"
            )
        if eligible.dtype != bool:
            if eligible.size and not np.all(np.isin(eligible, (0, 1))):
                raise ValueError("eligible must be boolean (or 0/1)")
            eligible = eligible.astype(bool)
        else:
            eligible = eligible.copy()

        if self.supply is None:
            supply = np.ones(n_rows, dtype=np.int64)
        else:
            supply = _as_int_vector("supply", self.supply, n_rows, "R")
        if self.capacity is None:
            capacity = np.ones(n_buckets, dtype=np.int64)
        else:
            capacity = _as_int_vector("capacity", self.capacity, n_buckets, "B")

        for arr in (value, eligible, supply, capacity):
            arr.setflags(write=False)
        object.__setattr__(self, "value", value)
        object.__setattr__(self, "eligible", eligible)
        object.__setattr__(self, "supply", supply)
        object.__setattr__(self, "capacity", capacity)
        object.__setattr__(self, "assign_all", bool(self.assign_all))

    @property
    def n_rows(self) -> int:
        """Number of reviewer rows ``R``."""
        return int(self.value.shape[0])

    @property
    def n_buckets(self) -> int:
        """Number of task buckets ``B``."""
        return int(self.value.shape[1])

    def objective(self, counts: np.ndarray) -> float:
        """Total value ``sum(value * counts)`` of a count matrix (without big M)."""
        return float(np.sum(self.value * counts))

    def check_counts(self, counts: np.ndarray) -> None:
        """Raise ``ValueError`` if ``counts`` violates eligibility, supply or capacity.

        Solvers call this on their own output as a cheap guard: a bug there would
        otherwise surface as a reviewer doing two tasks at once in the simulator.
        """
        counts = np.asarray(counts)
        if counts.shape != self.value.shape:
            raise ValueError(f"counts must have shape {self.value.shape}, got {counts.shape}")
        if counts.size == 0:
            return
        if counts.min() < 0:
            raise ValueError("counts must be non-negative")
        if np.any(counts[~self.eligible] != 0):
            raise ValueError("counts use an ineligible (row, bucket) arc")
        if np.any(counts.sum(axis=1) > self.supply):
            raise ValueError("counts exceed a row's supply")
        if np.any(counts.sum(axis=0) > self.capacity):
            raise ValueError("counts exceed a bucket's capacity")


@dataclass(frozen=True)
class AssignmentResult:
    """Solver output for one epoch.

    Attributes:
        counts: int ``(R, B)``; how many of row ``r``'s reviewers take a task from
            bucket ``b``. Zero everywhere if no solution was found.
        objective: ``sum(value * counts)`` in the problem's original float units
            (never includes the big-M term or integer scaling).
        status: solver status name, e.g. ``'OPTIMAL'``, ``'FEASIBLE'``,
            ``'INFEASIBLE'``, ``'BAD_COST_RANGE'``.
        solve_ms: wall-clock milliseconds for model construction *and* solve, i.e.
            what the dispatcher actually pays per epoch.
        extra: solver-specific diagnostics (e.g. ``n_arcs``, ``n_vars``,
            ``big_m``, ``best_bound``) for logging; not part of the contract.
    """

    counts: np.ndarray
    objective: float
    status: str
    solve_ms: float
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def n_assigned(self) -> int:
        """Total number of assignments in ``counts``."""
        return int(self.counts.sum())

    @property
    def ok(self) -> bool:
        """True if ``counts`` is a usable solution (optimal or feasible)."""
        return self.status in ("OPTIMAL", "FEASIBLE")


def big_m(scaled_abs_max: int, max_assignments: int) -> int:
    """Return the big constant ``M`` that makes an objective lexicographic.

    With ``K = max_assignments`` and every scaled arc value in ``[-V, V]``
    (``V = scaled_abs_max``), two feasible solutions differ in total value by at
    most ``2 * K * V``. Any ``M > 2 * K * V`` therefore guarantees that a solution
    with one more assignment beats any solution with fewer, whatever the values:
    ``(k+1) M - K V > k M + K V``. Ties in the count are then broken by value,
    which is exactly the lexicographic (count, value) order.

    The price is larger integer costs; min-cost flow multiplies costs by roughly
    the number of nodes internally, so callers should keep ``scale`` moderate in
    work-conserving mode (the solvers report ``BAD_COST_RANGE`` if it overflows).
    """
    return 2 * int(max_assignments) * int(scaled_abs_max) + 1


def aggregate_rows(
    value: np.ndarray, eligible: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Merge reviewers with identical ``(eligible, value)`` rows.

    Returns ``(value_u, eligible_u, supply_u, inverse)`` where ``inverse[i]`` is
    the aggregated row of reviewer ``i``. Identical reviewers are interchangeable
    for the optimiser, so solving on the aggregated rows gives the same optimum
    with fewer arcs; the dispatcher hands each row's ``counts`` out to the
    reviewers ``np.flatnonzero(inverse == r)`` in any order.
    """
    value = np.asarray(value, dtype=np.float64)
    eligible = np.asarray(eligible, dtype=bool)
    if value.shape != eligible.shape or value.ndim != 2:
        raise ValueError(
            f"value and eligible must be 2-D with equal shapes, got {value.shape}, {eligible.shape}"
        )
    # Ineligible entries must not split otherwise identical rows.
    key = np.concatenate([np.where(eligible, value, 0.0), eligible.astype(np.float64)], axis=1)
    _, first, inverse, counts = np.unique(
        key, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.reshape(-1)
    return (
        value[first].copy(),
        eligible[first].copy(),
        counts.astype(np.int64),
        inverse.astype(np.int64),
    )
