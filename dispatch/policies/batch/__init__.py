"""The batch optimisers ``flow``, ``lsa`` and ``cpsat``: one value model, three solvers.

Every epoch the free reviewers are matched to waiting tasks so as to maximise the summed
value of the assignments, an estimate of the comparison objective each one saves:

* :mod:`~dispatch.policies.batch.params`: the parameters, grouped (``value``,
  ``aggregation``, ``epoch``, ``solver``, ``constraints``, ``reserve``);
* :mod:`~dispatch.policies.batch.value`: the value model (formula and reasons);
* :mod:`~dispatch.policies.batch.guard`: the guard price of perishable work;
* :mod:`~dispatch.policies.batch.epoch`: one epoch as arrays (rows, scanned tasks, columns);
* :mod:`~dispatch.policies.batch.realise`: solver counts -> (reviewer, bucket) pairs;
* :mod:`~dispatch.policies.batch.solver`: the shared pipeline (:class:`BatchSolver`);
* :mod:`~dispatch.policies.batch.flow`: ``flow`` and ``lsa``;
  :mod:`~dispatch.policies.batch.cpsat`: ``cpsat``.
"""

from dispatch.policies.batch.cpsat import CPSATPolicy
from dispatch.policies.batch.epoch import Epoch, EpochBuilder
from dispatch.policies.batch.flow import FlowPolicy, LSAPolicy
from dispatch.policies.batch.params import (
    CPSATParams,
    LSAParams,
    SolverParams,
    ValueModel,
    ValueWeights,
)
from dispatch.policies.batch.realise import realise
from dispatch.policies.batch.solver import BatchSolver
from dispatch.policies.batch.value import task_value, value_matrix

__all__ = [
    "BatchSolver",
    "CPSATParams",
    "CPSATPolicy",
    "Epoch",
    "EpochBuilder",
    "FlowPolicy",
    "LSAParams",
    "LSAPolicy",
    "SolverParams",
    "ValueModel",
    "ValueWeights",
    "realise",
    "task_value",
    "value_matrix",
]
