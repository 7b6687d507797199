"""Resolve a scenario's ``data:`` section into reviewer groups and replayable tasks."""

from __future__ import annotations

import numpy as np
from pydantic import ValidationError

from dispatch.errors import ConfigError
from dispatch.importers.records import ImportedData, ImportReport, _LogTable
from dispatch.importers.roster import _load_roster
from dispatch.importers.tasklog import _load_task_log
from dispatch.scenario import (
    ReplayArrivals,
    ReviewerGroup,
    Scenario,
    format_validation_error,
)


# ------------------------------------------------------------------------------------------
# Entry point
# ------------------------------------------------------------------------------------------
def resolve_data(scenario: Scenario) -> tuple[Scenario, ImportedData]:
    """Load every task log and roster of ``scenario.data``.

    Returns a new validated scenario whose ``reviewers`` include one group per distinct
    kind of rostered reviewer, and the imported task data. The returned scenario's
    ``data.rosters`` is emptied: the rosters now live in ``reviewers``, and resolving the
    result again must not add the same people twice. Task logs stay declared (replayed
    classes refer to them by name), so resolving twice is harmless. The input is not changed.
    """
    report = ImportReport()
    names = [t.name for t in scenario.data.task_logs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(
            f"duplicate task log names {dup}; give each log a unique name",
            field="data.task_logs",
        )

    logs: dict[str, _LogTable] = {}
    for i, spec in enumerate(scenario.data.task_logs):
        logs[spec.name] = _load_task_log(scenario, i, spec, report)

    replay_log_of_class = _check_replay(scenario, logs, report)

    taken = {g.name for g in scenario.reviewers}
    new_groups: list[ReviewerGroup] = []
    for i, rspec in enumerate(scenario.data.rosters):
        new_groups += _load_roster(scenario, i, rspec, report, taken)

    payload = scenario.model_dump(mode="python", by_alias=True)
    payload["reviewers"] = payload["reviewers"] + [
        g.model_dump(mode="python", by_alias=True) for g in new_groups
    ]
    payload["data"]["rosters"] = []
    try:
        resolved = Scenario.model_validate(payload)
    except ValidationError as err:
        raise format_validation_error(err, scenario.name) from None
    return resolved, ImportedData(logs, replay_log_of_class, report)


def _check_replay(
    scen: Scenario, logs: dict[str, _LogTable], report: ImportReport
) -> dict[str, str]:
    """Match replaying classes to their logs; note rows nobody will replay."""
    out: dict[str, str] = {}
    for ci, c in enumerate(scen.classes):
        if not isinstance(c.arrivals, ReplayArrivals):
            continue
        log = logs.get(c.arrivals.log)
        if log is None:  # the schema already checks this; kept for hand-built scenarios
            raise ConfigError(
                f"replay log '{c.arrivals.log}' is not declared under data.task_logs",
                field=f"classes.{ci}.arrivals.log",
            )
        if log.use == "backlog":
            raise ConfigError(
                f"class {c.name} replays log '{log.name}', whose use is 'backlog'; set "
                f"use: replay or use: both on that log",
                field=f"classes.{ci}.arrivals.log",
            )
        out[c.name] = log.name
        idx = log.replay_idx.get(c.name)
        if idx is None:
            report.notes.append(
                f"class {c.name} replays log '{log.name}', which has no replay rows of that "
                f"class: the class gets no external arrivals"
            )
            continue
        late = int(np.count_nonzero(log.minutes[idx] >= scen.horizon))
        if late:
            report.notes.append(
                f"{late} rows of class {c.name} in log '{log.name}' arrive at or after the "
                f"horizon (minute {scen.horizon:g}) and are not replayed"
            )
    for log in logs.values():
        for cname, idx in log.replay_idx.items():
            if out.get(cname) != log.name:
                report.notes.append(
                    f"{len(idx)} replay rows of class {cname} in log '{log.name}' are unused: "
                    f"class {cname} does not have arrivals: {{kind: replay, log: {log.name}}}"
                )
    return out
