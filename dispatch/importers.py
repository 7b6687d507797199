"""Import a real operation's exports: task logs (arrivals and backlog) and reviewer rosters.

A scenario's ``data:`` section points at files exported from the production queueing system.
Task logs either *replay* the day's arrivals at their recorded minutes (so a policy is judged
on the traffic that actually happened, not on a fitted Poisson model) or *seed the backlog*
that was waiting when a snapshot was taken. Rosters turn the people on staff into reviewer
groups, so the simulated workforce is the real one.

Exports are messy, so this module is strict about what it cannot interpret and explicit about
what it fills in:

* every unreadable value raises :class:`~dispatch.errors.DataError` with one line naming the
  file, the 1-based data row (the header is not counted) and the column, and saying what to
  fix -- a planner can correct the export without reading a traceback;
* every default applied (a blank risk score drawn from the class model, a blank accuracy set
  to the file's mean, ...) is counted per file and column in an :class:`ImportReport`, so
  nobody mistakes a simulated value for a measured one.

Timestamps: ``iso`` strings (naive ones are taken as UTC, offsets are converted to UTC),
``unix_s``, ``unix_ms``, ``minutes`` (already minutes since minute 0; only ``start`` shifts
them) or a strftime pattern. Cells that read ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` or
nothing at all count as blank.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import time as dt_time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from pydantic import ValidationError

from dispatch.errors import ConfigError, DataError
from dispatch.scenario import (
    AccuracySpec,
    ProfileArrivals,
    ReplayArrivals,
    ReviewerGroup,
    RosterSpec,
    Scenario,
    Shift,
    TaskLogSpec,
    format_validation_error,
)

__all__ = [
    "DefaultApplied",
    "ImportReport",
    "ImportedData",
    "LoadedFile",
    "TaskRow",
    "resolve_data",
]

#: Cell contents read as "no value" (compared after stripping and lower-casing).
NULL_TOKENS = frozenset({"", "na", "n/a", "nan", "nat", "null", "none"})

_UNIT_TO_MINUTES = {"seconds": 1.0 / 60.0, "minutes": 1.0, "hours": 60.0}
_NUMERIC_TIME_SCALE = {"unix_s": 1.0 / 60.0, "unix_ms": 1.0 / 60000.0, "minutes": 1.0}
_CSV_SUFFIXES = (".csv", ".csv.gz")
_PARQUET_SUFFIXES = (".parquet", ".pq")
_GROUP_NAME_BAD = re.compile(r"[^A-Za-z0-9_\-\.]")
_HHMM = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?$")
_DAY = 1440.0

# What the simulator does with a blank (or unmapped) task-log field.
_TASK_DEFAULTS = {
    "market": "drawn from the class market mix",
    "risk": "drawn from the class risk model",
    "reach": "drawn from the class reach model",
    "severity": "drawn from the class severity model",
    "label": "ground truth drawn from the risk score",
    "handling_time": "drawn from the class handling-time model",
}


# ------------------------------------------------------------------------------------------
# Rows handed to the simulator
# ------------------------------------------------------------------------------------------
class TaskRow:
    """One logged task, as the simulator consumes it.

    Slotted and plain (not pydantic) because a replayed day can hold a million of them and
    the simulator touches each once per arrival. Unknown numeric fields are ``nan``, which
    the simulator reads as "draw from the class model" (``x == x`` is False only for nan).
    ``arrival`` is in minutes relative to minute 0: non-positive for backlog rows (their age
    counts towards waiting time and SLA), non-negative for replayed rows. ``log`` and ``row``
    (the 1-based data row) trace a simulated task back to its line in the export.
    """

    __slots__ = (
        "cls",
        "arrival",
        "market",
        "risk",
        "reach",
        "severity",
        "label",
        "handling_time",
        "task_id",
        "log",
        "row",
    )

    def __init__(
        self,
        cls: str,
        arrival: float,
        market: str | None = None,
        risk: float = math.nan,
        reach: float = math.nan,
        severity: float = math.nan,
        label: float = math.nan,
        handling_time: float = math.nan,
        task_id: str | None = None,
        log: str = "",
        row: int = 0,
    ):
        self.cls = cls
        self.arrival = arrival
        self.market = market
        self.risk = risk
        self.reach = reach
        self.severity = severity
        self.label = label
        self.handling_time = handling_time
        self.task_id = task_id
        self.log = log
        self.row = row

    def apply(
        self, task: Any, market_index: dict[str, int], severe_threshold: float | None = None
    ) -> None:
        """Overwrite the drawn attributes of ``task`` with what the log recorded.

        Called right after the class factory drew every attribute, so the random streams
        advance exactly as without a log (common random numbers stay aligned) and only the
        known values replace the draws. ``severe`` depends on risk, so it is recomputed
        whenever the risk is known. The logged handling time becomes the task's work content
        (the time a speed-1.0 reviewer needs): the log does not say how fast the reviewer who
        handled it was.
        """
        if self.market is not None:
            task.market = market_index[self.market]
        risk = self.risk
        if risk == risk:
            task.risk = risk
            task.severe = severe_threshold is not None and risk >= severe_threshold
        if self.handling_time == self.handling_time:
            task.work = self.handling_time

    def __repr__(self) -> str:
        return (
            f"TaskRow(cls={self.cls!r}, arrival={self.arrival!r}, market={self.market!r}, "
            f"risk={self.risk!r}, reach={self.reach!r}, severity={self.severity!r}, "
            f"label={self.label!r}, handling_time={self.handling_time!r}, "
            f"task_id={self.task_id!r}, log={self.log!r}, row={self.row!r})"
        )


# ------------------------------------------------------------------------------------------
# Report
# ------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DefaultApplied:
    """``count`` values of ``column`` in ``file`` were missing and filled in by ``action``."""

    file: str
    column: str
    count: int
    action: str
    blank: bool = True  # False: the column was not mapped at all

    def __str__(self) -> str:
        if self.blank:
            return f"{self.count} blank {self.column} values in {self.file}: {self.action}"
        return f"{self.column} not mapped for {self.file}: all {self.count} {self.action}"


@dataclass(frozen=True)
class LoadedFile:
    """One file read: what it was, how many rows, what came of them, and its content hash.

    The hash ties simulation results to the exact export: the scenario digest covers the
    file's path, not its content.
    """

    kind: str  # "task_log" or "roster"
    name: str
    path: str
    rows: int
    detail: str
    sha256: str | None = None

    def __str__(self) -> str:
        label = f"task log '{self.name}'" if self.kind == "task_log" else "roster"
        return f"{label} ({self.path}): {self.rows} rows; {self.detail}"


@dataclass
class ImportReport:
    """Everything :func:`resolve_data` loaded and every default it applied."""

    files: list[LoadedFile] = field(default_factory=list)
    defaults: list[DefaultApplied] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def default(
        self, file: str, column: str, count: int, action: str, *, blank: bool = True
    ) -> None:
        if count > 0:
            self.defaults.append(DefaultApplied(file, column, int(count), action, blank))

    def summary(self) -> str:
        """A human-readable account, one fact per line, for the CLI and run logs."""
        if not self.files:
            return "No data imported."
        lines = ["Imported data:"]
        lines += [f"  {f}" for f in self.files]
        if self.defaults:
            lines.append("Defaults applied:")
            lines += [f"  {d}" for d in self.defaults]
        else:
            lines.append("Defaults applied: none")
        if self.notes:
            lines.append("Notes:")
            lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


# ------------------------------------------------------------------------------------------
# Imported data handed to the simulator
# ------------------------------------------------------------------------------------------
@dataclass
class _LogTable:
    """One validated task log in columnar form; :class:`TaskRow` objects are made on demand."""

    name: str
    use: str
    minutes: np.ndarray
    cls: np.ndarray
    market: np.ndarray
    risk: np.ndarray
    reach: np.ndarray
    severity: np.ndarray
    label: np.ndarray
    handling: np.ndarray
    task_id: np.ndarray
    row_no: np.ndarray
    replay_idx: dict[str, np.ndarray] = field(default_factory=dict)
    backlog_idx: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    _lists: tuple[list, ...] | None = None

    def row(self, i: int) -> TaskRow:
        # Python lists, built once: indexing them is several times cheaper than converting
        # numpy scalars row by row, which matters when a day replays a million tasks.
        lists = self._lists
        if lists is None:
            lists = self._lists = tuple(
                a.tolist()
                for a in (
                    self.cls,
                    self.minutes,
                    self.market,
                    self.risk,
                    self.reach,
                    self.severity,
                    self.label,
                    self.handling,
                    self.task_id,
                    self.row_no,
                )
            )
        c, m, mk, r, re_, sv, lb, h, tid, rn = lists
        return TaskRow(
            c[i], m[i], mk[i], r[i], re_[i], sv[i], lb[i], h[i], tid[i], self.name, rn[i]
        )


class ImportedData:
    """Replay streams and backlog of the task logs, plus the import report.

    The simulator asks for a class's replay times once at the start of a run and then takes
    that class's rows one per arrival with :meth:`next_replay_row`. The cursor is per class
    and :meth:`replay_times` rewinds it, so one object can serve consecutive runs; runs that
    are interleaved (several simulations alive at once) need their own cursors: :meth:`fresh`.
    """

    def __init__(
        self,
        logs: dict[str, _LogTable],
        replay_log_of_class: dict[str, str],
        report: ImportReport,
    ):
        self._logs = logs
        self._replay_log_of_class = dict(replay_log_of_class)
        self._cursor: dict[str, int] = {}
        self.report = report

    def fresh(self) -> ImportedData:
        """A view sharing the (read-only) data with rewound replay cursors."""
        return ImportedData(self._logs, self._replay_log_of_class, self.report)

    @property
    def log_names(self) -> list[str]:
        return list(self._logs)

    def replay_times(self, log_name: str, class_name: str) -> list[float]:
        """Sorted minutes (>= 0) at which tasks of ``class_name`` arrive in log ``log_name``."""
        log = self._logs.get(log_name)
        if log is None:
            raise KeyError(f"no task log named '{log_name}'; loaded: {sorted(self._logs)}")
        idx = log.replay_idx.get(class_name)
        self._cursor[class_name] = 0
        self._replay_log_of_class[class_name] = log_name
        return [] if idx is None else log.minutes[idx].tolist()

    def next_replay_row(self, class_name: str) -> TaskRow:
        """The next replayed row of ``class_name``, in the order of :meth:`replay_times`."""
        log_name = self._replay_log_of_class.get(class_name)
        if log_name is None:
            having = [n for n, t in self._logs.items() if class_name in t.replay_idx]
            if len(having) != 1:
                raise LookupError(
                    f"class {class_name} does not replay a task log (logs with its rows: "
                    f"{having}); call replay_times(log, class) first"
                )
            log_name = having[0]
            self._replay_log_of_class[class_name] = log_name
        log = self._logs[log_name]
        idx = log.replay_idx.get(class_name)
        k = self._cursor.get(class_name, 0)
        if idx is None or k >= len(idx):
            raise IndexError(
                f"task log '{log_name}' has no more replay rows of class {class_name} "
                f"(all {0 if idx is None else len(idx)} used)"
            )
        self._cursor[class_name] = k + 1
        return log.row(int(idx[k]))

    def backlog_rows(self) -> list[TaskRow]:
        """Waiting work at minute 0 from every backlog log, oldest first (ties: file order)."""
        rows = [log.row(int(i)) for log in self._logs.values() for i in log.backlog_idx]
        rows.sort(key=lambda r: r.arrival)
        return rows

    def n_replay_rows(self, class_name: str | None = None) -> int:
        """How many rows are available for replay (of one class, or in total)."""
        return sum(
            len(idx)
            for log in self._logs.values()
            for c, idx in log.replay_idx.items()
            if class_name is None or c == class_name
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


# ------------------------------------------------------------------------------------------
# Reading files and cells
# ------------------------------------------------------------------------------------------
def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _show(value: Any) -> str:
    """A cell value quoted for a one-line message, truncated if long."""
    s = _one_line(str(value))
    if len(s) > 40:
        s = s[:37] + "..."
    return repr(s)


def _cell_error(fname: str, row: int, column: str, problem: str, fix: str) -> DataError:
    return DataError(_one_line(f"{fname}: row {row}, column '{column}': {problem}; {fix}"))


def _read_table(path: Path, what: str) -> pd.DataFrame:
    """Read a CSV (every cell as text, so errors quote what the export really says) or
    Parquet file (typed columns kept), with positional rows."""
    fname = str(path)
    lower = path.name.lower()
    if not path.exists():
        raise DataError(
            f"{fname}: file not found; check {what} (relative paths are resolved from the "
            f"scenario file's folder)"
        )
    try:
        if lower.endswith(_CSV_SUFFIXES):
            df = pd.read_csv(path, dtype=str, keep_default_na=False)
        elif lower.endswith(_PARQUET_SUFFIXES):
            df = pd.read_parquet(path)
        else:
            raise DataError(
                f"{fname}: unsupported file type; use .csv, .csv.gz, .parquet or .pq (check {what})"
            )
    except pd.errors.EmptyDataError:
        raise DataError(f"{fname}: no rows (the file is empty); export it again") from None
    except DataError:
        raise
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{fname}: not UTF-8 text (byte {exc.start}: {exc.reason}); save the export as "
            f"UTF-8 CSV"
        ) from None
    except Exception as exc:  # parser errors of pandas/pyarrow, decoding errors, ...
        first = _one_line(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise DataError(
            f"{fname}: cannot read the file ({first}); check that it is a valid "
            f"{'CSV' if lower.endswith(_CSV_SUFFIXES) else 'Parquet'} file"
        ) from None
    # Header cells padded with spaces are a classic spreadsheet artefact; nobody means them.
    df.columns = [str(c).strip() for c in df.columns]
    return df.reset_index(drop=True)


def _file_sha256(path: Path) -> str | None:
    if not path.is_file():
        return None
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _require_columns(df: pd.DataFrame, fname: str, wanted: Iterable[tuple[str, str]]) -> None:
    """Every mapped column must exist; the message lists what the export does have."""
    have = set(df.columns)
    for fld, col in wanted:
        if col not in have:
            avail = ", ".join(repr(c) for c in df.columns)
            raise DataError(
                f"{fname}: column '{col}' (mapped as {fld}) not found; available columns: "
                f"{avail}; fix the column mapping in the scenario or the export's header"
            )


def _is_text(series: pd.Series) -> bool:
    return not (
        pd.api.types.is_numeric_dtype(series)
        or pd.api.types.is_bool_dtype(series)
        or pd.api.types.is_datetime64_any_dtype(series)
    )


def _blank_mask(series: pd.Series) -> np.ndarray:
    mask = series.isna().to_numpy(dtype=bool, copy=True)
    if _is_text(series):
        text = series.astype("string").str.strip().str.lower()
        mask |= text.isin(list(NULL_TOKENS)).fillna(True).to_numpy(dtype=bool)
    return mask


def _text_codes(series: pd.Series) -> tuple[np.ndarray, list[str | None]]:
    """Cells as codes into their distinct texts (stripped); blanks map to ``None``.

    Works on the distinct values only, so a million-row log with a handful of classes and
    markets costs one factorisation, not a million string conversions.
    """
    blank = _blank_mask(series)
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (Parquet lists): one code per row
        codes = np.arange(len(series))
        uniques = series.to_numpy(dtype=object)
    texts: list[str | None] = [_cell_str(u) for u in np.asarray(uniques, dtype=object)]
    texts.append(None)  # code -1: missing
    codes = np.where(blank, len(texts) - 1, np.where(codes < 0, len(texts) - 1, codes))
    return codes, texts


def _text(series: pd.Series) -> np.ndarray:
    """Cells as stripped strings (object array); blanks are ``None``."""
    codes, texts = _text_codes(series)
    table = np.empty(len(texts), dtype=object)
    table[:] = texts
    return table[codes]


def _cell_str(v: Any) -> str:
    """One cell as text: ``1.0`` reads as ``'1'`` and ``True`` as ``'true'``, as in a CSV."""
    if isinstance(v, bool | np.bool_):
        return "true" if v else "false"
    if isinstance(v, float | np.floating) and float(v).is_integer():
        return str(int(v))
    return str(v).strip()


def _first(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _numeric(
    series: pd.Series,
    fname: str,
    column: str,
    what: str,
    lo: float | None = None,
    hi: float | None = None,
    range_fix: str = "",
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a numeric column: (values with nan for blanks, blank mask); bad cells raise."""
    blank = _blank_mask(series)
    if pd.api.types.is_bool_dtype(series):
        raise DataError(
            f"{fname}: column '{column}' holds true/false values, not numbers ({what}); map "
            f"the right column"
        )
    if _is_text(series):
        src = series.astype("string").str.strip().mask(pd.Series(blank, index=series.index))
    else:
        src = series
    vals = pd.to_numeric(src, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    bad = ~blank & ~np.isfinite(vals)
    if bad.any():
        i = _first(bad)
        raise _cell_error(
            fname,
            i + 1,
            column,
            f"{what} {_show(series.iloc[i])} is not a number",
            "write a plain number such as 0.25 (no units or thousands separators)",
        )
    out_lo = np.zeros(len(vals), dtype=bool) if lo is None else ~blank & (vals < lo)
    out_hi = np.zeros(len(vals), dtype=bool) if hi is None else ~blank & (vals > hi)
    out = out_lo | out_hi
    if out.any():
        i = _first(out)
        if lo is not None and hi is not None:
            rng = f"out of range [{lo:g}, {hi:g}]"
        else:
            rng = f"below {lo:g}" if lo is not None else f"above {hi:g}"
        raise _cell_error(
            fname,
            i + 1,
            column,
            f"{what} {_show(series.iloc[i])} is {rng}",
            range_fix or "correct the value in the export",
        )
    vals[blank] = np.nan
    return vals, blank


# ------------------------------------------------------------------------------------------
# Task logs
# ------------------------------------------------------------------------------------------
def _time_values(
    series: pd.Series, spec: TaskLogSpec, idx: int, fname: str, column: str
) -> pd.Series | np.ndarray:
    """Parse the arrival column: UTC datetimes, or floats in the format's own unit."""
    fmt = spec.timestamp_format
    blank = _blank_mask(series)
    if blank.any():
        raise _cell_error(
            fname,
            _first(blank) + 1,
            column,
            "blank arrival timestamp",
            "every task needs its arrival time; fill it in or drop the row from the export",
        )
    is_dt = pd.api.types.is_datetime64_any_dtype(series)
    if fmt in _NUMERIC_TIME_SCALE:
        if is_dt:
            raise DataError(
                f"{fname}: column '{column}' holds datetimes but timestamp_format is "
                f"'{fmt}'; set timestamp_format: iso for this log"
            )
        vals, _ = _numeric(series, fname, column, "timestamp")
        return vals
    if is_dt:
        ts = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        return ts.reset_index(drop=True)
    text = series.astype("string").str.strip()
    pattern = "ISO8601" if fmt == "iso" else fmt
    try:
        ts = pd.to_datetime(text, format=pattern, utc=True, errors="coerce")
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"timestamp_format {fmt!r} is not a usable strftime pattern ({_one_line(exc)}); "
            f"use 'iso', 'unix_s', 'unix_ms', 'minutes' or e.g. '%Y-%m-%d %H:%M:%S'",
            field=f"data.task_logs.{idx}.timestamp_format",
        ) from None
    bad = ts.isna().to_numpy(dtype=bool)
    if bad.any():
        i = _first(bad)
        expect = (
            "an ISO 8601 timestamp such as 2024-03-01T08:00:00"
            if fmt == "iso"
            else f"the pattern {fmt!r}"
        )
        raise _cell_error(
            fname,
            i + 1,
            column,
            f"unparsable timestamp {_show(series.iloc[i])}",
            f"expected {expect}; fix the cell or set timestamp_format to match the export",
        )
    return ts.reset_index(drop=True)


