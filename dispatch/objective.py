"""The comparison objective: one weighted cost of a simulated day (lower is better).

Every comparison, every solver's batch value and the RL reward derive from these weights,
so "better reward" means "better dispatcher" in the reports:

    cost = harm x harm_exposure / 1000        (per thousand severity-weighted violating views)
         + sla_breach x SLA breaches          (decided late or expired)
         + wrong_decision x (false negatives + false positives)
         + false_enforcement x false positives (extra weight: merchants wrongly punished)
         + abandoned x expired tasks           (value lost when a live stream ends unreviewed)
         + holding x holding_cost              (time-average of sum over classes of the class's
                                               holding cost x its tasks in the system)

The defaults put a harmful item missed for an hour on a stream with 100 views/minute at
6 units, an SLA breach at 1 and a wrong decision at 2. ``holding`` defaults to 0, so the
objective is unchanged unless asked for: set it (e.g. ``objective: {holding: 1}`` with the
other weights 0) to compare dispatchers of queueing networks on the cost that
``dispatch optimum`` minimises (the ``holding_cost`` metric, a rate per minute).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

HARM_UNIT = 1000.0


class Objective(BaseModel):
    """Weights of the comparison objective (see module docstring)."""

    model_config = ConfigDict(extra="forbid")
    harm: float = Field(default=1.0, ge=0, description="Per 1000 severity-weighted views.")
    sla_breach: float = Field(default=1.0, ge=0)
    wrong_decision: float = Field(default=2.0, ge=0)
    false_enforcement: float = Field(default=1.0, ge=0)
    abandoned: float = Field(default=2.0, ge=0)
    holding: float = Field(
        default=0.0, ge=0, description="Per unit of the holding_cost metric (cost per minute)."
    )

    def cost(self, m: dict[str, float]) -> float:
        """Cost from a metrics dict (``SimResult.overall`` or one class's metrics)."""
        cost = (
            self.harm * m["harm_exposure"] / HARM_UNIT
            + self.sla_breach * m["sla_breaches"]
            + self.wrong_decision * m["wrong_decisions"]
            + self.false_enforcement * m["false_enforcements"]
            + self.abandoned * m["abandoned"]
        )
        if self.holding:  # only when weighted: results without the key stay readable
            cost += self.holding * m["holding_cost"]
        return cost

    def running_cost(self, collector) -> float:
        """Cost accrued so far in a running simulation (for per-step RL rewards).

        SLA breaches are charged when they become certain: at a late decision or expiry;
        the final :meth:`cost` also charges tasks still waiting past their deadline at the
        horizon, so the per-step costs telescope to the final cost when the last step adds
        the difference.
        """
        harm = breaches = wrong = fp = ab = 0.0
        for cs in collector.cls:
            harm += cs.harm
            breaches += cs.completed - cs.on_time + cs.abandoned
            wrong += cs.fp + cs.fn
            fp += cs.fp
            ab += cs.abandoned
        cost = (
            self.harm * harm / HARM_UNIT
            + self.sla_breach * breaches
            + self.wrong_decision * wrong
            + self.false_enforcement * fp
            + self.abandoned * ab
        )
        if self.holding:
            now = max(collector.sim.now, collector.warmup)
            cost += self.holding * sum(collector.holding_costs(now))
        return cost


def score(metrics: dict[str, float], objective: Objective | None = None) -> dict[str, float]:
    """Set ``metrics["objective"]`` to ``objective``'s cost of ``metrics`` and return it.

    The one place the reported ``objective`` is computed: the simulator's collector scores
    a run with the default weights (``objective=None``), an experiment re-scores every cell
    (overall and per class) with its own weights before anything is written, so a cell
    file, the results table and the report always show the same number. ``metrics`` is
    updated in place (an existing ``objective`` key keeps its position).
    """
    metrics["objective"] = (objective or Objective()).cost(metrics)
    return metrics
