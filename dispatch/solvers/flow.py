"""Bucketed batch assignment as a min-cost flow (OR-Tools ``SimpleMinCostFlow``).

Why a flow: without side constraints, "how many tasks of each bucket go to each
reviewer row" is a transportation problem. Its constraint matrix is totally
unimodular, so the min-cost flow optimum is integral and *exactly* the optimal
integer assignment -- no MIP needed, and OR-Tools' cost-scaling push-relabel
solves thousands of arcs in milliseconds. Bucketing (class x market x risk band)
is what keeps the network small: 1,000 reviewers x 60 buckets is 60k arcs instead
of 1,000 x 10,000 = 10M potential reviewer-task pairs.

Network (node ids)::

    source(0) --[cap supply_r, cost 0]--> row r (1..R)
    row r --[cap min(supply_r, capacity_b), cost -gain_rb]--> bucket b (R+1..R+B)
    bucket b --[cap capacity_b, cost 0]--> sink (R+B+1)
    source --[cap sum(supply), cost 0]--> sink          (bypass: "stay idle")

The source supplies ``sum(supply)`` units and the sink absorbs the same, so the
instance is always balanced and feasible; reviewers that are not worth assigning
route through the bypass at zero cost.

Integer scaling: OR-Tools flows need integer costs, so a float value ``v`` becomes
``gain = round(v * scale)``. With the default ``scale=SCALE`` (1e3, shared with
CP-SAT and the assignment: :data:`dispatch.solvers.problem.SCALE`) values are resolved
to 1e-3; two solutions whose true values differ by less than about
``n_assigned * 0.5 / scale`` may be ranked in the wrong order, and values below
``0.5 / scale`` round to zero and are treated as "not worth doing". The reported
``objective`` is always recomputed from the original float values.
"""

from __future__ import annotations

import time

import numpy as np
from ortools.graph.python import min_cost_flow

from .problem import SCALE, AssignmentProblem, AssignmentResult, big_m

__all__ = ["arc_gains", "solve_min_cost_flow", "solve_transport"]


