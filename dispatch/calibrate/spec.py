"""What ``dispatch calibrate`` reads: a calibration config, or a simulator export as it is.

A calibration config (YAML) names a task log with its columns, read with the same options
as a scenario's ``data:`` section (``na_values``, ``class_map``, ``market_map``, column
``transform`` ...), and optionally a roster::

    name: moderation_calibrated
    task_log:
      path: exports/tasks.csv
      timestamp_format: iso
      columns: {arrival: created_at, class: queue, market: site, start: picked_at,
                end: decided_at, outcome: status, reviewer: agent, group: team,
                decision: action, truth: qa_verdict}
      expired_values: [expired, abandoned]
    slot: 60

A task log written by ``dispatch simulate --out DIR --records`` (``tasks.parquet``) needs no
config: :func:`simulator_log` maps its columns (documented in the README section
"Calibrating a scenario").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from dispatch.dataspec import (
    ColumnRef,
    ColumnSpec,
    RosterSpec,
    TextList,
    _ExportFile,
    no_numeric_options,
)
from dispatch.errors import ConfigError

_STRICT = ConfigDict(extra="forbid")


class CalibrationColumns(BaseModel):
    """Which column of the task log holds each field (only ``arrival`` and ``class`` needed)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    arrival: ColumnRef = Field(description="Arrival (creation) time; never blank.")
    task_class: ColumnRef = Field(alias="class", description="Class label; never blank.")
    market: ColumnRef | None = Field(default=None, description="Market code; blank: unknown.")
    start: ColumnRef | None = Field(
        default=None, description="Time the review started (same format as arrival)."
    )
    end: ColumnRef | None = Field(
        default=None, description="Time the review ended, or the task expired."
    )
    handling_time: ColumnRef | None = Field(
        default=None,
        description="Handling time in handling_time_unit; default end - start of reviewed tasks.",
    )
    outcome: ColumnRef | None = Field(
        default=None, description="Outcome; texts in expired_values mean the task expired."
    )
    reviewer: ColumnRef | None = Field(default=None, description="Reviewer id (headcounts).")
    group: ColumnRef | None = Field(
        default=None, description="Reviewer group or team (handling speed and accuracy per group)."
    )
    decision: ColumnRef | None = Field(
        default=None, description="The reviewer's decision; texts in positive_values = enforce."
    )
    truth: ColumnRef | None = Field(
        default=None,
        description="QA outcome / ground truth; texts in label_true = violating; blank: not QA'd.",
    )
    risk: ColumnRef | None = Field(
        default=None, description="Risk score in [0, 1] (fits the class's risk distribution)."
    )

    @model_validator(mode="after")
    def _options_fit(self) -> CalibrationColumns:
        names = self.mapped()
        no_numeric_options(
            {k: v for k, v in names.items() if k not in ("handling_time", "risk")}, "columns"
        )
        return self

    def mapped(self) -> dict[str, ColumnSpec]:
        out = {}
        for name in type(self).model_fields:
            ref = getattr(self, name)
            if ref is not None:
                out["class" if name == "task_class" else name] = ref
        return out


