"""Resolve a scenario's ``data:`` section into reviewer groups and replayable tasks."""

from __future__ import annotations

import numpy as np
from pydantic import ValidationError

from dispatch.errors import ConfigError, DataError
from dispatch.importers.records import ImportedData, ImportReport, _LogTable
from dispatch.importers.roster import RosterRows, read_roster, roster_groups
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
    classes refer to them by name), so resolving twice is harmless. With ``markets:
    from_data`` the returned scenario lists the markets found (sorted). The input is not
    changed.
    """
    report = ImportReport()
    names = [t.name for t in scenario.data.task_logs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConfigError(
            f"duplicate task log names {dup}; give each log a unique name",
            field="data.task_logs",
        )
    known = None if scenario.markets == "from_data" else list(scenario.markets)

    logs: dict[str, _LogTable] = {}
    for i, spec in enumerate(scenario.data.task_logs):
        logs[spec.name] = _load_task_log(scenario, i, spec, report, known)
    rosters = [
        read_roster(scenario, i, rspec, report, known)
        for i, rspec in enumerate(scenario.data.rosters)
    ]
    markets = known if known is not None else _markets_from_data(scenario, logs, rosters, report)

    replay_log_of_class = _check_replay(scenario, logs, report)

    taken = {g.name for g in scenario.reviewers}
    new_groups: list[ReviewerGroup] = []
    for rows in rosters:
        new_groups += roster_groups(rows, scenario, markets, taken)

    payload = scenario.model_dump(mode="python", by_alias=True)
    payload["markets"] = markets
    payload["reviewers"] = payload["reviewers"] + [
        g.model_dump(mode="python", by_alias=True) for g in new_groups
    ]
    payload["data"]["rosters"] = []
    try:
        resolved = Scenario.model_validate(payload)
    except ValidationError as err:
        raise format_validation_error(err, scenario.name) from None
    return resolved, ImportedData(logs, replay_log_of_class, report)


def _markets_from_data(
    scen: Scenario, logs: dict[str, _LogTable], rosters: list[RosterRows], report: ImportReport
) -> list[str]:
    """``markets: from_data``: every market code in the task logs and rosters, sorted.

    Names in the scenario that the data must also contain (market_mix keys, reviewer
    groups' markets) are checked here, since the schema could not check them on load.
    """
    found: set[str] = set()
    for log in logs.values():
        found.update(m for m in log.market.tolist() if m is not None)
    for rows in rosters:
        for mk in rows.markets:
            found.update(mk or ())
    if not found:
        raise DataError(
            "markets: from_data found no market codes (every mapped market cell is blank); "
            "list the scenario's markets instead"
        )
    markets = sorted(found)
    wanted = {f"market_mix of class {c.name}": set(c.market_mix or ()) for c in scen.classes} | {
        f"markets of reviewer group {g.name}": set(g.markets) if g.markets != "all" else set()
        for g in scen.reviewers
    }
    for what, names in wanted.items():
        missing = sorted(names - found)
        if missing:
            raise ConfigError(
                f"{what} names {missing}, which the data never mentions (markets: from_data "
                f"found {markets}); correct the names or list the markets explicitly",
                field="markets",
            )
    report.notes.append(f"markets from the data ({len(markets)}): {', '.join(markets)}")
    return markets


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
