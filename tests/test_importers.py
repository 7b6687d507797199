"""Tests for :mod:`dispatch.importers`: task-log replay and backlog, rosters, errors.

Every fixture file is written by the test into ``tmp_path`` (CSV, gzipped CSV and Parquet),
and the checks go through the real simulator: a replayed log must produce tasks at exactly
the logged minutes with the logged attributes, and a backlog must wait at least its age.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml

from dispatch.errors import ConfigError, DataError
from dispatch.importers import ImportedData, TaskRow, resolve_data
from dispatch.model import Task
from dispatch.policies import make_policy
from dispatch.scenario import Scenario, load_scenario
from dispatch.simulator import Simulation, simulate

# --------------------------------------------------------------------------- helpers

DAY0 = pd.Timestamp("2024-03-01T00:00:00Z")

TASK_COLUMNS = {
    "arrival": "created_at",
    "class": "queue",
    "market": "site",
    "risk": "score",
    "label": "verdict",
    "handling_time": "aht_s",
    "task_id": "ticket",
}


def write(df: pd.DataFrame, path: Path) -> Path:
    """Write ``df`` as CSV, gzipped CSV or Parquet, chosen by the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith((".parquet", ".pq")):
        df.to_parquet(path, index=False)
    else:
        df.to_csv(path, index=False)
    return path


def stamp(minute: float) -> str:
    """ISO timestamp ``minute`` minutes after 2024-03-01 00:00 UTC."""
    return (DAY0 + pd.Timedelta(minutes=minute)).strftime("%Y-%m-%dT%H:%M:%SZ")


def scenario_dict(tmp_path: Path, *, horizon: float = 120.0, **extra: Any) -> dict[str, Any]:
    """Two classes, two markets, one large always-on crew (so nothing waits for capacity)."""
    d: dict[str, Any] = {
        "name": "imported",
        "horizon": horizon,
        "markets": ["US", "UK"],
        "base_dir": str(tmp_path),
        "classes": [
            {
                "name": "listing",
                "handling": {"kind": "deterministic", "value": 1.0},
                "arrivals": {"kind": "poisson", "rate": 0.0},
            },
            {
                "name": "stream",
                "handling": {"kind": "deterministic", "value": 2.0},
                "arrivals": {"kind": "poisson", "rate": 0.0},
                "severe_risk_threshold": 0.5,
            },
        ],
        "reviewers": [{"name": "crew", "count": 30, "classes": ["listing", "stream"]}],
    }
    d.update(extra)
    return d


def replaying(d: dict[str, Any], log: str = "day") -> dict[str, Any]:
    for c in d["classes"]:
        c["arrivals"] = {"kind": "replay", "log": log}
    return d


def task_log(name: str, path: str, **kw: Any) -> dict[str, Any]:
    spec = {"name": name, "path": path, "columns": dict(TASK_COLUMNS)}
    spec.update(kw)
    return spec


def run(scen: Scenario | dict[str, Any], data: ImportedData | None = None) -> pd.DataFrame:
    if isinstance(scen, dict):
        scen = Scenario.model_validate(scen)
    sim = Simulation(scen, make_policy("fifo"), seed=0, record_tasks=True, data=data)
    rec = sim.run().records
    return rec.sort_values(["arrival", "class_id"], kind="stable").reset_index(drop=True)


LOG_ROWS = [
    # minute, class, market, risk, label, handling seconds, ticket
    (0.0, "listing", "US", 0.10, "no", 30, "t1"),
    (0.5, "stream", "UK", 0.90, "yes", 90, "t2"),
    (3.25, "listing", "UK", 0.40, "", 60, "t3"),
    (3.25, "stream", "US", 0.20, "violating", 120, "t4"),
    (10.0, "listing", "US", 0.75, "0", 45, "t5"),
    (61.0, "stream", "UK", 0.05, "TRUE", 150, "t6"),
]


def log_frame(rows=LOG_ROWS, offset: float = 8 * 60) -> pd.DataFrame:
    """The log as an export would have it: timestamps, shuffled row order."""
    df = pd.DataFrame(
        rows, columns=["minute", "queue", "site", "score", "verdict", "aht_s", "ticket"]
    )
    df.insert(0, "created_at", [stamp(offset + m) for m in df.pop("minute")])
    return df.iloc[[3, 0, 5, 1, 4, 2]].reset_index(drop=True)


def expected_rows(rows=LOG_ROWS) -> list[tuple]:
    """Log rows in replay order: by minute, ties by class (the order records are sorted)."""
    order = {"listing": 0, "stream": 1}
    return sorted(rows, key=lambda r: (r[0], order[r[1]]))