class CalibrationLog(_ExportFile):
    """The task log to calibrate from (CSV or Parquet)."""

    columns: CalibrationColumns = Field(description="Which column holds which field.")
    timestamp_format: str = Field(
        default="iso",
        description="'iso', 'unix_s', 'unix_ms', 'minutes' or a strftime pattern (as in "
        "data.task_logs).",
    )
    start: str | None = Field(
        default=None,
        description="Timestamp of minute 0 (midnight of a day; a Monday for a weekly profile). "
        "Default: midnight (UTC) of the first arrival's day, or the Monday before; for "
        "'minutes' logs minute 0 of the log.",
    )
    handling_time_unit: Literal["seconds", "minutes", "hours"] = Field(
        default="seconds", description="Unit of the handling_time column."
    )
    expired_values: TextList = Field(
        default_factory=lambda: ["expired", "abandoned", "timeout", "timed_out"],
        description="Outcome texts meaning the task expired unreviewed (case-insensitive).",
    )
    positive_values: TextList = Field(
        default_factory=lambda: ["1", "true", "yes", "positive", "enforce", "violating"],
        description="Decision texts meaning the reviewer enforced (case-insensitive).",
    )
    label_true: TextList = Field(
        default_factory=lambda: ["1", "true", "yes", "violating"],
        description="Truth texts meaning violating (case-insensitive).",
    )
    window: tuple[float, float] | None = Field(
        default=None,
        description="[first, last) minute (relative to minute 0) the log covers; default: "
        "the arrivals' span rounded out to whole slots (minutes logs: from minute 0).",
    )

    @field_validator("window")
    @classmethod
    def _window_ordered(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None and not v[1] > v[0]:
            raise ValueError("window must be [first, last) with last > first")
        return v

    @field_validator("start", mode="before")
    @classmethod
    def _start_as_text(cls, v: Any) -> Any:
        import datetime

        if isinstance(v, datetime.datetime | datetime.date):
            return v.isoformat()
        return v if v is None or isinstance(v, str) else str(v)


class CalibrationSpec(BaseModel):
    """A calibration: the task log, an optional roster, and how to fit."""

    model_config = _STRICT
    name: str = Field(default="calibrated", description="Name of the written scenario.")
    task_log: CalibrationLog = Field(description="The task log to fit.")
    roster: RosterSpec | None = Field(
        default=None,
        description="Roster for the written scenario's reviewers (as data.rosters); default: "
        "groups fitted from the log's group and reviewer columns.",
    )
    slot: float = Field(
        default=60.0, gt=0, le=1440, description="Slot of the arrival profile, minutes."
    )
    profile: Literal["auto", "daily", "weekly"] = Field(
        default="auto",
        description="Arrival profile by time of day (daily) or day of week and time (weekly); "
        "auto: weekly when the log spans 7 days or more.",
    )
    criterion: Literal["aic", "ks"] = Field(
        default="aic",
        description="How the handling-time family is chosen: lowest AIC (maximum likelihood) "
        "or lowest Kolmogorov-Smirnov statistic.",
    )
    min_samples: int = Field(
        default=30,
        ge=2,
        description="Fewest observations for a per-group fit (speed, accuracy by class).",
    )
    horizon: float | None = Field(
        default=None, gt=0, description="Horizon of the written scenario; default one period."
    )
    base_dir: str | None = Field(default=None, description="Set on load: relative paths.")

    @model_validator(mode="after")
    def _slot_divides_a_day(self) -> CalibrationSpec:
        if abs(1440.0 / self.slot - round(1440.0 / self.slot)) > 1e-9:
            raise ValueError("slot must divide a day (1440 minutes): 15, 30, 60, 120, ...")
        return self

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        return p if p.is_absolute() or not self.base_dir else Path(self.base_dir) / p


#: Columns of ``dispatch simulate --records`` output that the simulator mapping reads.
SIMULATOR_COLUMNS = (
    "class",
    "market",
    "arrival",
    "start",
    "end",
    "outcome",
    "reviewer",
    "group",
    "violating",
    "positive",
    "risk",
)


def simulator_log(path: str | Path) -> CalibrationLog:
    """The mapping of a simulator export (``tasks.parquet`` of ``simulate --records``).

    Minutes since minute 0 (taken as a Monday 00:00 for a weekly profile); ``reviewer`` -1
    and ``group`` None mark tasks nobody reviewed; ``violating`` is the hidden truth, known
    for every task, so accuracy is fitted from all reviewed tasks.
    """
    return CalibrationLog.model_validate(
        {
            "path": str(path),
            "timestamp_format": "minutes",
            "handling_time_unit": "minutes",
            "expired_values": ["expired"],
            "positive_values": ["true", "1"],
            "label_true": ["true", "1"],
            "columns": {
                "arrival": "arrival",
                "class": "class",
                "market": "market",
                "start": "start",
                "end": "end",
                "outcome": "outcome",
                "reviewer": {"column": "reviewer", "na_values": ["-1"]},
                "group": "group",
                "decision": "positive",
                "truth": "violating",
                "risk": "risk",
            },
        }
    )


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> CalibrationSpec:
    """A calibration config file, or a simulator export (``.parquet``/``.csv``) as it is."""
    from dispatch.scenario import apply_overrides, format_validation_error, read_yaml

    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        data = apply_overrides(read_yaml(p), overrides)
        data.setdefault("base_dir", str(p.parent.resolve()))
    else:
        if not p.exists():
            raise ConfigError("file not found; check the path", source=str(p))
        _check_simulator_export(p)
        data = apply_overrides(
            {"name": f"{p.parent.name or 'log'}_calibrated", "task_log": {}}, overrides
        )
        data["task_log"] = simulator_log(p.resolve()).model_dump(by_alias=True) | data["task_log"]
    try:
        return CalibrationSpec.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, str(p)) from None


def _check_simulator_export(path: Path) -> None:
    """The file's header has the simulator's columns (read without loading the rows)."""
    import pandas as pd

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            names = list(pq.read_schema(path).names)
        else:
            names = list(pd.read_csv(path, nrows=0).columns)
    except Exception as exc:  # unreadable: say so in one line
        raise ConfigError(
            f"cannot read the file ({type(exc).__name__}); give a calibration config (.yaml) or "
            f"a tasks.parquet written by dispatch simulate --records",
            source=str(path),
        ) from None
    missing = [c for c in SIMULATOR_COLUMNS if c not in names]
    if missing:
        raise ConfigError(
            f"not a task log of dispatch simulate --records (missing columns {missing}); for "
            f"another export write a calibration config (README: Calibrating a scenario)",
            source=str(path),
        )
