"""Simulation-based correction of the requirements (step 4): an iterative staffing algorithm.

Stationary formulas misjudge a time-varying, multi-class, multi-skill operation: queues built
in one interval spill into the next, a dispatcher favours some classes, follow-up work
arrives late. Feldman, Mandelbaum, Massey and Whitt (2008, "Staffing of time-varying queues
to achieve time-stable performance") simulate the staffed system, measure each interval and
re-staff it until every interval meets its target. This module is that loop in the plan's
terms: simulate the roster with the plan's dispatcher on N seeds under common random
numbers; where a class misses a target in an interval *with its CI* (the whole confidence
interval on the wrong side), raise that class's demand in that interval (and the one before
it, where its queue built up) by ``step`` and re-solve requirements and roster; stop when no
target is missed or the iterations are spent. Raises only compound (a requirement never
drops), so the loop cannot cycle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch.plan.evaluate import HIGHER_IS_BETTER, TARGET_OF, Validation

MAX_INFLATION = 6.0


@dataclass
class Miss:
    cls: str
    interval: int
    target: str
    value: float  # mean over seeds
    lo: float
    hi: float
    goal: float

    def gap(self) -> float:
        """By how much the mean misses (absolute, in the measure's unit)."""
        return (
            self.goal - self.value
            if HIGHER_IS_BETTER[TARGET_OF[self.target]]
            else (self.value - self.goal)
        )


def find_misses(
    val: Validation, classes: list[str], targets: dict[str, dict[str, float]], level: float
) -> list[Miss]:
    """Every class x interval x target whose whole CI is on the wrong side of the target."""
    out = []
    for k, cls in enumerate(classes):
        for tname, goal in targets.get(cls, {}).items():
            measure = TARGET_OF[tname]
            mean, lo, hi = val.ci(measure, level)
            for i in range(mean.shape[0]):
                if not np.isfinite(mean[i, k]):
                    continue
                bad = hi[i, k] < goal if HIGHER_IS_BETTER[measure] else lo[i, k] > goal
                if bad:
                    out.append(Miss(cls, i, tname, mean[i, k], lo[i, k], hi[i, k], goal))
    return out


def raise_demand(
    inflation: np.ndarray, misses: list[Miss], classes: list[str], step: float
) -> np.ndarray:
    """New inflation factors: each missed class x interval (and the interval before) up."""
    out = inflation.copy()
    n = out.shape[0]
    touched = set()
    for m in misses:
        k = classes.index(m.cls)
        for i in (m.interval, (m.interval - 1) % n):
            if (i, k) not in touched:
                touched.add((i, k))
                out[i, k] = min(out[i, k] * (1 + step), MAX_INFLATION)
    return out


def raise_for_harm(
    inflation: np.ndarray, val: Validation, classes: list[str], step: float
) -> np.ndarray:
    """Harm budget missed: raise the class with the most harm where it waits longest."""
    harm = {c: float(np.mean(val.per_class[c]["harm_exposure"])) for c in classes}
    worst = max(harm, key=harm.get)
    k = classes.index(worst)
    waits = np.nanmean(val.values["mean_wait"][:, :, k], axis=0)
    ok = np.isfinite(waits)
    if not ok.any():
        return inflation
    cut = np.nanpercentile(waits[ok], 75)
    out = inflation.copy()
    sel = ok & (waits >= cut)
    out[sel, k] = np.minimum(out[sel, k] * (1 + step), MAX_INFLATION)
    return out


def why_unmet(
    miss: Miss, inflation: np.ndarray, classes: list[str], shortfall_pools: list[str], mode: str
) -> str:
    """A reason a target still misses after the loop, for the report."""
    k = classes.index(miss.cls)
    if inflation[miss.interval, k] >= MAX_INFLATION - 1e-9:
        return f"demand already raised x{MAX_INFLATION:g} without reaching it"
    if shortfall_pools:
        return f"headcount exhausted in pool(s) {', '.join(shortfall_pools)}"
    if mode == "budget":
        return "the budget of hours is spent"
    return "iterations spent (raise simulation.max_iterations)"