def _parse_start(spec: TaskLogSpec, idx: int) -> pd.Timestamp | float:
    """Minute 0 given as ``start``, in the same representation as the parsed column."""
    fmt = spec.timestamp_format
    raw = str(spec.start).strip()
    where = f"data.task_logs.{idx}.start"
    if fmt in _NUMERIC_TIME_SCALE:
        try:
            return float(raw)
        except ValueError:
            pass
        if fmt != "minutes":
            try:
                ts = pd.Timestamp(raw)
                ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
                secs = (ts - pd.Timestamp(0, tz="UTC")) / pd.Timedelta(seconds=1)
                return secs * (1000.0 if fmt == "unix_ms" else 1.0)
            except (ValueError, TypeError):
                pass
        raise ConfigError(
            f"start {raw!r} is not a number in the log's timestamp format ({fmt})"
            + ("" if fmt == "minutes" else " nor an ISO timestamp")
            + "; write it like the arrival column",
            field=where,
        )
    for pattern in ("ISO8601",) if fmt == "iso" else (fmt, "ISO8601"):
        try:
            ts = pd.to_datetime(raw, format=pattern, utc=True)
        except (ValueError, TypeError):
            continue
        if not pd.isna(ts):
            return ts
    raise ConfigError(
        f"start {raw!r} cannot be parsed as a timestamp (format {fmt!r}); write it like "
        f"the arrival column or as ISO 8601 (2024-03-01T08:00:00)",
        field=where,
    )