# --------------------------------------------------------------------------- replay


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".parquet", ".pq"])
def test_replay_drives_arrivals_at_logged_times(tmp_path: Path, suffix: str) -> None:
    write(log_frame(), tmp_path / f"logs/tasks{suffix}")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", f"logs/tasks{suffix}")]}

    _, data = resolve_data(Scenario.model_validate(d))
    assert data.replay_times("day", "listing") == [0.0, 3.25, 10.0]
    assert data.replay_times("day", "stream") == [0.5, 3.25, 61.0]
    assert data.backlog_rows() == []

    rec = run(d)
    want = expected_rows()
    assert len(rec) == len(want)
    assert rec["arrival"].tolist() == pytest.approx([r[0] for r in want], abs=1e-9)
    assert rec["class"].astype(str).tolist() == [r[1] for r in want]
    assert rec["market"].astype(str).tolist() == [r[2] for r in want]
    assert rec["risk"].tolist() == pytest.approx([r[3] for r in want])
    # The logged handling time (seconds) is the work; the crew works at speed 1.0.
    assert (rec["end"] - rec["start"]).tolist() == pytest.approx([r[5] / 60 for r in want])
    # Labels fix the hidden truth where known; the blank one is drawn from the risk.
    truth = {"no": False, "yes": True, "violating": True, "0": False, "TRUE": True}
    for got, r in zip(rec["violating"], want, strict=True):
        if r[4]:
            assert bool(got) is truth[r[4]]
    # Severity flag recomputed from the logged risk (stream threshold 0.5).
    severe = [r[1] == "stream" and r[3] >= 0.5 for r in want]
    assert rec["severe"].astype(bool).tolist() == severe


def test_next_replay_row_follows_replay_times(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv")]}
    _, data = resolve_data(Scenario.model_validate(d))

    times = data.replay_times("day", "stream")
    rows = [data.next_replay_row("stream") for _ in times]
    assert [r.arrival for r in rows] == times
    assert [r.task_id for r in rows] == ["t2", "t4", "t6"]
    assert all(isinstance(r, TaskRow) and r.cls == "stream" for r in rows)
    assert rows[0].label == 1.0 and rows[0].handling_time == pytest.approx(1.5)
    assert math.isnan(rows[0].reach) and math.isnan(rows[0].severity)
    with pytest.raises(IndexError):
        data.next_replay_row("stream")
    # replay_times rewinds the cursor, so the same data can drive another run
    data.replay_times("day", "stream")
    assert data.next_replay_row("stream").task_id == "t2"


def test_same_imported_data_drives_consecutive_runs(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv")]}
    scen, data = resolve_data(Scenario.model_validate(d))
    first = run(scen, data)
    second = run(scen, data)
    pd.testing.assert_frame_equal(first, second)
    pd.testing.assert_frame_equal(first, run(scen, data.fresh()))


def test_task_row_apply_overwrites_only_known_fields() -> None:
    task = Task()
    task.market, task.risk, task.severe, task.work = 0, 0.3, False, 5.0
    TaskRow("stream", 1.0, market="UK", risk=0.8).apply(task, {"US": 0, "UK": 1}, 0.5)
    assert (task.market, task.risk, task.severe, task.work) == (1, 0.8, True, 5.0)
    TaskRow("stream", 1.0, risk=0.1, handling_time=2.5).apply(task, {"US": 0, "UK": 1}, None)
    assert (task.market, task.risk, task.severe, task.work) == (1, 0.1, False, 2.5)
    TaskRow("stream", 1.0).apply(task, {"US": 0, "UK": 1}, 0.0)
    assert (task.risk, task.severe) == (0.1, False)  # unknown risk: nothing recomputed


def test_replay_reach_severity_and_row_defaults_reported(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "created_at": [stamp(m) for m in (0, 0.5, 1, 3)],
            "queue": ["listing"] * 4,
            "site": ["US", "", "UK", "NA"],
            "score": ["0.2", "", "null", "0.4"],
            "reach": ["100", "", "5", "7"],
            "sev": ["3", "10", "", "1"],
        }
    )
    write(df, tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path, horizon=2.5))
    columns = {"arrival": "created_at", "class": "queue", "market": "site", "risk": "score"}
    columns |= {"reach": "reach", "severity": "sev"}
    d["data"] = {"task_logs": [{"name": "day", "path": "tasks.csv", "columns": columns}]}
    scen, data = resolve_data(Scenario.model_validate(d))
    rec = run(scen, data)
    assert rec["arrival"].tolist() == [0.0, 0.5, 1.0]  # minute 3 is past the horizon
    assert rec["reach"].iloc[0] == 100 and rec["reach"].iloc[2] == 5
    assert rec["severity"].iloc[0] == 3 and rec["severity"].iloc[1] == 10
    assert rec["risk"].iloc[1] == pytest.approx(0.05)  # class prevalence

    summary = data.report.summary()
    assert "2 blank risk (column 'score') values in tasks.csv: drawn from the class risk model" in (
        summary
    )
    assert "2 blank market (column 'site') values in tasks.csv" in summary
    assert "1 blank severity (column 'sev') values in tasks.csv" in summary
    assert "label not mapped for tasks.csv: all 4 ground truth drawn from the risk score" in (
        summary
    )
    assert "1 rows of class listing in log 'day' arrive at or after the horizon" in summary
    by_col = {(x.file, x.column): x.count for x in data.report.defaults}
    assert by_col[("tasks.csv", "reach")] == 1  # column named like the field


