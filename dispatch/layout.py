"""The static shape of an operation: buckets, reviewer groups, eligibility and routing.

A :class:`Layout` is everything about a scenario that does not change while it runs: which
queues (*buckets* = task class x market x risk band) exist and in which order, which
reviewer groups may take which buckets, how accurate and fast each group is per class, in
which order idle groups are offered a new task, and which follow-ups a decision routes. It
is computed once from a scenario (:meth:`Layout.from_scenario`) and read by

* the simulator, which builds its runtime objects (:class:`~dispatch.model.Bucket`,
  :class:`~dispatch.model.Group`) from it;
* the observation and epoch builders (:mod:`dispatch.observation`,
  :mod:`dispatch.policies.batch.epoch`), which precompute their arrays from it;
* the Gymnasium environments, whose action and observation spaces it fixes (no simulation
  needs to be built to learn them);
* export, whose sidecar records the bucket names.

Lists of Python numbers are kept next to numpy arrays on purpose: the simulator's hot path
indexes lists (cheaper than numpy scalars, and the arithmetic stays in Python floats), the
vectorised builders use the arrays. Arrays are read-only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dispatch.errors import ConfigError

if TYPE_CHECKING:
    from dispatch.scenario import Fatigue, ReviewerGroup, RoutingRule, Scenario, Shift

__all__ = ["BucketSpec", "GroupSpec", "Layout", "Route"]


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """One queue: task class ``cls`` x market ``market`` x risk band ``band``."""

    index: int
    cls: int
    market: int
    band: int
    name: str
    """``class[/market][/rBAND]``: the market part only with several markets, the band
    part only with risk bands."""


@dataclass(frozen=True, slots=True)
class GroupSpec:
    """One reviewer group: who may do what, how well and how fast, and when."""

    index: int
    name: str
    spec: ReviewerGroup
    eligible: tuple[int, ...]
    """Bucket indices the group may take (its classes x its markets), ascending."""
    eligible_mask: np.ndarray
    """``(B,)`` bool: ``eligible`` as a mask."""
    sensitivity: tuple[float, ...]
    """Per class: P(enforce | violating) before fatigue."""
    specificity: tuple[float, ...]
    """Per class: P(clear | not violating) before fatigue."""
    speed: tuple[float, ...]
    """Per class: handling-time divisor (0 for classes the group may not take)."""
    cap: int | None
    """Wellbeing cap: most severe items per rolling hour, or ``None``."""
    fatigue: Fatigue | None
    headcount: int
    shifts: tuple[Shift, ...]
    """Daily shifts; empty means always on duty."""


@dataclass(frozen=True, slots=True)
class Route:
    """A routing rule as the simulator applies it to a decided task of class ``source``."""

    index: int
    """Position among all rules (QA sampling expanded), e.g. to key a delay stream."""
    k: int
    """Position among the rules of its source class: the task's routing coin ``route_u[k]``."""
    source: int
    target: int
    rule: RoutingRule


@dataclass(frozen=True)
class Layout:
    """Buckets, groups, eligibility and routing of one (data-resolved) scenario."""

    scenario: Scenario
    class_names: tuple[str, ...]
    market_names: tuple[str, ...]
    market_index: dict[str, int]
    bands: tuple[float, ...]
    """Risk cut points; a task's band is ``bisect_right(bands, risk)``."""
    buckets: tuple[BucketSpec, ...]
    groups: tuple[GroupSpec, ...]
    bucket_of: dict[tuple[int, int, int], int]
    """(class, market, band) -> bucket index."""
    buckets_of_class: tuple[tuple[int, ...], ...]
    base_bucket: tuple[dict[int, int], ...]
    """Per class: market -> index of its band-0 bucket (band k is ``base + k``)."""
    offer_order: tuple[tuple[int, ...], ...]
    """Per bucket: the groups (with members) offered a newly arrived task, specialists
    (fewest eligible buckets) first, so flexible reviewers stay free for other work."""
    routes: tuple[Route, ...]
    routes_from: tuple[tuple[Route, ...], ...]
    """Per source class: its routes, in rule order."""
    # Arrays for vectorised builders (read-only).
    b_cls: np.ndarray
    b_market: np.ndarray
    b_band: np.ndarray
    group_mask: np.ndarray
    """``(G, B)`` bool eligibility."""
    sensitivity: np.ndarray
    """``(G, C)``."""
    specificity: np.ndarray
    speed: np.ndarray
    mean_work: np.ndarray
    """``(C,)`` expected handling time at speed 1."""
    sla: np.ndarray
    """``(C,)`` SLA minutes."""

    # -- construction ------------------------------------------------------------------------
    @classmethod
    def from_scenario(cls, scenario: Scenario) -> Layout:
        """The layout of a scenario whose ``data:`` rosters are resolved (see :meth:`resolve`).

        Raises :class:`ConfigError` if rosters are still declared: their reviewers are not
        groups yet.
        """
        if scenario.data.rosters:
            raise ConfigError(
                "the scenario's data.rosters are not resolved into reviewer groups yet; use "
                "Layout.resolve(scenario) or dispatch.importers.resolve_data first",
                field="data.rosters",
            )
        class_names = tuple(c.name for c in scenario.classes)
        market_names = tuple(scenario.markets)
        market_index = {m: i for i, m in enumerate(market_names)}
        buckets = _buckets(scenario, market_names, market_index)
        n_cls = len(class_names)
        bucket_of = {(b.cls, b.market, b.band): b.index for b in buckets}
        base: list[dict[int, int]] = [{} for _ in range(n_cls)]
        for (ci, mi, band), bi in bucket_of.items():
            if band == 0:
                base[ci][mi] = bi
        groups = _groups(scenario, class_names, market_index, buckets)
        routes = _routes(scenario, class_names)
        return cls(
            scenario=scenario,
            class_names=class_names,
            market_names=market_names,
            market_index=market_index,
            bands=tuple(scenario.risk_bands),
            buckets=buckets,
            groups=groups,
            bucket_of=bucket_of,
            buckets_of_class=tuple(
                tuple(b.index for b in buckets if b.cls == ci) for ci in range(n_cls)
            ),
            base_bucket=tuple(base),
            offer_order=_offer_order(buckets, groups),
            routes=routes,
            routes_from=tuple(tuple(r for r in routes if r.source == ci) for ci in range(n_cls)),
            b_cls=_ro(np.array([b.cls for b in buckets], dtype=np.int64)),
            b_market=_ro(np.array([b.market for b in buckets], dtype=np.int64)),
            b_band=_ro(np.array([b.band for b in buckets], dtype=np.int64)),
            group_mask=_ro(
                np.array([g.eligible_mask for g in groups], dtype=bool).reshape(
                    len(groups), len(buckets)
                )
            ),
            sensitivity=_per_group_class(groups, "sensitivity", n_cls),
            specificity=_per_group_class(groups, "specificity", n_cls),
            speed=_per_group_class(groups, "speed", n_cls),
            mean_work=_ro(np.array([c.handling.expected for c in scenario.classes], dtype=float)),
            sla=_ro(np.array([c.sla for c in scenario.classes], dtype=float)),
        )

    @classmethod
    def resolve(cls, scenario: Scenario) -> Layout:
        """Resolve the scenario's ``data:`` (rosters become groups) if needed, then
        :meth:`from_scenario`. The layout's ``scenario`` is the resolved one."""
        if scenario.data.rosters:
            from dispatch.importers import resolve_data

            scenario, _ = resolve_data(scenario)
        return cls.from_scenario(scenario)

    # -- views --------------------------------------------------------------------------------
    @property
    def n_buckets(self) -> int:
        return len(self.buckets)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def bucket_names(self) -> list[str]:
        return [b.name for b in self.buckets]

    @property
    def headcount(self) -> int:
        """Reviewers in all groups."""
        return sum(g.headcount for g in self.groups)