def _arrival_minutes(
    series: pd.Series, spec: TaskLogSpec, idx: int, fname: str, column: str
) -> tuple[np.ndarray, str, float | None]:
    """Minutes relative to minute 0, what minute 0 is, and its minute of the (UTC) day.

    The minute of the day is ``None`` for ``minutes`` logs, which carry no clock time.
    """
    values = _time_values(series, spec, idx, fname, column)
    fmt = spec.timestamp_format
    if spec.start is not None:
        origin = _parse_start(spec, idx)
        why = "start"
    elif fmt == "minutes":
        origin, why = 0.0, "the log's own minute 0"
    elif spec.use == "replay":
        origin, why = values.min(), "first arrival"
    elif spec.use == "backlog":
        origin, why = values.max(), "last timestamp: the snapshot time"
    else:
        raise ConfigError(
            "use: both needs start, the timestamp of minute 0: rows before it become the "
            "backlog and rows from it on are replayed; add start to this task log",
            field=f"data.task_logs.{idx}.start",
        )
    if isinstance(values, pd.Series):
        minutes = ((values - origin) / pd.Timedelta(minutes=1)).to_numpy(dtype=float)
        stamp = pd.Timestamp(origin)
        shown = str(stamp)
    elif fmt == "minutes":
        minutes = values - float(origin)
        return minutes, f"minute 0 = {float(origin):g} in the log ({why})", None
    else:
        minutes = (values - float(origin)) * _NUMERIC_TIME_SCALE[fmt]
        per_second = 1000.0 if fmt == "unix_ms" else 1.0
        stamp = pd.Timestamp(float(origin) / per_second, unit="s", tz="UTC")
        shown = f"{float(origin):.17g} ({fmt}) = {stamp}"
    tod = stamp.hour * 60.0 + stamp.minute + (stamp.second + stamp.microsecond / 1e6) / 60.0
    return minutes, f"minute 0 = {shown} ({why})", tod