def test_replay_log_ignores_rows_before_start(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv", start=stamp(8 * 60 + 1))]}
    _, data = resolve_data(Scenario.model_validate(d))
    assert data.replay_times("day", "listing") == [2.25, 9.0]
    assert data.replay_times("day", "stream") == [2.25, 60.0]
    assert data.backlog_rows() == []
    assert "2 rows of tasks.csv ignored: before minute 0" in data.report.summary()


def test_single_market_scenario_refuses_a_market_column(tmp_path: Path) -> None:
    """A mapped market column the scenario would ignore is an error, not a note."""
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path, markets=["all"]))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv")]}
    with pytest.raises(ConfigError, match=r"columns\.market.*'site'.*would be ignored"):
        resolve_data(Scenario.model_validate(d))
    del d["data"]["task_logs"][0]["columns"]["market"]
    rec = run(d)
    assert set(rec["market"].astype(str)) == {"all"}


# --------------------------------------------------------------------------- backlog


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_backlog_snapshot_seeds_queues_with_ages(tmp_path: Path, suffix: str) -> None:
    # A snapshot taken at 09:00: the last row is the snapshot time, older rows have waited.
    ages = {"b1": 45.0, "b2": 30.0, "b3": 12.5, "b4": 0.0}
    df = pd.DataFrame(
        {
            "created_at": [stamp(9 * 60 - a) for a in ages.values()],
            "queue": ["listing", "stream", "listing", "stream"],
            "site": ["UK", "US", "US", "UK"],
            "ticket": list(ages),
        }
    )
    write(df.iloc[::-1], tmp_path / f"backlog{suffix}")
    d = scenario_dict(
        tmp_path, reviewers=[{"name": "solo", "count": 1, "classes": ["listing", "stream"]}]
    )
    cols = {"arrival": "created_at", "class": "queue", "market": "site", "task_id": "ticket"}
    d["data"] = {
        "task_logs": [
            {"name": "morning", "path": f"backlog{suffix}", "use": "backlog", "columns": cols}
        ]
    }
    _, data = resolve_data(Scenario.model_validate(d))
    rows = data.backlog_rows()
    assert [r.task_id for r in rows] == ["b1", "b2", "b3", "b4"]  # oldest first
    assert [r.arrival for r in rows] == pytest.approx([-45.0, -30.0, -12.5, 0.0])

    rec = run(d).sort_values("arrival").reset_index(drop=True)
    assert rec["arrival"].tolist() == pytest.approx([-a for a in ages.values()])
    assert rec["class"].astype(str).tolist() == ["listing", "stream", "listing", "stream"]
    assert rec["market"].astype(str).tolist() == ["UK", "US", "US", "UK"]
    assert (rec["start"] >= 0).all()
    assert (rec["wait"] >= pd.Series(list(ages.values()))).all()
    # one reviewer, FIFO: served oldest first, back to back (1 + 2 + 1 + 2 minutes of work)
    assert rec["start"].tolist() == pytest.approx([0.0, 1.0, 3.0, 4.0])
    assert rec["wait"].tolist() == pytest.approx([45.0, 31.0, 15.5, 4.0])


def test_backlog_harm_is_counted_from_minute_zero(tmp_path: Path) -> None:
    write(pd.DataFrame({"t": [-30], "queue": ["listing"], "v": ["1"]}), tmp_path / "b.csv")
    d = scenario_dict(tmp_path, horizon=60, reviewers=[], sample_interval=15)
    cols = {"arrival": "t", "class": "queue", "label": "v"}
    log = {"name": "b", "path": "b.csv", "use": "backlog", "timestamp_format": "minutes"}
    d["data"] = {"task_logs": [log | {"columns": cols}]}
    sim = Simulation(Scenario.model_validate(d), make_policy("fifo"), seed=0)
    result = sim.run()
    # one violating item of severity x reach 1, never reviewed: 1 per minute from 0 to 60
    assert result.per_class["listing"]["harm_exposure"] == pytest.approx(60.0)
    assert sim.collector.harm_bins.tolist() == pytest.approx([15.0, 15.0, 15.0, 15.0])


