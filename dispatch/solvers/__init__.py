"""Pure optimisation layer for batch dispatch: numpy arrays in, numpy arrays out.

No simulator imports on purpose: dispatch policies build an
:class:`AssignmentProblem` from their state, call a solver and apply the returned
count matrix, so the solvers can be tested and benchmarked in isolation.

* :func:`solve_min_cost_flow` -- exact bucketed assignment, milliseconds; the
  default for every epoch without cross-cutting constraints.
* :func:`solve_cpsat` -- the same model plus :class:`SideConstraints`
  (wellbeing caps, diversion caps, coverage floors, team quotas).
* :func:`solve_linear_assignment` / :func:`expand_buckets` -- exact per-task
  reference used to validate bucketing and as an unbucketed baseline.
"""

from .cpsat import SideConstraints, max_assignable, solve_cpsat
from .exact import assignment_objective, expand_buckets, solve_linear_assignment
from .flow import arc_gains, solve_min_cost_flow, solve_transport
from .problem import SCALE, AssignmentProblem, AssignmentResult, aggregate_rows, big_m

__all__ = [
    "SCALE",
    "AssignmentProblem",
    "AssignmentResult",
    "SideConstraints",
    "aggregate_rows",
    "arc_gains",
    "assignment_objective",
    "big_m",
    "expand_buckets",
    "max_assignable",
    "solve_cpsat",
    "solve_linear_assignment",
    "solve_min_cost_flow",
    "solve_transport",
]