def _uses_clock(scen: Scenario) -> bool:
    """Does anything in the scenario count minutes as clock time (shifts, daily profiles)?"""
    return (
        any(g.shifts for g in scen.reviewers)
        or any(r.columns.shift_start is not None for r in scen.data.rosters)
        or any(isinstance(c.arrivals, ProfileArrivals) for c in scen.classes)
    )


def _load_task_log(scen: Scenario, idx: int, spec: TaskLogSpec, report: ImportReport) -> _LogTable:
    path = scen.resolve_path(spec.path)
    fname = str(path)
    short = spec.path
    df = _read_table(path, f"data.task_logs.{idx}.path")
    n = len(df)
    if n == 0:
        raise DataError(f"{fname}: no rows; export the log again or remove it from data.task_logs")
    cmap = spec.columns
    mapped = {
        k: v for k, v in cmap.model_dump(by_alias=False).items() if v is not None
    }  # field name -> column
    _require_columns(
        df,
        fname,
        [("class" if k == "task_class" else k, v) for k, v in mapped.items()],
    )

    minutes, origin, tod = _arrival_minutes(df[cmap.arrival], spec, idx, fname, cmap.arrival)
    if tod is not None and tod != 0.0 and _uses_clock(scen):
        hh, mm = divmod(round(tod), 60)
        report.notes.append(
            f"minute 0 of log '{spec.name}' is {hh:02d}:{mm:02d} UTC, not midnight, but shift "
            f"times and daily arrival profiles count minutes from minute 0 as if it were "
            f"00:00; set start to that day's midnight so clock times line up"
        )
    class_names = [c.name for c in scen.classes]
    cls = _task_classes(df[cmap.task_class], class_names, fname, cmap.task_class)
    market = _task_markets(df, scen, cls, cmap.market, fname, short, n, report)

    def num(key: str, lo: float | None, hi: float | None, fix: str = "") -> np.ndarray:
        col = mapped.get(key)
        if col is None:
            if key in _TASK_DEFAULTS:
                report.default(short, key, n, _TASK_DEFAULTS[key], blank=False)
            return np.full(n, np.nan)
        vals, blank = _numeric(df[col], fname, col, key.replace("_", " "), lo, hi, fix)
        report.default(short, _col_label(key, col), int(blank.sum()), _TASK_DEFAULTS[key])
        return vals

    risk = num(
        "risk",
        0.0,
        1.0,
        "risk must be a probability in [0, 1] (if the export gives percentages, divide by 100)",
    )
    reach = num("reach", 0.0, None, "reach must be >= 0")
    severity = num("severity", 0.0, None, "severity must be >= 0")
    handling = num("handling_time", 0.0, None, "handling times must be >= 0")
    handling = handling * _UNIT_TO_MINUTES[spec.handling_time_unit]
    label = _labels(df, mapped.get("label"), spec, short, n, report)
    task_id = (
        _text(df[mapped["task_id"]]) if "task_id" in mapped else np.full(n, None, dtype=object)
    )
    if "task_id" in mapped:
        ids = pd.Series(task_id).dropna()
        dups = int(ids.duplicated().sum())
        if dups:
            report.notes.append(f"{dups} duplicate task ids in {short} (rows kept as logged)")

    table = _LogTable(
        name=spec.name,
        use=spec.use,
        minutes=minutes,
        cls=cls,
        market=market,
        risk=risk,
        reach=reach,
        severity=severity,
        label=label,
        handling=handling,
        task_id=task_id,
        row_no=np.arange(1, n + 1),
    )
    _split_log(table, spec, short, report, origin, _file_sha256(path))
    return table


