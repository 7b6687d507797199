"""Exact optimal control of small exponential queueing networks (``dispatch optimum``).

``solve_optimum(scenario) -> OptimumResult``: the optimal long-run average holding cost per
minute (the ``holding_cost`` metric) and an optimal policy table, by policy iteration after
uniformisation on the simulator's own semantics (non-preemptive, reviewer groups, buckets,
routing, exponential patience), with a truncation study. ``OptimumResult.save(path)`` and
``OptimumResult.load(path)`` write and read the table (``.npz``, no pickle); the ``optimal``
policy (``dispatch.policies.optimal``) replays it in the simulator.

Modules: :mod:`~dispatch.optimum.network` (scenario -> network, refusals, stability),
:mod:`~dispatch.optimum.space` (states, dynamics, decisions as array operations),
:mod:`~dispatch.optimum.solver` (policy iteration with bounds),
:mod:`~dispatch.optimum.study` (truncation study), :mod:`~dispatch.optimum.result` (files).
"""

from dispatch.optimum.network import Network, network_from_scenario
from dispatch.optimum.result import OptimumResult, study_table, write_study
from dispatch.optimum.study import solve_optimum, truncation_study

__all__ = [
    "Network",
    "OptimumResult",
    "network_from_scenario",
    "solve_optimum",
    "study_table",
    "truncation_study",
    "write_study",
]
