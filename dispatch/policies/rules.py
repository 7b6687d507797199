"""Classical dispatch rules (pull): each picks one bucket for a free reviewer.

Within a bucket tasks are served oldest first; a rule only chooses between buckets, by a
score of the bucket's oldest task and of this reviewer, highest first, ties to the older
task. Every rule sees only ``candidates`` (eligible, non-empty, within wellbeing caps), so
eligibility and caps hold by construction.

Every rule also accepts a ``reserve`` parameter: trunk reservation, the classic way to
protect an urgent class. Reviewers of the reserved groups keep at least ``k`` of their team
idle for the reserved classes and take other work only when that still leaves ``k`` idle,
or when the backlog they would serve elsewhere exceeds ``backlog_threshold``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dispatch.errors import ConfigError
from dispatch.model import Reviewer
from dispatch.policies.base import Policy
from dispatch.policies.registry import register

if TYPE_CHECKING:
    from dispatch.layout import Layout

_CFG = ConfigDict(extra="forbid", use_attribute_docstrings=True)


class Reservation(BaseModel):
    """Keep ``k`` reviewers of the groups serving ``classes`` free for those classes."""

    model_config = _CFG
    classes: list[str] = Field(min_length=1)
    """Protected task classes (e.g. [live_stream])."""
    groups: list[str] | None = None
    """Groups whose reviewers are held back; default all groups eligible for the classes."""
    k: int = Field(default=2, ge=0)
    """Idle reviewers per group to keep for the protected classes."""
    backlog_threshold: int = Field(default=50, ge=0)
    """Unprotected work waiting (tasks in this reviewer's other buckets) that lifts the hold."""

    def resolve(self, layout: Layout) -> tuple[set[int], set[int]]:
        """(protected class indices, held group indices) in ``layout``.

        Held groups default to every group eligible for a protected class. Unknown names
        raise :class:`ConfigError`.
        """
        names = list(layout.class_names)
        unknown = set(self.classes) - set(names)
        if unknown:
            raise ConfigError(f"unknown classes {sorted(unknown)}", field="reserve.classes")
        classes = {names.index(c) for c in self.classes}
        if self.groups is None:
            protected = np.isin(layout.b_cls, sorted(classes))
            groups = {g.index for g in layout.groups if (g.eligible_mask & protected).any()}
            return classes, groups
        gnames = [g.name for g in layout.groups]
        bad = set(self.groups) - set(gnames)
        if bad:
            raise ConfigError(f"unknown groups {sorted(bad)}", field="reserve.groups")
        return classes, {gnames.index(g) for g in self.groups}


class RuleParams(BaseModel):
    model_config = _CFG
    reserve: Reservation | None = None
    """Trunk reservation for urgent classes (off by default)."""


class Rule(Policy):
    """A pull rule scoring each candidate bucket; subclasses implement :meth:`score`."""

    Params = RuleParams

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        sc = sim.scenario
        self._holding = [c.holding_cost for c in sc.classes]
        self._mean_work = [c.handling.expected for c in sc.classes]
        self._sla = [c.sla for c in sc.classes]
        res = self.params.reserve
        self._res_groups: set[int] = set()
        self._res_classes: set[int] = set()
        if res is not None:
            self._res_classes, self._res_groups = res.resolve(sim.layout)

    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        if self._res_groups and reviewer.group.index in self._res_groups:
            candidates = self._reservation_filter(reviewer, candidates)
            if not candidates:
                return None
        if len(candidates) == 1:
            return candidates[0]
        buckets = self.sim.buckets
        best = None
        best_key = None
        for b in candidates:
            key = (self.score(reviewer, b, now), -buckets[b].head().arrival)
            if best_key is None or key > best_key:
                best, best_key = b, key
        return best

    def _reservation_filter(self, reviewer: Reviewer, candidates: list[int]) -> list[int]:
        """Held reviewers may take only protected work unless the hold is lifted."""
        buckets = self.sim.buckets
        res = self.params.reserve
        others_idle = self.sim.free_count(reviewer.group)
        if others_idle >= res.k:
            return candidates
        protected = [b for b in candidates if buckets[b].cls in self._res_classes]
        backlog = sum(buckets[b].n for b in candidates) - sum(buckets[b].n for b in protected)
        if backlog > res.backlog_threshold:
            return candidates
        return protected

    def score(self, reviewer: Reviewer, b: int, now: float) -> float:
        raise NotImplementedError


@register
class FIFO(Rule):
    name = "fifo"
    summary = (
        "Oldest first: the bucket whose oldest task arrived earliest (first come, first served)."
    )

    def score(self, reviewer, b, now):
        return 0.0  # ties broken by age: the oldest head wins


class PriorityParams(RuleParams):
    order: list[str] | None = None
    """Class names from most to least urgent; default: each class's ``priority`` field."""


@register
class StaticPriority(Rule):
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
            unknown = set(self.params.order) - set(names)
            if unknown:
                raise ConfigError(
                    f"unknown classes {sorted(unknown)}", field="policy priority: order"
                )
            rank = {n: i for i, n in enumerate(self.params.order)}
            self._rank = [rank.get(n, len(rank)) for n in names]
        else:
            self._rank = [c.priority for c in sim.scenario.classes]

    def score(self, reviewer, b, now):
        return -self._rank[self.sim.buckets[b].cls]


class SlackParams(RuleParams):
    slack: bool = True
    """Least slack (deadline - now - this reviewer's expected handling time) if true,
    earliest deadline if false."""


@register
class EarliestDeadline(Rule):
    name = "edf"
    summary = (
        "Earliest deadline / least SLA slack: the task closest to breaching its SLA (or "
        "expiring, for tasks with patience), counting this reviewer's expected handling time."
    )
    Params = SlackParams

    def score(self, reviewer, b, now):
        head = self.sim.buckets[b].head()
        deadline = min(head.deadline, head.expires_at)
        if self.params.slack:
            cls = head.cls
            deadline -= self._mean_work[cls] / reviewer.group.speed[cls]
        return -deadline


@register
class CMu(Rule):
    name = "cmu"
    summary = (
        "c-mu: largest holding cost per minute x this reviewer's service rate "
        "(optimal for one server with linear holding costs)."
    )

    def score(self, reviewer, b, now):
        cls = self.sim.buckets[b].cls
        return self._holding[cls] * reviewer.group.speed[cls] / self._mean_work[cls]


@register
class HarmRate(Rule):
    name = "harm_rate"
    summary = (
        "Harm rate: risk x reach x severity of the oldest task per minute of this reviewer's "
        "expected handling time, times the chance the reviewer catches a violation."
    )

    def score(self, reviewer, b, now):
        head = self.sim.buckets[b].head()
        cls = head.cls
        g = reviewer.group
        rate = head.risk * head.severity * head.reach * g.sensitivity[cls]
        return rate * g.speed[cls] / self._mean_work[cls]


@register
class SkillMatch(Rule):
    name = "skill"
    summary = (
        "Best-accuracy skill match: the bucket where this reviewer's expected accuracy "
        "(at the bucket's mean risk) is highest relative to the other eligible groups."
    )

    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        # Best accuracy any group offers per class: a reviewer scores by its margin to the
        # best, so generalists leave specialist work to specialists.
        self._best = []
        for ci in range(len(sim.class_names)):
            accs = [
                (g.sensitivity[ci] + g.specificity[ci]) / 2 for g in sim.groups if g.speed[ci] > 0
            ]
            self._best.append(max(accs) if accs else 1.0)

    def score(self, reviewer, b, now):
        bk = self.sim.buckets[b]
        cls = bk.cls
        g = reviewer.group
        p = bk.sum_risk / bk.n if bk.n else 0.0
        acc = p * g.sensitivity[cls] + (1 - p) * g.specificity[cls]
        best = self._best[cls]
        return acc - best


@register
class LongestQueue(Rule):
    name = "lqf"
    summary = "Longest queue first: the bucket with the most waiting tasks."

    def score(self, reviewer, b, now):
        return self.sim.buckets[b].n


@register
class MaxWeight(Rule):
    name = "maxweight"
    summary = (
        "MaxWeight: queue length x this reviewer's service rate for the bucket "
        "(throughput-optimal in queueing networks)."
    )

    def score(self, reviewer, b, now):
        bk = self.sim.buckets[b]
        cls = bk.cls
        return bk.n * reviewer.group.speed[cls] / self._mean_work[cls]


@register
class RandomRule(Rule):
    name = "random"
    summary = "Random: a uniformly random eligible bucket (a floor every policy should beat)."

    def select(self, reviewer, candidates, now):
        if self._res_groups and reviewer.group.index in self._res_groups:
            candidates = self._reservation_filter(reviewer, candidates)
            if not candidates:
                return None
        return candidates[int(self.rng.integers(len(candidates)))] if candidates else None

    def score(self, reviewer, b, now):  # pragma: no cover - select is overridden
        return 0.0