def _ro(a: np.ndarray) -> np.ndarray:
    a.setflags(write=False)
    return a


def _per_group_class(groups: tuple[GroupSpec, ...], attr: str, n_cls: int) -> np.ndarray:
    return _ro(
        np.array([getattr(g, attr) for g in groups], dtype=float).reshape(len(groups), n_cls)
    )


def _buckets(
    scen: Scenario, market_names: tuple[str, ...], market_index: dict[str, int]
) -> tuple[BucketSpec, ...]:
    """Class-major, then the class's markets (its ``market_mix`` order), then bands."""
    nb = len(scen.risk_bands) + 1
    out: list[BucketSpec] = []
    for ci, c in enumerate(scen.classes):
        markets = list(c.market_mix) if c.market_mix else list(market_names)
        for m in markets:
            for band in range(nb):
                name = c.name if len(market_names) == 1 else f"{c.name}/{m}"
                if nb > 1:
                    name += f"/r{band}"
                out.append(BucketSpec(len(out), ci, market_index[m], band, name))
    return tuple(out)


def _groups(
    scen: Scenario,
    class_names: tuple[str, ...],
    market_index: dict[str, int],
    buckets: tuple[BucketSpec, ...],
) -> tuple[GroupSpec, ...]:
    out = []
    for gi, g in enumerate(scen.reviewers):
        cls_ok = {class_names.index(c) for c in g.classes}
        mk_ok = (
            set(market_index.values())
            if g.markets == "all"
            else {market_index[m] for m in g.markets}
        )
        eligible = tuple(b.index for b in buckets if b.cls in cls_ok and b.market in mk_ok)
        mask = np.zeros(len(buckets), dtype=bool)
        mask[list(eligible)] = True
        sens, spec, speed = [], [], []
        for ci, c in enumerate(scen.classes):
            acc = g.accuracy.get(c.name, g.default_accuracy)
            sens.append(acc.sensitivity)
            spec.append(acc.specificity)
            speed.append(g.speed.get(c.name, 1.0) if ci in cls_ok else 0.0)
        out.append(
            GroupSpec(
                index=gi,
                name=g.name,
                spec=g,
                eligible=eligible,
                eligible_mask=_ro(mask),
                sensitivity=tuple(sens),
                specificity=tuple(spec),
                speed=tuple(speed),
                cap=g.wellbeing_cap,
                fatigue=g.fatigue,
                headcount=g.count,
                shifts=tuple(g.shifts),
            )
        )
    return tuple(out)


def _offer_order(
    buckets: tuple[BucketSpec, ...], groups: tuple[GroupSpec, ...]
) -> tuple[tuple[int, ...], ...]:
    out = []
    for b in buckets:
        gs = [g for g in groups if g.eligible_mask[b.index] and g.headcount]
        gs.sort(key=lambda g: (len(g.eligible), g.index))
        out.append(tuple(g.index for g in gs))
    return tuple(out)


def _routes(scen: Scenario, class_names: tuple[str, ...]) -> tuple[Route, ...]:
    """Every routing rule (QA sampling expanded), numbered per source class."""
    out = []
    per_class = [0] * len(class_names)
    for i, rule in enumerate(scen.all_routing()):
        ci = class_names.index(rule.source)
        out.append(Route(i, per_class[ci], ci, class_names.index(rule.target), rule))
        per_class[ci] += 1
    return tuple(out)