def _col_label(key: str, col: str) -> str:
    return key if key == col else f"{key} (column '{col}')"


def _task_classes(series: pd.Series, known: list[str], fname: str, column: str) -> np.ndarray:
    cls = _text(series)
    blank = pd.isna(cls)
    if blank.any():
        raise _cell_error(
            fname,
            _first(blank) + 1,
            column,
            "blank task class",
            f"every row needs one of the scenario's classes {known}",
        )
    unknown = ~np.isin(cls.astype(str), known)
    if unknown.any():
        i = _first(unknown)
        raise _cell_error(
            fname,
            i + 1,
            column,
            f"unknown class {_show(cls[i])}",
            f"use one of {known}, or add the class to the scenario",
        )
    return cls


def _task_markets(
    df: pd.DataFrame,
    scen: Scenario,
    cls: np.ndarray,
    column: str | None,
    fname: str,
    short: str,
    n: int,
    report: ImportReport,
) -> np.ndarray:
    """Market per row (``None``: draw from the class mix); single-market scenarios ignore it."""
    out = np.full(n, None, dtype=object)
    single = scen.markets == ["all"]
    if column is None:
        if not single:
            report.default(short, "market", n, _TASK_DEFAULTS["market"], blank=False)
        return out
    if single:
        report.notes.append(
            f"column '{column}' (market) of {short} ignored: the scenario has one market 'all'"
        )
        return out
    vals = _text(df[column])
    blank = pd.isna(vals)
    report.default(short, _col_label("market", column), int(blank.sum()), _TASK_DEFAULTS["market"])
    known = list(scen.markets)
    unknown = ~blank & ~np.isin(vals.astype(str), known)
    if unknown.any():
        i = _first(unknown)
        raise _cell_error(
            fname,
            i + 1,
            column,
            f"unknown market {_show(vals[i])}",
            f"use one of the scenario's markets {known}, or add it to markets",
        )
    for c in scen.classes:
        if not c.market_mix:
            continue
        allowed = list(c.market_mix)
        bad = (cls == c.name) & ~blank & ~np.isin(vals.astype(str), allowed)
        if bad.any():
            i = _first(bad)
            raise _cell_error(
                fname,
                i + 1,
                column,
                f"market {_show(vals[i])} is not in the market_mix of class {c.name} {allowed}",
                "add the market to the class's market_mix or correct the row",
            )
    return vals


def _number_text(text: str) -> str:
    """'1.0' -> '1', so a label column exported as floats still matches label_true."""
    try:
        x = float(text)
    except ValueError:
        return text
    return str(int(x)) if x.is_integer() else text