def arc_gains(
    problem: AssignmentProblem, scale: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Sparse list of usable arcs and their integer gains under the objective mode.

    Returns ``(rows, cols, gain, M)``: the usable arcs (positive scaled value when
    ``assign_all`` is False, every eligible arc otherwise), their int64 objective
    coefficients ``round(value * scale)`` (plus ``M`` in work-conserving mode) and
    the big constant ``M`` used (0 if none).

    Shared by the flow and CP-SAT back-ends so both optimise the same integer
    objective and can be compared exactly in tests. Working on the arc list
    rather than the dense ``(R, B)`` matrix keeps the unbucketed 1,000 x 10,000
    case from paying for several passes over 10M cells.
    """
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    rows, cols = np.nonzero(problem.eligible)
    gain = np.rint(problem.value[rows, cols] * scale)
    if gain.size and np.abs(gain).max() > 2**53:
        raise ValueError(
            f"value * scale exceeds 2**53 (max |value| = {np.abs(problem.value).max():.3g}); "
            "use a smaller scale"
        )
    gain = gain.astype(np.int64)
    if not problem.assign_all:
        keep = gain > 0
        return rows[keep], cols[keep], gain[keep], 0
    vmax = int(np.abs(gain).max()) if gain.size else 0
    k = int(min(problem.supply.sum(), problem.capacity.sum()))
    m = big_m(vmax, k)
    return rows, cols, gain + m, m


def solve_transport(
    supply: np.ndarray,
    capacity: np.ndarray,
    arc_rows: np.ndarray,
    arc_cols: np.ndarray,
    arc_gain: np.ndarray,
    arc_cap: np.ndarray | None = None,
) -> tuple[np.ndarray, str]:
    """Maximise ``sum(gain * flow)`` over a sparse bipartite transport network.

    This is the sparse core shared by :func:`solve_min_cost_flow` (bucketed
    rows x buckets) and :func:`dispatch.solvers.exact.solve_linear_assignment`
    (reviewers x individual tasks, unit supplies/capacities). Arcs are given as
    parallel int arrays so the network is built with one vectorised
    ``add_arcs_with_capacity_and_unit_cost`` call -- a Python loop over 2M arcs
    would cost seconds on its own.

    Args:
        supply: int ``(R,)`` units available at each row.
        capacity: int ``(C,)`` units each column can absorb.
        arc_rows, arc_cols: int ``(A,)`` endpoints of each usable arc.
        arc_gain: int64 ``(A,)`` gain per unit of flow (maximised).
        arc_cap: int ``(A,)`` per-arc capacity; defaults to
            ``min(supply[row], capacity[col])``.

    Returns:
        ``(flow, status)`` with ``flow`` the int64 ``(A,)`` flow per arc (zeros
        unless the status is ``'OPTIMAL'``) and the OR-Tools status name.
    """
    supply = np.asarray(supply, dtype=np.int64)
    capacity = np.asarray(capacity, dtype=np.int64)
    arc_rows = np.asarray(arc_rows, dtype=np.int32)
    arc_cols = np.asarray(arc_cols, dtype=np.int32)
    arc_gain = np.asarray(arc_gain, dtype=np.int64)
    n_arcs = arc_rows.shape[0]
    if n_arcs == 0 or supply.sum() == 0 or capacity.sum() == 0:
        return np.zeros(n_arcs, dtype=np.int64), "OPTIMAL"
    if arc_cap is None:
        arc_cap = np.minimum(supply[arc_rows], capacity[arc_cols])
    arc_cap = np.asarray(arc_cap, dtype=np.int64)

    n_rows, n_cols = supply.shape[0], capacity.shape[0]
    source, sink = 0, n_rows + n_cols + 1
    row_nodes = np.arange(1, n_rows + 1, dtype=np.int32)
    col_nodes = np.arange(n_rows + 1, n_rows + n_cols + 1, dtype=np.int32)
    total = int(supply.sum())

    # Arc order: [row->col arcs | source->row | col->sink | bypass]; the first
    # block comes first so its flows are read back with a single arange.
    tails = np.concatenate(
        [
            arc_rows + 1,
            np.full(n_rows, source, dtype=np.int32),
            col_nodes,
            np.array([source], dtype=np.int32),
        ]
    ).astype(np.int32)
    heads = np.concatenate(
        [
            arc_cols + n_rows + 1,
            row_nodes,
            np.full(n_cols, sink, dtype=np.int32),
            np.array([sink], dtype=np.int32),
        ]
    ).astype(np.int32)
    caps = np.concatenate([arc_cap, supply, capacity, np.array([total], dtype=np.int64)])
    costs = np.concatenate([-arc_gain, np.zeros(n_rows + n_cols + 1, dtype=np.int64)]).astype(
        np.int64
    )

    smcf = min_cost_flow.SimpleMinCostFlow()
    smcf.add_arcs_with_capacity_and_unit_cost(tails, heads, caps, costs)
    smcf.set_nodes_supplies(
        np.array([source, sink], dtype=np.int32), np.array([total, -total], dtype=np.int64)
    )
    status = smcf.solve()
    name = status.name
    if status != smcf.OPTIMAL:
        return np.zeros(n_arcs, dtype=np.int64), name
    flow = np.asarray(smcf.flows(np.arange(n_arcs, dtype=np.int32)), dtype=np.int64)
    return flow, name


def solve_min_cost_flow(problem: AssignmentProblem, scale: float = SCALE) -> AssignmentResult:
    """Optimal bucketed assignment for one epoch via min-cost flow.

    Maximises ``sum(value * counts)`` over usable arcs (positive-value eligible
    arcs, or every eligible arc lexicographically after the assignment count when
    ``problem.assign_all``), subject to row supplies and bucket capacities. Exact
    up to the integer scaling described in the module docstring.

    Args:
        problem: the epoch to solve.
        scale: multiplier applied to values before rounding to integer costs.

    Returns:
        An :class:`AssignmentResult`; ``status`` is ``'OPTIMAL'`` on success. A
        ``'BAD_COST_RANGE'`` status (zero counts) means ``value * scale`` plus the
        big-M term overflowed OR-Tools' internal cost scaling: lower ``scale``.
    """
    t0 = time.perf_counter()
    rows, cols, gain, m = arc_gains(problem, scale)
    flow, status = solve_transport(problem.supply, problem.capacity, rows, cols, gain)
    counts = np.zeros(problem.value.shape, dtype=np.int64)
    counts[rows, cols] = flow
    # Cheap sparse sanity check: a violated supply would mean a reviewer doing
    # two tasks at once downstream, so fail loudly rather than dispatch it.
    n_rows, n_buckets = problem.value.shape
    if np.any(np.bincount(rows, flow, n_rows) > problem.supply) or np.any(
        np.bincount(cols, flow, n_buckets) > problem.capacity
    ):
        raise RuntimeError(f"min-cost flow returned an infeasible assignment (status {status})")
    objective = float(np.dot(problem.value[rows, cols], flow))
    elapsed = (time.perf_counter() - t0) * 1e3
    return AssignmentResult(
        counts=counts,
        objective=objective,
        status=status,
        solve_ms=elapsed,
        extra={"n_arcs": float(rows.shape[0]), "big_m": float(m)},
    )
