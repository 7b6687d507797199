"""Checks of an experiment against what exists: metric names, policy parameters.

Separate from :mod:`dispatch.experiment` (the file schema and the resolved plan) because
these checks ask other modules: the metrics collector for the metric names it reports, and
the policy registry and the simulator for parameters that only fail against a scenario.
Every problem is one :class:`~dispatch.errors.ConfigError` naming the experiment field.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING

from dispatch.errors import ConfigError

if TYPE_CHECKING:
    from dispatch.experiment import PolicyPlan, ScenarioPlan

__all__ = ["bare_message", "check_metrics", "check_policy", "known_metrics"]

# Keys that only ``SimResult.overall`` has (see the table in dispatch.metrics).
_OVERALL_ONLY = [
    "utilisation",
    "reviewer_hours",
    "severe_per_reviewer_hour",
    "max_severe_in_hour",
    "littles_L",
    "littles_lambda_W",
    "littles_gap",
    "abandon_wait_total",
    "appeals",
    "objective",
]


def known_metrics() -> tuple[list[str], list[str]]:
    """(overall metric keys, per-class metric keys) that a run reports.

    The per-class keys come from the collector itself (evaluated on empty counters), so a
    metric added to :mod:`dispatch.metrics` is selectable here without a second list.
    """
    from dispatch.metrics import ClassStats, Collector

    per_class = list(Collector._class_metrics(ClassStats(), 0, 1.0, 1.0)) + ["objective"]
    overall = list(dict.fromkeys([*per_class, *_OVERALL_ONLY]))
    return overall, per_class


def bare_message(exc: ConfigError) -> str:
    """The message of a ConfigError without its 'source: field ...:' prefix."""
    text = str(exc)
    for prefix in (f"{exc.source}: " if exc.source else None, f"field '{exc.field}': "):
        if prefix and text.startswith(prefix):
            text = text[len(prefix) :]
    return text


def check_policy(
    i: int, pol: PolicyPlan, scenarios: list[ScenarioPlan], source: str | None
) -> None:
    from dispatch.policies import make_policy
    from dispatch.simulator import Simulation

    try:
        make_policy(pol.name, **pol.params)
    except ConfigError as exc:
        if exc.field == "policy":  # unknown name
            raise ConfigError(
                bare_message(exc), source=source, field=f"policies.{i}.name"
            ) from None
        loc = (exc.field or "").split(": ", 1)[-1]
        raise ConfigError(
            f"{bare_message(exc)} of policy '{pol.name}'; `dispatch policies` lists its parameters",
            source=source,
            field=f"policies.{i}.params" + (f".{loc}" if loc else ""),
        ) from None
    for scen in scenarios:
        try:  # binding checks parameters against the scenario (e.g. class names)
            Simulation(scen.scenario, make_policy(pol.name, **pol.params), 0)
        except ConfigError as exc:
            raise ConfigError(
                f"{bare_message(exc)} (policy '{pol.label}' on scenario '{scen.name}')",
                source=source,
                field=f"policies.{i}.params",
            ) from None


def check_metrics(metrics: list[str], scenarios: list[ScenarioPlan], source: str | None) -> None:
    overall, per_class = known_metrics()
    classes = {c.name for s in scenarios for c in s.scenario.classes}
    for j, m in enumerate(metrics):
        where = f"metrics.{j}"
        if "." in m:
            cls, key = m.split(".", 1)
            if cls not in classes:
                raise ConfigError(
                    f"'{m}': no class '{cls}' in the scenarios; use CLASS.METRIC with one of "
                    f"{sorted(classes)}",
                    source=source,
                    field=where,
                )
            if key not in per_class:
                raise ConfigError(_unknown_metric(m, key, per_class), source=source, field=where)
        elif m not in overall:
            raise ConfigError(_unknown_metric(m, m, overall), source=source, field=where)


def _unknown_metric(full: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"unknown metric '{full}'; {hint}see the table in dispatch/metrics.py"
