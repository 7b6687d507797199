"""Classical dispatch rules (pull): each picks one bucket for a free reviewer.

Within a bucket tasks are served oldest first; a rule only chooses between buckets. Every
rule sees only ``candidates`` (eligible, non-empty, within wellbeing caps), so eligibility
and caps hold by construction.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from dispatch.model import Reviewer
from dispatch.policies.base import Policy
from dispatch.policies.registry import register


@register
class FIFO(Policy):
    name = "fifo"
    summary = "Oldest first: take the bucket whose oldest task arrived earliest."

    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        buckets = self.sim.buckets
        if len(candidates) == 1:
            return candidates[0]
        best = candidates[0]
        best_t = buckets[best].head().arrival
        for b in candidates[1:]:
            t = buckets[b].head().arrival
            if t < best_t:
                best, best_t = b, t
        return best


class PriorityParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    order: list[str] | None = None
    """Class names from most to least urgent; default: each class's ``priority`` field."""


@register
class StaticPriority(Policy):
    name = "priority"
    summary = (
        "Static priority: the most urgent class first (scenario 'priority' field or an "
        "explicit order), oldest first within a class."
    )
    Params = PriorityParams

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        names = sim.class_names
        if self.params.order is not None:
            from dispatch.errors import ConfigError

            unknown = set(self.params.order) - set(names)
            if unknown:
                raise ConfigError(
                    f"unknown classes {sorted(unknown)}", field="policy priority: order"
                )
            rank = {n: i for i, n in enumerate(self.params.order)}
            self._rank = [rank.get(n, len(rank)) for n in names]
        else:
            self._rank = [c.priority for c in sim.scenario.classes]

    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        buckets = self.sim.buckets
        rank = self._rank
        return min(candidates, key=lambda b: (rank[buckets[b].cls], buckets[b].head().arrival))