def test_use_both_splits_backlog_and_replay(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.parquet")
    d = replaying(scenario_dict(tmp_path))
    start = stamp(8 * 60 + 3)  # 08:03: rows at 08:00 and 08:00:30 are already waiting
    d["data"] = {"task_logs": [task_log("day", "tasks.parquet", use="both", start=start)]}
    _, data = resolve_data(Scenario.model_validate(d))
    assert [(r.task_id, r.arrival) for r in data.backlog_rows()] == [("t1", -3.0), ("t2", -2.5)]
    assert data.replay_times("day", "listing") == [0.25, 7.0]
    assert data.replay_times("day", "stream") == [0.25, 58.0]

    rec = run(d)
    assert rec["arrival"].tolist() == pytest.approx([-3.0, -2.5, 0.25, 0.25, 7.0, 58.0])
    assert rec["task_id"].nunique() == 6
    backlog = rec[rec["arrival"] < 0]
    assert (backlog["start"] == 0.0).all()
    assert backlog["wait"].tolist() == pytest.approx([3.0, 2.5])


def test_use_both_requires_start(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv", use="both")]}
    with pytest.raises(ConfigError, match=r"data\.task_logs\.0\.start.*use: both needs start"):
        resolve_data(Scenario.model_validate(d))


def test_class_cannot_replay_a_backlog_only_log(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "tasks.csv", use="backlog")]}
    with pytest.raises(ConfigError, match="use is 'backlog'"):
        resolve_data(Scenario.model_validate(d))


# --------------------------------------------------------------------------- units and formats

MINUTES = [0.0, 0.5, 1.25, 90.0]


@pytest.mark.parametrize(
    ("fmt", "cells", "start"),
    [
        ("iso", [stamp(420 + m) for m in MINUTES], None),
        ("iso", [stamp(420 + m).replace("T", " ").rstrip("Z") for m in MINUTES], None),
        ("unix_s", [int(DAY0.timestamp() + (420 + m) * 60) for m in MINUTES], None),
        ("unix_ms", [int((DAY0.timestamp() + (420 + m) * 60) * 1000) for m in MINUTES], None),
        ("minutes", [m + 7.0 for m in MINUTES], "7"),
        ("minutes", MINUTES, None),
        (
            "%d/%m/%Y %H:%M:%S",
            [(DAY0 + pd.Timedelta(minutes=420 + m)).strftime("%d/%m/%Y %H:%M:%S") for m in MINUTES],
            None,
        ),
        ("unix_s", [int(DAY0.timestamp() + (420 + m) * 60) for m in MINUTES], stamp(420)),
    ],
)
def test_timestamp_formats(tmp_path: Path, fmt: str, cells: list, start: str | None) -> None:
    df = pd.DataFrame({"t": cells, "queue": "listing"})
    write(df, tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    log = {"name": "day", "path": "tasks.csv", "timestamp_format": fmt}
    log["columns"] = {"arrival": "t", "class": "queue"}
    if start is not None:
        log["start"] = start
    d["data"] = {"task_logs": [log]}
    _, data = resolve_data(Scenario.model_validate(d))
    assert data.replay_times("day", "listing") == pytest.approx(MINUTES, abs=1e-9)


def test_parquet_native_types(tmp_path: Path) -> None:
    """Parquet keeps datetimes, floats and booleans typed; they must read like CSV text."""
    df = pd.DataFrame(
        {
            "created_at": pd.to_datetime([stamp(m) for m in (600, 602, 601)]),
            "queue": pd.Categorical(["listing", "stream", "listing"]),
            "score": [0.1, np.nan, 0.7],
            "flag": [True, False, True],
            "aht_min": [1.5, 2.0, np.nan],
        }
    )
    write(df, tmp_path / "tasks.parquet")
    d = replaying(scenario_dict(tmp_path))
    cols = {"arrival": "created_at", "class": "queue", "risk": "score", "label": "flag"}
    cols["handling_time"] = "aht_min"
    d["data"] = {
        "task_logs": [
            {
                "name": "day",
                "path": "tasks.parquet",
                "columns": cols,
                "handling_time_unit": "minutes",
            }
        ]
    }
    _, data = resolve_data(Scenario.model_validate(d))
    assert data.replay_times("day", "listing") == [0.0, 1.0]
    rows = [data.next_replay_row("listing") for _ in range(2)]
    assert [r.label for r in rows] == [1.0, 1.0]
    assert rows[0].handling_time == 1.5 and math.isnan(rows[1].handling_time)
    data.replay_times("day", "stream")
    s = data.next_replay_row("stream")
    assert (s.label, math.isnan(s.risk), s.handling_time) == (0.0, True, 2.0)


@pytest.mark.parametrize(
    ("unit", "factor"), [("seconds", 1 / 60), ("minutes", 1.0), ("hours", 60.0)]
)
def test_handling_time_units(tmp_path: Path, unit: str, factor: float) -> None:
    df = pd.DataFrame({"t": [0, 1], "queue": "listing", "aht": ["3", "0.5"]})
    write(df, tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path, horizon=600))
    cols = {"arrival": "t", "class": "queue", "handling_time": "aht"}
    d["data"] = {
        "task_logs": [
            {
                "name": "day",
                "path": "tasks.csv",
                "timestamp_format": "minutes",
                "handling_time_unit": unit,
                "columns": cols,
            }
        ]
    }
    rec = run(d)
    assert (rec["end"] - rec["start"]).tolist() == pytest.approx([3 * factor, 0.5 * factor])


