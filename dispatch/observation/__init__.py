"""What a learned dispatcher sees: the observation features and their builder.

Shared by the Gymnasium environments (:mod:`envs.audit_dispatch`, :mod:`envs.batch_dispatch`),
the ``learned`` and ``onnx`` policies and export, so a model trained in an environment sees
exactly the same numbers when it runs inside ``dispatch simulate`` or an experiment. Pure
numpy: importing this module never imports torch.

:data:`FEATURES` is the one definition of every feature (name, range, definition, the modes
that have it); the builder's bounds, the environments' docstring tables
(:func:`feature_table_rst`, checked by a test) and export's sidecar notes
(:func:`feature_table`) all come from it.

Observation layout (float32, feature-major): ``B`` = number of buckets. Per-bucket features
come first, each a block of ``B`` values in bucket order (:meth:`ObservationBuilder.names`),
then the global features. Values are clipped into ``[low, high]``.

Everything static (eligibility, speeds, SLAs, priors) is precomputed per bucket and per
group from the :class:`~dispatch.layout.Layout`; a step costs one pass over the buckets
(their running counters and the oldest task) plus about fifteen small numpy operations on
preallocated arrays (about 10 us for the 42 buckets of ``ecommerce_day``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dispatch.observation.builder import ObservationBuilder
from dispatch.observation.features import (
    AGE_CAP,
    FEATURES,
    Feature,
    feature_table,
    feature_table_rst,
    features,
)

if TYPE_CHECKING:
    from dispatch.simulator import Simulation

__all__ = [
    "AGE_CAP",
    "FEATURES",
    "Feature",
    "HoldingCost",
    "ObservationBuilder",
    "feature_table",
    "feature_table_rst",
    "features",
    "fifo_choice",
    "holding_cost_rates",
    "layout_digest",
]


def layout_digest(scenario) -> str:
    """Digest of a scenario ignoring its horizon and warm-up (what a trained model depends
    on: classes, markets, bands, reviewers; episodes may be shorter than evaluation runs)."""
    return scenario.model_copy(update={"horizon": 1.0, "warmup": 0.0}).digest()


def fifo_choice(sim: Simulation, candidates: list[int]) -> int:
    """FIFO's choice among ``candidates``: the bucket whose oldest task arrived first.

    The deterministic stand-in for an invalid action of an unmasked agent.
    """
    buckets = sim.buckets
    return min(candidates, key=lambda b: (buckets[b].head().arrival, b))


def holding_cost_rates(sim: Simulation) -> list[tuple[Any, float]]:
    """(bucket, holding cost per task-minute) for every bucket whose class costs anything."""
    costs = [c.holding_cost for c in sim.scenario.classes]
    return [(b, costs[b.cls]) for b in sim.buckets if costs[b.cls] > 0]


class HoldingCost:
    """Integrates sum_k c_k x (class-k tasks waiting) over simulated time.

    Call :meth:`advance` with (t0, t1) whenever time moves on without an event in between
    (the simulator's ``on_advance`` hook does this); the queue lengths are constant there.
    """

    def __init__(self, sim: Simulation):
        self.pairs = holding_cost_rates(sim)
        self.total = 0.0

    def advance(self, t0: float, t1: float) -> None:
        if t1 > t0:
            r = 0.0
            for b, c in self.pairs:
                r += c * b.n
            self.total += r * (t1 - t0)
