"""Tests for :mod:`dispatch.importers`: task-log replay and backlog, rosters, errors.

Every fixture file is written by the test into ``tmp_path`` (CSV, gzipped CSV and Parquet),
and the checks go through the real simulator: a replayed log must produce tasks at exactly
the logged minutes with the logged attributes, and a backlog must wait at least its age.
"""

from __future__ import annotations

import json
import math
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
    return sim.run().records.sort_values(["arrival", "task_id"]).reset_index(drop=True)


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