def test_numeric_labels_match_label_true(tmp_path: Path) -> None:
    df = pd.DataFrame({"t": [0, 1, 2, 3], "queue": "listing", "v": ["1.0", "0.0", "Yes ", "x"]})
    write(df, tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    cols = {"arrival": "t", "class": "queue", "label": "v"}
    d["data"] = {
        "task_logs": [
            {"name": "day", "path": "tasks.csv", "timestamp_format": "minutes", "columns": cols}
        ]
    }
    _, data = resolve_data(Scenario.model_validate(d))
    data.replay_times("day", "listing")
    assert [data.next_replay_row("listing").label for _ in range(4)] == [1.0, 0.0, 1.0, 0.0]
    assert "labels read as not violating in tasks.csv: '0', 'x'" in data.report.summary()


# --------------------------------------------------------------------------- rosters

ROSTER_COLUMNS = {
    "reviewer_id": "agent",
    "markets": "sites",
    "classes": "queues",
    "accuracy": "qa_score",
    "mean_handling_time": "aht_s",
    "shift_start": "from",
    "shift_end": "to",
}


def roster_frame() -> pd.DataFrame:
    return pd.DataFrame(
        [
            # identical people written three ways: JSON, delimited, different order
            ("a-1", '["US", "UK"]', "listing|stream", "0.92", "60", "08:00", "16:00"),
            ("a 2", "UK|US", '["stream","listing"]', "0.92", "60", "8:00", "16:00"),
            ("a3", "US | UK", "stream | listing", "0.92", "60.0", "08:00", "16:00"),
            # a night owl with a blank accuracy (-> mean) and no mean handling time (speed 1)
            ("n1", "US", "stream", "", "", "22:00", "06:00"),
            # always on duty, all markets, default classes, slower on everything
            ("z9", "", "", "0.80", "120", "", ""),
        ],
        columns=["agent", "sites", "queues", "qa_score", "aht_s", "from", "to"],
    )


def roster_scenario(tmp_path: Path, suffix: str = ".csv", **roster: Any) -> dict[str, Any]:
    write(roster_frame(), tmp_path / f"roster{suffix}")
    d = scenario_dict(tmp_path)
    spec = {
        "path": f"roster{suffix}",
        "columns": dict(ROSTER_COLUMNS),
        "default_classes": ["listing"],
    }
    spec.update(roster)
    d["data"] = {"rosters": [spec]}
    return d


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_roster_groups_merge_identical_reviewers(tmp_path: Path, suffix: str) -> None:
    d = roster_scenario(tmp_path, suffix)
    original = Scenario.model_validate(d)
    before = original.model_dump()
    scen, data = resolve_data(original)
    assert original.model_dump() == before  # input untouched
    assert scen is not original and scen.data.rosters == []

    groups = {g.name: g for g in scen.reviewers}
    assert list(groups) == ["crew", "roster_a-1", "roster_n1", "roster_z9"]
    day = groups["roster_a-1"]
    assert day.count == 3
    assert day.classes == ["listing", "stream"]
    assert day.markets == ["US", "UK"]
    assert day.default_accuracy.sensitivity == pytest.approx(0.92)
    assert day.default_accuracy.specificity == pytest.approx(0.97)
    # handling means: listing 1 min, stream 2 min; reviewer mean 60 s = 1 min
    assert day.speed == pytest.approx({"listing": 1.0, "stream": 2.0})
    assert [(s.start, s.end) for s in day.shifts] == [(480.0, 960.0)]

    night = groups["roster_n1"]
    assert night.count == 1 and night.classes == ["stream"] and night.markets == ["US"]
    # blank accuracy -> mean of the non-blank ones: (0.92 * 3 + 0.80) / 4
    assert night.default_accuracy.sensitivity == pytest.approx(0.89)
    assert night.speed == {}
    assert [(s.start, s.end) for s in night.shifts] == [(1320.0, 360.0)]

    z = groups["roster_z9"]
    assert (z.classes, z.markets, z.shifts) == (["listing"], "all", [])
    assert z.speed == pytest.approx({"listing": 0.5})

    summary = data.report.summary()
    assert "1 blank accuracy (column 'qa_score') values in roster" in summary
    assert "set to the file's mean accuracy 0.89" in summary
    assert "1 blank mean_handling_time (column 'aht_s') values in roster" in summary
    assert "speed 1.0" in summary
    assert "1 blank classes (column 'queues') values" in summary
    assert "1 blank markets (column 'sites') values" in summary
    assert "1 blank shift_start/shift_end values" in summary
    assert "5 reviewers in 3 groups" in summary


def test_roster_accuracy_by_class_and_minutes_shifts(tmp_path: Path) -> None:
    df = pd.DataFrame(
        {
            "id": ["x", "y", "z"],
            "acc": ["0.9", "0.9", "0.9"],
            "acc_stream": ["0.7", "", "0.7"],
            "aht": ["2", "2", "2"],
            "on": ["0", "0", "60"],
            "off": ["1440", "1440", "600"],
        }
    )
    write(df, tmp_path / "r.csv")
    d = scenario_dict(tmp_path, reviewers=[])
    cols = {"reviewer_id": "id", "accuracy": "acc", "accuracy_by_class": {"stream": "acc_stream"}}
    cols |= {"mean_handling_time": "aht", "shift_start": "on", "shift_end": "off"}
    d["data"] = {
        "rosters": [
            {
                "path": "r.csv",
                "columns": cols,
                "default_classes": ["listing", "stream"],
                "handling_time_unit": "minutes",
                "shift_time_format": "minutes",
                "specificity": 0.99,
            }
        ]
    }
    scen, data = resolve_data(Scenario.model_validate(d))
    x, y, z = scen.reviewers
    assert (x.name, x.count, y.name, z.name) == ("roster_x", 1, "roster_y", "roster_z")
    assert x.accuracy["stream"].sensitivity == 0.7 and x.accuracy["stream"].specificity == 0.99
    assert y.accuracy == {}  # blank per-class accuracy: falls back to the overall one
    assert y.default_accuracy.sensitivity == 0.9
    assert x.shifts == [] and y.shifts == []  # 0..1440 is the whole day
    assert [(s.start, s.end) for s in z.shifts] == [(60.0, 600.0)]
    assert x.speed == pytest.approx({"listing": 0.5, "stream": 1.0})
    assert "accuracy_by_class.stream (column 'acc_stream')" in data.report.summary()


def test_roster_group_names_are_sanitised_and_unique(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["crew", "a b/c", "9:x"], "aht": ["60", "30", "20"]})
    write(df, tmp_path / "r.csv")
    d = scenario_dict(tmp_path)
    d["reviewers"].append({"name": "roster_crew", "count": 1, "classes": ["listing"]})
    d["data"] = {
        "rosters": [
            {
                "path": "r.csv",
                "columns": {"reviewer_id": "id", "mean_handling_time": "aht"},
                "default_classes": ["listing"],
            }
        ]
    }
    scen, _ = resolve_data(Scenario.model_validate(d))
    names = [g.name for g in scen.reviewers]
    assert names == ["crew", "roster_crew", "roster_crew_2", "roster_a_b_c", "roster_9_x"]


