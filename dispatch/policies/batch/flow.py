"""OR-Tools optimisers as batch dispatch policies: ``flow`` and ``lsa`` here, ``cpsat`` in
:mod:`dispatch.policies.batch.cpsat`.

All three solve the same problem each epoch -- give the free reviewers the waiting tasks
that maximise the total value of :mod:`dispatch.policies.batch.value` (its docstring has
the formula and the aggregation) -- and differ in how:

* ``flow``: tasks aggregated into (bucket x urgency band x severe) columns, identical
  reviewers into rows; a min-cost flow (exact for that aggregated problem, milliseconds).
* ``lsa``: one column per task over the first ``max_tasks_per_bucket`` tasks of each
  bucket, one row per reviewer; the exact per-task optimum of the value model within that
  window (a unit-capacity min-cost flow, see :func:`dispatch.solvers.solve_linear_assignment`).
  Meant for small instances and as the reference the bucketed flow is checked against.
* ``cpsat``: the ``flow`` model plus side constraints a flow cannot express (wellbeing
  caps of merged rows, diversion caps, market coverage floors, team quotas) with CP-SAT.

Every policy is ``mode = PolicyMode.BATCH``: every ``epoch.interval`` minutes, and with
``epoch.on_demand`` also at the instant a task arrives or a reviewer frees up, the simulator
hands over all free reviewers. The simulator then starts, for each returned (reviewer,
bucket) pair, the oldest task of that bucket, so how the solver's counts become pairs
matters; see :func:`~dispatch.policies.batch.realise.realise`. The parameters are grouped
in :mod:`dispatch.policies.batch.params`.

The ``reserve`` parameter is the rules' trunk reservation (:class:`~dispatch.policies.rules.Reservation`): per
reserved group, the ``k`` least fatigued free reviewers may only take protected work
unless the unprotected backlog exceeds the threshold.
"""

from __future__ import annotations

import numpy as np

from dispatch.policies.batch.epoch import Epoch
from dispatch.policies.batch.params import LSAParams
from dispatch.policies.batch.solver import BatchSolver
from dispatch.policies.registry import register
from dispatch.solvers import solve_linear_assignment

__all__ = ["FlowPolicy", "LSAPolicy"]


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
        return self.params.aggregation.max_tasks_per_bucket

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
            assign_all=self.params.solver.work_conserving,
            scale=self.params.solver.scale,
        )
        self.stats["solver_calls"] += 1
        counts = np.zeros(ep.value.shape, dtype=np.int64)
        used = choice >= 0
        np.add.at(counts, (row_of[used], choice[used]), 1)
        return counts
