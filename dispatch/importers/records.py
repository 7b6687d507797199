"""What an import yields: replayable task rows, the import report, the loaded data."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np


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
    file's path, not its content. ``columns_ignored`` are the export's columns the mapping
    does not use (listed so a forgotten mapping is visible).
    """

    kind: str  # "task_log" or "roster"
    name: str
    path: str
    rows: int
    detail: str
    sha256: str | None = None
    columns_used: tuple[str, ...] = ()
    columns_ignored: tuple[str, ...] = ()

    def __str__(self) -> str:
        label = f"task log '{self.name}'" if self.kind == "task_log" else "roster"
        return f"{label} ({self.path}): {self.rows} rows read; {self.detail}"


@dataclass(frozen=True)
class ValueMapping:
    """``count`` cells reading ``source`` in ``column`` of ``file`` became ``target``.

    ``how``: ``class_map`` / ``market_map`` (the scenario's maps), ``safe name`` (a class
    label turned into a valid class name automatically).
    """

    file: str
    column: str
    field: str
    source: str
    target: str
    how: str
    count: int

    def __str__(self) -> str:
        return (
            f"{self.file} column '{self.column}' ({self.field}): {self.source!r} -> "
            f"{self.target} ({self.how}, {self.count} cell{'s' if self.count != 1 else ''})"
        )


@dataclass(frozen=True)
class TransformApplied:
    """A transform turned ``count`` values of ``column`` into ``field`` (range low..high)."""

    file: str
    column: str
    field: str
    transform: str
    count: int
    low: float | None
    high: float | None

    def __str__(self) -> str:
        rng = f"{self.low:.4g} to {self.high:.4g}" if self.count else "no values"
        return (
            f"{self.file} column '{self.column}' -> {self.field}: {self.transform} on "
            f"{self.count} values, result {rng}"
        )


_SHOWN = 25  # lines per section in the text summary; the JSON form has everything


@dataclass
class ImportReport:
    """Everything :func:`resolve_data` loaded, mapped, transformed and filled in.

    ``summary()`` is the readable account (printed by ``dispatch simulate``, saved as
    ``import_report.txt``); ``to_dict()`` the complete one (``import_report.json``).
    ``warnings`` are things that are probably wrong but do not stop the import.
    """

    files: list[LoadedFile] = field(default_factory=list)
    defaults: list[DefaultApplied] = field(default_factory=list)
    mappings: list[ValueMapping] = field(default_factory=list)
    transforms: list[TransformApplied] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
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
        for f in self.files:
            lines.append(f"  {f}")
            lines.append(f"    sha256 {f.sha256 or '(not a regular file)'}")
        ignored = [
            f"{f.path}: {', '.join(f.columns_ignored)}" for f in self.files if f.columns_ignored
        ]
        _section(lines, "Columns not used", ignored)
        _section(lines, "Values mapped", [str(m) for m in self.mappings])
        _section(lines, "Transforms applied", [str(t) for t in self.transforms])
        _section(lines, "Defaults applied", [str(d) for d in self.defaults])
        _section(lines, "Warnings", self.warnings, empty=None)
        _section(lines, "Notes", self.notes, empty=None)
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """Every entry as plain JSON-able data (the saved ``import_report.json``)."""
        return {
            "files": [
                asdict(f)
                | {"columns_used": list(f.columns_used), "columns_ignored": list(f.columns_ignored)}
                for f in self.files
            ],
            "defaults": [asdict(d) | {"text": str(d)} for d in self.defaults],
            "mappings": [asdict(m) for m in self.mappings],
            "transforms": [asdict(t) for t in self.transforms],
            "warnings": list(self.warnings),
            "notes": list(self.notes),
        }

    def __str__(self) -> str:
        return self.summary()


def _section(lines: list[str], title: str, items: list[str], empty: str | None = "none") -> None:
    if not items:
        if empty is not None:
            lines.append(f"{title}: {empty}")
        return
    lines.append(f"{title}:")
    lines += [f"  {x}" for x in items[:_SHOWN]]
    if len(items) > _SHOWN:
        lines.append(f"  ... and {len(items) - _SHOWN} more (all in import_report.json)")


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