def test_resolving_twice_does_not_duplicate_rostered_reviewers(tmp_path: Path) -> None:
    scen, _ = resolve_data(Scenario.model_validate(roster_scenario(tmp_path)))
    again, _ = resolve_data(scen)
    assert [g.name for g in again.reviewers] == [g.name for g in scen.reviewers]


def test_roster_shifts_drive_the_simulation(tmp_path: Path) -> None:
    """Only the rostered day shift (08:00-16:00) works; replayed tasks wait for it."""
    df = pd.DataFrame({"id": ["d1", "d2"], "s": ["08:00", "08:00"], "e": ["16:00", "16:00"]})
    write(df, tmp_path / "r.csv")
    tasks = pd.DataFrame({"t": [stamp(m) for m in (60, 300, 500)], "queue": "listing"})
    write(tasks, tmp_path / "t.csv")
    d = replaying(scenario_dict(tmp_path, horizon=1000, reviewers=[]))
    d["data"] = {
        "task_logs": [
            {
                "name": "day",
                "path": "t.csv",
                "start": stamp(0),
                "columns": {"arrival": "t", "class": "queue"},
            }
        ],
        "rosters": [
            {
                "path": "r.csv",
                "columns": {"reviewer_id": "id", "shift_start": "s", "shift_end": "e"},
                "default_classes": ["listing"],
            }
        ],
    }
    rec = run(d)
    assert rec["arrival"].tolist() == [60.0, 300.0, 500.0]
    assert rec["start"].tolist() == [480.0, 480.0, 500.0]
    assert set(rec["group"]) == {"roster_d1"}


# --------------------------------------------------------------------------- errors


def assert_one_line_data_error(exc: pytest.ExceptionInfo, *parts: str) -> None:
    msg = str(exc.value)
    assert isinstance(exc.value, DataError)
    assert "\n" not in msg
    for part in parts:
        assert part in msg, f"{part!r} not in {msg!r}"