def _labels(
    df: pd.DataFrame,
    column: str | None,
    spec: TaskLogSpec,
    short: str,
    n: int,
    report: ImportReport,
) -> np.ndarray:
    """1.0 violating, 0.0 not, nan unknown; other spellings read as 0.0 and are listed."""
    if column is None:
        report.default(short, "label", n, _TASK_DEFAULTS["label"], blank=False)
        return np.full(n, np.nan)
    codes, texts = _text_codes(df[column])
    truthy = {_number_text(s.strip().lower()) for s in spec.label_true}
    value = np.full(len(texts), np.nan)
    others: set[str] = set()
    used = np.zeros(len(texts), dtype=bool)
    used[np.unique(codes)] = True
    for k, v in enumerate(texts):
        if v is None:
            continue
        low = _number_text(v.lower())
        value[k] = 1.0 if low in truthy else 0.0
        if low not in truthy and used[k]:
            others.add(low)
    out = value[codes]
    report.default(
        short, _col_label("label", column), int(np.isnan(out).sum()), _TASK_DEFAULTS["label"]
    )
    if others:
        shown = ", ".join(repr(s) for s in sorted(others)[:8])
        more = " ..." if len(others) > 8 else ""
        report.notes.append(
            f"labels read as not violating in {short}: {shown}{more} (violating: "
            f"{sorted(truthy)}; extend label_true if one of these means violating)"
        )
    return out


def _split_log(
    table: _LogTable,
    spec: TaskLogSpec,
    short: str,
    report: ImportReport,
    origin: str,
    sha: str | None,
) -> None:
    """Sort rows into replay (minute >= 0) and backlog (minute < 0, or <= 0 for a snapshot)."""
    m = table.minutes
    if spec.use == "replay":
        replay, backlog = m >= 0, np.zeros(len(m), dtype=bool)
        ignored = ~replay
        why = "before minute 0 in a replay-only log (use: both makes them the backlog)"
    elif spec.use == "backlog":
        replay, backlog = np.zeros(len(m), dtype=bool), m <= 0
        ignored = ~backlog
        why = "after the snapshot time in a backlog-only log (use: both replays them)"
    else:
        replay, backlog = m >= 0, m < 0
        ignored = np.zeros(len(m), dtype=bool)
        why = ""
    if ignored.any():
        report.notes.append(f"{int(ignored.sum())} rows of {short} ignored: {why}")
    order = np.argsort(m, kind="stable")
    replay_sorted = order[replay[order]]
    table.replay_idx = {
        str(c): replay_sorted[table.cls[replay_sorted] == c]
        for c in dict.fromkeys(table.cls[replay_sorted])
    }
    table.backlog_idx = order[backlog[order]]
    report.files.append(
        LoadedFile(
            "task_log",
            spec.name,
            short,
            len(m),
            f"{origin}; {int(replay.sum())} replayed, {int(backlog.sum())} backlog"
            + (f", {int(ignored.sum())} ignored" if ignored.any() else ""),
            sha,
        )
    )


# ------------------------------------------------------------------------------------------
# Rosters
# ------------------------------------------------------------------------------------------
def _parse_list(value: Any, delimiter: str, fname: str, row: int, column: str) -> list[str] | None:
    """A JSON list ('["US","UK"]'), a delimited string ('US|UK') or a Parquet list; None if
    blank."""
    if isinstance(value, list | tuple | np.ndarray):
        items = [_cell_str(v) for v in value]
        return [s for s in items if s] or None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = _cell_str(value)
    if text.lower() in NULL_TOKENS:
        return None
    if text.startswith("["):
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as exc:
            raise _cell_error(
                fname,
                row,
                column,
                f"malformed JSON list {_show(text)} ({exc.msg})",
                f'write it as ["US", "UK"] (double quotes) or as US{delimiter}UK',
            ) from None
        if not isinstance(parsed, list) or not all(
            isinstance(x, str | int | float) and not isinstance(x, bool) for x in parsed
        ):
            raise _cell_error(
                fname,
                row,
                column,
                f"{_show(text)} is not a JSON list of names",
                f'write it as ["US", "UK"] or as US{delimiter}UK',
            )
        items = [_cell_str(x) for x in parsed]
    else:
        items = [s.strip() for s in text.split(delimiter)]
    items = [s for s in items if s]
    return items or None


def _parse_shift_time(
    value: Any, fmt: str, fname: str, row: int, column: str, blank: bool
) -> float | None:
    """Minutes of the day from 'hh:mm' (or 'hh:mm:ss', or a Parquet time) or plain minutes."""
    if blank:
        return None
    if isinstance(value, dt_time):
        return value.hour * 60.0 + value.minute + value.second / 60.0
    text = _cell_str(value)
    if fmt == "hh:mm":
        match = _HHMM.match(text)
        if match:
            h, mi, s = int(match[1]), int(match[2]), int(match[3] or 0)
            total = h * 60.0 + mi + s / 60.0
            if mi < 60 and s < 60 and total <= _DAY:
                return total
        raise _cell_error(
            fname,
            row,
            column,
            f"shift time {_show(text)} is not a time of day 'hh:mm'",
            "write it like 08:30 (00:00 to 24:00), or set shift_time_format: minutes",
        )
    try:
        total = float(text)
    except ValueError:
        total = math.nan
    if not 0.0 <= total <= _DAY:
        raise _cell_error(
            fname,
            row,
            column,
            f"shift time {_show(text)} is not a minute of the day",
            "write minutes since midnight in [0, 1440], or set shift_time_format: hh:mm",
        )
    return total