TASK_ERROR_CASES = [
    # (description, row index to break, column, bad value, expected fragments)
    ("timestamp", 2, "created_at", "yesterday", ["unparsable timestamp 'yesterday'"]),
    ("blank timestamp", 1, "created_at", "", ["blank arrival timestamp"]),
    ("risk text", 3, "score", "high", ["risk 'high' is not a number"]),
    ("risk range", 4, "score", "1.7", ["out of range [0, 1]", "divide by 100"]),
    ("risk negative", 0, "score", "-0.1", ["out of range [0, 1]"]),
    ("class", 5, "queue", "Listings", ["unknown class label: 'Listings' (row 6", "listing"]),
    ("class blank", 1, "queue", "", ["blank task class"]),
    ("market", 2, "site", "DE", ["unknown market code: 'DE' (row 3)", "'US', 'UK'"]),
    ("handling", 0, "aht_s", "1m30s", ["not a number"]),
    ("handling negative", 0, "aht_s", "-5", ["below 0"]),
]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
@pytest.mark.parametrize(
    ("what", "i", "col", "bad", "fragments"), TASK_ERROR_CASES, ids=[c[0] for c in TASK_ERROR_CASES]
)
def test_task_log_errors_name_file_row_column(
    tmp_path: Path, suffix: str, what: str, i: int, col: str, bad: str, fragments: list[str]
) -> None:
    df = log_frame().astype(str)
    df.loc[i, col] = bad
    write(df, tmp_path / f"tasks{suffix}")
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", f"tasks{suffix}")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(exc, f"tasks{suffix}", f"column '{col}'", *fragments)
    assert re.search(rf"row {i + 1}\b", str(exc.value))


def test_market_outside_class_mix_is_an_error(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(scenario_dict(tmp_path))
    d["classes"][1]["market_mix"] = {"UK": 1.0}
    d["data"] = {"task_logs": [task_log("day", "tasks.csv")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    # the first stream row from the US is t4, row 1 of the shuffled export
    assert_one_line_data_error(
        exc, "tasks.csv", "row 1,", "column 'site'", "market_mix of class stream"
    )


def test_missing_file_and_column_and_empty_log(tmp_path: Path) -> None:
    d = replaying(scenario_dict(tmp_path))
    d["data"] = {"task_logs": [task_log("day", "nope.csv")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(
        exc, str(tmp_path / "nope.csv"), "file not found", "task_logs.0.path"
    )

    write(log_frame().drop(columns=["score"]), tmp_path / "tasks.csv")
    d["data"] = {"task_logs": [task_log("day", "tasks.csv")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(
        exc, "tasks.csv", "column 'score' (mapped as risk) not found", "'created_at', 'queue'"
    )

    write(log_frame().iloc[:0], tmp_path / "empty.csv")
    d["data"] = {"task_logs": [task_log("day", "empty.csv")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(exc, "empty.csv", "no rows")

    (tmp_path / "blank.csv").write_text("")
    d["data"] = {"task_logs": [task_log("day", "blank.csv")]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(exc, "blank.csv", "no rows")

    write(log_frame(), tmp_path / "tasks.xlsx")
    d["data"] = {"task_logs": [task_log("day", "tasks.xlsx")]}
    with pytest.raises(DataError, match="unsupported file type"):
        resolve_data(Scenario.model_validate(d))


ROSTER_ERROR_CASES = [
    ("json", 0, "sites", '["US", "UK"', ["malformed JSON list"]),
    ("json not a list", 1, "queues", '["listing", {"a": 1}]', ["not a JSON list of names"]),
    ("percent", 2, "qa_score", "92", ["looks like a percentage", "share in [0, 1]"]),
    ("accuracy text", 3, "qa_score", "good", ["accuracy 'good' is not a number"]),
    ("accuracy range", 4, "qa_score", "250", ["out of range [0, 1]"]),
    ("class", 1, "queues", "listing|appeals", ["unknown class label: 'appeals' (row 2"]),
    ("market", 3, "sites", "US|FR", ["unknown market code: 'FR' (row 4)"]),
    ("shift", 0, "from", "8am", ["not a time of day"]),
    ("shift half", 2, "to", "", ["only one of shift_start and shift_end"]),
    ("shift equal", 1, "to", "08:00", ["ends when it starts"]),
    ("duplicate id", 4, "agent", "a-1", ["already on row 1"]),
    ("blank id", 2, "agent", "", ["blank reviewer id"]),
    ("handling", 3, "aht_s", "0", ["not > 0"]),
]


@pytest.mark.parametrize(
    ("what", "i", "col", "bad", "fragments"),
    ROSTER_ERROR_CASES,
    ids=[c[0] for c in ROSTER_ERROR_CASES],
)
def test_roster_errors_name_file_row_column(
    tmp_path: Path, what: str, i: int, col: str, bad: str, fragments: list[str]
) -> None:
    df = roster_frame()
    df.loc[i, col] = bad
    write(df, tmp_path / "roster.csv")
    d = scenario_dict(tmp_path)
    d["data"] = {
        "rosters": [
            {"path": "roster.csv", "columns": ROSTER_COLUMNS, "default_classes": ["listing"]}
        ]
    }
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(exc, "roster.csv", f"column '{col}'", *fragments)
    assert re.search(rf"row {i + 1}\b", str(exc.value))


def test_roster_blank_classes_without_default_is_an_error(tmp_path: Path) -> None:
    write(roster_frame(), tmp_path / "roster.csv")
    d = scenario_dict(tmp_path)
    d["data"] = {"rosters": [{"path": "roster.csv", "columns": ROSTER_COLUMNS}]}
    with pytest.raises(DataError) as exc:
        resolve_data(Scenario.model_validate(d))
    assert_one_line_data_error(exc, "roster.csv", "row 5,", "column 'queues'", "default_classes")


def test_roster_config_errors(tmp_path: Path) -> None:
    write(roster_frame(), tmp_path / "roster.csv")
    d = scenario_dict(tmp_path)
    cols = {"reviewer_id": "agent", "accuracy_by_class": {"appeals": "qa_score"}}
    d["data"] = {
        "rosters": [{"path": "roster.csv", "columns": cols, "default_classes": ["listing"]}]
    }
    with pytest.raises(ConfigError, match="accuracy_by_class.*unknown classes"):
        resolve_data(Scenario.model_validate(d))
    d["data"] = {"rosters": [{"path": "roster.csv", "columns": {"reviewer_id": "agent"}}]}
    with pytest.raises(ConfigError, match="default_classes"):
        resolve_data(Scenario.model_validate(d))


# --------------------------------------------------------------------------- full scenario file


def test_yaml_scenario_with_data_section_loads_and_simulates(tmp_path: Path) -> None:
    folder = tmp_path / "ops"
    write(log_frame(), folder / "exports/tasks.csv.gz")
    backlog = pd.DataFrame(
        {"opened": [stamp(400), stamp(470)], "type": ["listing", "stream"], "mkt": ["US", "UK"]}
    )
    write(backlog, folder / "exports/backlog.parquet")
    write(roster_frame(), folder / "exports/roster.csv")
    scenario = {
        "name": "ops_replay",
        "horizon": 240,
        "markets": ["US", "UK"],
        "classes": [
            {
                "name": "listing",
                "handling": {"kind": "lognormal", "mean": 1.0, "cv": 0.5},
                "arrivals": {"kind": "replay", "log": "day"},
            },
            {
                "name": "stream",
                "handling": {"kind": "exponential", "mean": 2.0},
                "arrivals": {"kind": "poisson", "rate": 0.05},
                "severe_risk_threshold": 0.5,
            },
        ],
        "data": {
            "task_logs": [
                {
                    "name": "day",
                    "path": "exports/tasks.csv.gz",
                    "start": "2024-03-01 08:00:00",
                    "columns": TASK_COLUMNS,
                },
                {
                    "name": "queue_at_8",
                    "path": "exports/backlog.parquet",
                    "use": "backlog",
                    "start": "2024-03-01T08:00:00Z",
                    "columns": {"arrival": "opened", "class": "type", "market": "mkt"},
                },
            ],
            "rosters": [
                {
                    "path": "exports/roster.csv",
                    "columns": ROSTER_COLUMNS,
                    "default_classes": ["listing", "stream"],
                }
            ],
        },
    }
    (folder / "scenario.yaml").write_text(yaml.safe_dump(scenario, sort_keys=False))

    scen = load_scenario(folder / "scenario.yaml")
    assert scen.base_dir == str(folder.resolve())
    resolved, data = resolve_data(scen)
    assert sum(g.count for g in resolved.reviewers) == 5
    assert [r.arrival for r in data.backlog_rows()] == [-80.0, -10.0]
    assert "unused" in data.report.summary()  # stream rows of 'day': stream is Poisson

    result = simulate(scen, "fifo", seed=3, record_tasks=True)
    rec = result.records
    listing = rec[(rec["class"] == "listing") & (rec["arrival"] >= 0)]
    assert sorted(listing["arrival"]) == [0.0, 3.25, 10.0]
    assert sorted(rec.loc[rec["arrival"] < 0, "arrival"]) == [-80.0, -10.0]
    assert result.per_class["listing"]["arrivals"] == 4  # 3 replayed + 1 backlog
    assert set(result.per_group) == {g.name for g in resolved.reviewers}


def test_report_summary_is_readable(tmp_path: Path) -> None:
    write(log_frame(), tmp_path / "tasks.csv")
    d = replaying(roster_scenario(tmp_path))
    d["data"]["task_logs"] = [task_log("day", "tasks.csv")]
    _, data = resolve_data(Scenario.model_validate(d))
    text = data.report.summary()
    assert text.splitlines()[0] == "Imported data:"
    assert "task log 'day' (tasks.csv): 6 rows read; minute 0 = 2024-03-01 08:00:00+00:00" in text
    assert "(first arrival); 6 replayed, 0 backlog" in text
    assert "not midnight" in text  # rostered shifts but minute 0 at 08:00
    assert all(len(f.sha256 or "") == 64 for f in data.report.files)
    json.dumps([str(x) for x in data.report.defaults])  # plain strings