def _accuracy_column(
    df: pd.DataFrame, column: str, fname: str, what: str
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies as shares in [0, 1]; percentages are an error, not silently rescaled."""
    vals, blank = _numeric(
        df[column], fname, column, what, 0.0, None, "give accuracy as a share in [0, 1]"
    )
    pct = ~blank & (vals > 1.0)
    if pct.any():
        i = _first(pct)
        v = vals[i]
        problem = (
            f"{what} {_show(df[column].iloc[i])} looks like a percentage"
            if v <= 100.0
            else f"{what} {_show(df[column].iloc[i])} is out of range [0, 1]"
        )
        raise _cell_error(
            fname,
            i + 1,
            column,
            problem,
            "give accuracy as a share in [0, 1] (0.93 for 93%); convert the whole column",
        )
    return vals, blank


def _load_roster(
    scen: Scenario, idx: int, spec: RosterSpec, report: ImportReport, taken: set[str]
) -> list[ReviewerGroup]:
    """One group per distinct (classes, markets, accuracy, speed, shift); count = headcount."""
    path = scen.resolve_path(spec.path)
    fname = str(path)
    short = spec.path
    where = f"data.rosters.{idx}"
    cols = spec.columns
    class_names = [c.name for c in scen.classes]
    handling_mean = {c.name: c.handling.expected for c in scen.classes}

    bad_keys = sorted(set(cols.accuracy_by_class) - set(class_names))
    if bad_keys:
        raise ConfigError(
            f"unknown classes {bad_keys}; keys must be the scenario's classes {class_names}",
            field=f"{where}.columns.accuracy_by_class",
        )
    if spec.default_classes is not None:
        bad = sorted(set(spec.default_classes) - set(class_names))
        if bad or not spec.default_classes:
            raise ConfigError(
                f"default_classes must be a non-empty list of the scenario's classes "
                f"{class_names} (unknown: {bad})",
                field=f"{where}.default_classes",
            )
    if cols.classes is None and spec.default_classes is None:
        raise ConfigError(
            "the roster says nothing about which classes reviewers handle; map "
            "columns.classes or set default_classes",
            field=where,
        )
    if (cols.shift_start is None) != (cols.shift_end is None):
        raise ConfigError(
            "map both shift_start and shift_end, or neither (always on duty)",
            field=f"{where}.columns",
        )

    df = _read_table(path, f"{where}.path")
    n = len(df)
    if n == 0:
        raise DataError(f"{fname}: no rows; export the roster again or remove it from data.rosters")
    wanted = [
        ("reviewer_id", cols.reviewer_id),
        *[
            (k, v)
            for k, v in (
                ("markets", cols.markets),
                ("classes", cols.classes),
                ("accuracy", cols.accuracy),
                ("mean_handling_time", cols.mean_handling_time),
                ("shift_start", cols.shift_start),
                ("shift_end", cols.shift_end),
            )
            if v is not None
        ],
        *[(f"accuracy_by_class.{c}", v) for c, v in cols.accuracy_by_class.items()],
    ]
    _require_columns(df, fname, wanted)

    # Reviewer ids: present and unique (a duplicate would double-count a person).
    ids = _text(df[cols.reviewer_id])
    seen: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid is None:
            raise _cell_error(
                fname,
                i + 1,
                cols.reviewer_id,
                "blank reviewer id",
                "every reviewer needs an id; fill it in or drop the row",
            )
        if rid in seen:
            raise _cell_error(
                fname,
                i + 1,
                cols.reviewer_id,
                f"reviewer id {_show(rid)} already on row {seen[rid]}",
                "list each reviewer once",
            )
        seen[rid] = i + 1

    # Overall accuracy: blanks get the file's mean (or the group default if all are blank).
    default_spec = ReviewerGroup.model_fields["default_accuracy"].get_default(
        call_default_factory=True
    )
    acc = np.full(n, np.nan)
    if cols.accuracy is not None:
        acc, blank = _accuracy_column(df, cols.accuracy, fname, "accuracy")
        if blank.all():
            report.default(
                short,
                _col_label("accuracy", cols.accuracy),
                n,
                f"no accuracy in the file: default sensitivity {default_spec.sensitivity:g}, "
                f"specificity {default_spec.specificity:g}",
            )
        elif blank.any():
            mean = float(np.mean(acc[~blank]))
            acc[blank] = mean
            report.default(
                short,
                _col_label("accuracy", cols.accuracy),
                int(blank.sum()),
                f"set to the file's mean accuracy {mean:.4g}",
            )
    else:
        report.default(
            short,
            "accuracy",
            n,
            f"reviewers get the default sensitivity {default_spec.sensitivity:g}, "
            f"specificity {default_spec.specificity:g}",
            blank=False,
        )
    by_class: dict[str, np.ndarray] = {}
    for cname, col in cols.accuracy_by_class.items():
        vals, blank = _accuracy_column(df, col, fname, f"accuracy of {cname}")
        by_class[cname] = vals
        report.default(
            short,
            f"accuracy_by_class.{cname} (column '{col}')",
            int(blank.sum()),
            "the reviewer's overall accuracy used",
        )

    # Speed from mean handling time.
    mht = np.full(n, np.nan)
    if cols.mean_handling_time is not None:
        mht, blank = _numeric(
            df[cols.mean_handling_time],
            fname,
            cols.mean_handling_time,
            "mean handling time",
            0.0,
            None,
            "handling times must be > 0",
        )
        zero = ~blank & (mht <= 0)
        if zero.any():
            i = _first(zero)
            raise _cell_error(
                fname,
                i + 1,
                cols.mean_handling_time,
                f"mean handling time {_show(df[cols.mean_handling_time].iloc[i])} is not > 0",
                "give the reviewer's mean handling time, or leave it blank for speed 1.0",
            )
        mht = mht * _UNIT_TO_MINUTES[spec.handling_time_unit]
        report.default(
            short,
            _col_label("mean_handling_time", cols.mean_handling_time),
            int(blank.sum()),
            "speed 1.0",
        )
    else:
        report.default(short, "mean_handling_time", n, "reviewers get speed 1.0", blank=False)

    single_market = scen.markets == ["all"]
    if cols.markets is not None and single_market:
        report.notes.append(
            f"column '{cols.markets}' (markets) of {short} ignored: the scenario has one "
            f"market 'all'"
        )
    market_col = None if single_market else cols.markets
    class_col = cols.classes
    blank_markets = blank_classes = blank_shifts = 0
    mixed_speed = 0
    shift_blank = (
        (_blank_mask(df[cols.shift_start]), _blank_mask(df[cols.shift_end]))
        if cols.shift_start is not None and cols.shift_end is not None
        else None
    )

    groups: dict[tuple, dict[str, Any]] = {}
    for i in range(n):
        row = i + 1
        rid = str(ids[i])
        # classes
        if class_col is not None:
            got = _parse_list(df[class_col].iloc[i], spec.list_delimiter, fname, row, class_col)
        else:
            got = None
        if got is None:
            if spec.default_classes is None:
                raise _cell_error(
                    fname,
                    row,
                    str(class_col),
                    "blank classes",
                    f"list the classes the reviewer handles (from {class_names}) or set "
                    f"default_classes on the roster",
                )
            got = list(spec.default_classes)
            blank_classes += class_col is not None
        unknown = [c for c in got if c not in class_names]
        if unknown:
            raise _cell_error(
                fname,
                row,
                str(class_col),
                f"unknown class {_show(unknown[0])}",
                f"use the scenario's classes {class_names}",
            )
        classes = [c for c in class_names if c in set(got)]
        # markets
        markets: list[str] | str = "all"
        if market_col is not None:
            mk = _parse_list(df[market_col].iloc[i], spec.list_delimiter, fname, row, market_col)
            if mk is None:
                blank_markets += 1
            elif not any(m.lower() == "all" for m in mk):
                bad_m = [m for m in mk if m not in scen.markets]
                if bad_m:
                    raise _cell_error(
                        fname,
                        row,
                        market_col,
                        f"unknown market {_show(bad_m[0])}",
                        f"use the scenario's markets {list(scen.markets)} (or all)",
                    )
                markets = [m for m in scen.markets if m in set(mk)]
        # accuracy
        default_acc = (
            AccuracySpec(sensitivity=float(acc[i]), specificity=spec.specificity)
            if acc[i] == acc[i]
            else default_spec
        )
        accuracy = {
            c: AccuracySpec(sensitivity=float(vals[i]), specificity=spec.specificity)
            for c, vals in by_class.items()
            if c in classes and vals[i] == vals[i]
        }
        # speed
        speed: dict[str, float] = {}
        if mht[i] == mht[i]:
            speed = {c: handling_mean[c] / float(mht[i]) for c in classes}
            means = [handling_mean[c] for c in classes]
            if max(means) > 1.5 * min(means):
                mixed_speed += 1
        # shift
        shift = None
        if shift_blank is not None:
            sb, eb = shift_blank[0][i], shift_blank[1][i]
            if sb != eb:
                col = cols.shift_end if eb else cols.shift_start
                raise _cell_error(
                    fname,
                    row,
                    str(col),
                    "only one of shift_start and shift_end is given",
                    "give both, or leave both blank for always on duty",
                )
            start = _parse_shift_time(
                df[cols.shift_start].iloc[i],
                spec.shift_time_format,
                fname,
                row,
                str(cols.shift_start),
                sb,
            )
            end = _parse_shift_time(
                df[cols.shift_end].iloc[i],
                spec.shift_time_format,
                fname,
                row,
                str(cols.shift_end),
                eb,
            )
            if start is None or end is None:
                blank_shifts += 1
            elif start == end:
                raise _cell_error(
                    fname,
                    row,
                    str(cols.shift_end),
                    "the shift ends when it starts",
                    "give the real end time, or leave both blank for always on duty",
                )
            else:
                start %= _DAY
                end = end % _DAY or _DAY
                # 00:00-24:00 is a full day: the same as no shift at all.
                shift = None if (end - start) % _DAY == 0 else (start, end)
        key = (
            tuple(classes),
            markets if isinstance(markets, str) else tuple(markets),
            (default_acc.sensitivity, default_acc.specificity),
            tuple(sorted((c, a.sensitivity, a.specificity) for c, a in accuracy.items())),
            tuple(sorted(speed.items())),
            shift,
        )
        if key in groups:
            groups[key]["count"] += 1
            continue
        groups[key] = {
            "first_id": rid,
            "count": 1,
            "classes": classes,
            "markets": markets,
            "default_accuracy": default_acc,
            "accuracy": accuracy,
            "speed": speed,
            "shifts": [Shift(start=shift[0], end=shift[1])] if shift else [],
        }

    if market_col is not None:
        report.default(short, _col_label("markets", market_col), blank_markets, "all markets")
    if class_col is not None:
        report.default(
            short,
            _col_label("classes", class_col),
            blank_classes,
            f"default_classes {spec.default_classes}",
        )
    elif spec.default_classes is not None:
        report.default(
            short,
            "classes",
            n,
            f"reviewers get default_classes {spec.default_classes}",
            blank=False,
        )
    if shift_blank is not None:
        report.default(short, "shift_start/shift_end", blank_shifts, "always on duty")
    if mixed_speed:
        report.notes.append(
            f"{mixed_speed} reviewers in {short} handle classes whose mean handling times "
            f"differ by more than 1.5x: one mean handling time per reviewer makes their "
            f"per-class speeds depend on their class mix; check the speed factors"
        )

    out: list[ReviewerGroup] = []
    for g in groups.values():
        name = _unique_name(f"roster_{_GROUP_NAME_BAD.sub('_', g['first_id'])}", taken)
        out.append(
            ReviewerGroup(
                name=name,
                count=g["count"],
                classes=g["classes"],
                markets=g["markets"],
                accuracy=g["accuracy"],
                default_accuracy=g["default_accuracy"],
                speed=g["speed"],
                shifts=g["shifts"],
            )
        )
    report.files.append(
        LoadedFile(
            "roster",
            short,
            short,
            n,
            f"{n} reviewers in {len(out)} groups: "
            + ", ".join(f"{g.name} x{g.count}" for g in out),
            _file_sha256(path),
        )
    )
    return out


def _unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name
