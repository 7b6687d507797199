"""Read a task log for calibration into one frame in minutes since minute 0.

The log is read with the importer's machinery (:class:`~dispatch.importers.columns.
ExportTable`): the same missing-value markers, name maps, safe class names, transforms and
one-line errors as a scenario's ``data:`` section, and the same import report (rows read,
columns not used, values mapped, file hash). Classes come from the data: every label is a
class (named by ``class_map``, as it is, or by its safe name).

Minute 0 is midnight (UTC) of the first arrival's day, or the Monday before it for a weekly
profile, so that slot ``k`` of the fitted profile is clock time ``k x slot`` and the written
scenario's daily profile lines up with shifts written in clock time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dispatch.calibrate.spec import CalibrationLog, CalibrationSpec
from dispatch.dataspec import ColumnSpec
from dispatch.errors import DataError
from dispatch.importers.columns import ExportTable
from dispatch.importers.common import _UNIT_TO_MINUTES
from dispatch.importers.names import Where, map_class_labels, map_market_codes
from dispatch.importers.records import ImportReport, LoadedFile
from dispatch.importers.tasklog import _number_text, _seen_codes
from dispatch.importers.times import epoch_minutes, parse_start, start_epoch_minutes, time_values

DAY = 1440.0
WEEK = 7 * DAY
_WHERE = "task_log"


@dataclass
class Observations:
    """One row per logged task; times in minutes since minute 0.

    ``frame`` columns: ``arrival``, ``cls``, ``market`` (None: unknown), ``start``, ``end``
    (nan: unknown), ``handling`` (minutes, nan: unknown), ``expired`` (bool), ``reviewer``,
    ``group`` (None: unknown), ``decision``, ``truth`` (1.0 / 0.0 / nan), ``risk`` (nan).
    """

    frame: pd.DataFrame
    classes: list[str]  # by volume, largest first
    markets: list[str] | None  # None: the log has no market column
    period: float  # DAY or WEEK
    window: tuple[float, float]  # [first, last) minute the arrivals cover
    minute0: str  # what minute 0 is, for the report
    source: LoadedFile
    report: ImportReport

    @property
    def weekly(self) -> bool:
        return self.period == WEEK


def load_observations(spec: CalibrationSpec) -> Observations:
    """Read and check the task log of ``spec``; errors name file, row and column."""
    log = spec.task_log
    report = ImportReport()
    table = ExportTable.read(spec.resolve_path(log.path), log, _WHERE, report, "task log")
    cols = log.columns
    table.require(cols.mapped())

    fmt = log.timestamp_format
    arrival = epoch_minutes(time_values(table, cols.arrival, log, _WHERE), fmt)
    span = float(arrival.max() - arrival.min())
    weekly = spec.profile == "weekly" or (spec.profile == "auto" and span >= WEEK)
    origin, minute0 = _minute0(log, arrival, weekly)
    frame = pd.DataFrame({"arrival": arrival - origin})
    for name in ("start", "end"):
        ref = getattr(cols, name)
        frame[name] = (
            np.full(table.n, np.nan)
            if ref is None
            else epoch_minutes(
                time_values(table, ref, log, _WHERE, allow_blank=True, what=f"review {name}"),
                fmt,
            )
            - origin
        )
    frame["cls"] = _names(table, cols.task_class, "class", log)
    frame["market"] = _names(table, cols.market, "market", log)
    frame["handling"] = _handling(table, cols.handling_time, log, frame)
    frame["expired"] = _flags(table, cols.outcome, log.expired_values) == 1.0
    frame["reviewer"] = _text_or_none(table, cols.reviewer)
    frame["group"] = _text_or_none(table, cols.group)
    frame["decision"] = _flags(table, cols.decision, log.positive_values)
    frame["truth"] = _flags(table, cols.truth, log.label_true)
    frame["risk"] = (
        table.numeric("risk", cols.risk, 0.0, 1.0, "risk is a probability in [0, 1]")[0]
        if cols.risk is not None
        else np.full(table.n, np.nan)
    )
    window = _window(log, frame["arrival"].to_numpy(), spec.slot)
    classes = frame["cls"].value_counts(sort=False)
    order = sorted(classes.index, key=lambda c: (-classes[c], c))
    markets = None if cols.market is None else sorted(frame["market"].dropna().unique().tolist())
    inside = int(((frame["arrival"] >= window[0]) & (frame["arrival"] < window[1])).sum())
    source = table.loaded(
        "task_log",
        "calibration",
        f"{minute0}; {inside} arrivals in the window [{window[0]:g}, {window[1]:g}) min",
    )
    report.files.append(source)
    return Observations(
        frame,
        order,
        markets or None,
        WEEK if weekly else DAY,
        window,
        minute0,
        source,
        report,
    )


def _minute0(log: CalibrationLog, arrival: np.ndarray, weekly: bool) -> tuple[float, str]:
    """Minute 0 on the epoch-minutes scale, and how it was chosen."""
    fmt = log.timestamp_format
    if log.start is not None:
        origin = start_epoch_minutes(parse_start(log, _WHERE), fmt)
        how = "start"
    elif fmt == "minutes":
        return 0.0, "minute 0 = minute 0 of the log" + (
            " (taken as a Monday 00:00)" if weekly else " (taken as 00:00)"
        )
    else:
        day = math.floor(float(arrival.min()) / DAY)
        if weekly:
            day -= (day + 3) % 7  # 1970-01-01 was a Thursday; Monday = 0
        origin = day * DAY
        how = (
            "the Monday before the first arrival"
            if weekly
            else "midnight of the first arrival's day"
        )
    if fmt == "minutes":
        return origin, f"minute 0 = {origin:g} in the log ({how})"
    stamp = pd.Timestamp(origin * 60.0, unit="s", tz="UTC")
    return origin, f"minute 0 = {stamp} ({how})"


def _window(log: CalibrationLog, arrival: np.ndarray, slot: float) -> tuple[float, float]:
    """[first, last) minute the arrivals cover, rounded out to whole slots."""
    if log.window is not None:
        return (float(log.window[0]), float(log.window[1]))
    lo = float(arrival.min())
    if log.timestamp_format == "minutes":
        lo = max(lo, 0.0)  # negative minutes: the backlog at minute 0 (simulator exports)
    hi = float(arrival.max())
    first = math.floor(lo / slot) * slot
    last = math.ceil(hi / slot) * slot
    if last <= hi:
        last += slot
    return (first, last)


def _names(
    table: ExportTable, ref: ColumnSpec | None, what: str, log: CalibrationLog
) -> np.ndarray:
    """Class names (every label a class) or market codes (through market_map) per row."""
    if ref is None:
        return np.full(table.n, None, dtype=object)
    codes, texts = table.text_codes(ref)
    seen = _seen_codes(codes, texts)
    where = Where(table.fname, table.short, ref.column, what, _WHERE)
    if what == "class":
        if codes.size and (codes == len(texts) - 1).any():
            i = int(np.flatnonzero(codes == len(texts) - 1)[0])
            raise table.cell_error(i + 1, ref, "blank task class", "every row needs a class")
        mapping = map_class_labels(seen, None, log.class_map, where, table.report)
    else:
        mapping = map_market_codes(seen, None, log.market_map, where, table.report)
    lookup = np.array([mapping.get(t) if t is not None else None for t in texts], dtype=object)
    return lookup[codes]


def _handling(
    table: ExportTable, ref: ColumnSpec | None, log: CalibrationLog, frame: pd.DataFrame
) -> np.ndarray:
    """Handling minutes: the mapped column, else end - start of reviewed tasks."""
    if ref is not None:
        vals, _ = table.numeric("handling_time", ref, 0.0, None, "handling times must be >= 0")
        return vals * _UNIT_TO_MINUTES[log.handling_time_unit]
    out = (frame["end"] - frame["start"]).to_numpy(dtype=float)
    bad = out < 0
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(
            f"{table.fname}: row {i + 1}: the review ends before it starts; check the start "
            f"and end columns"
        )
    return out


def _text_or_none(table: ExportTable, ref: ColumnSpec | None) -> np.ndarray:
    return np.full(table.n, None, dtype=object) if ref is None else table.text(ref)


def _flags(table: ExportTable, ref: ColumnSpec | None, true_values: list[str]) -> np.ndarray:
    """1.0 where the text is one of ``true_values``, 0.0 for other texts, nan if blank."""
    if ref is None:
        return np.full(table.n, np.nan)
    truthy = {_number_text(v.strip().lower()) for v in true_values}
    codes, texts = table.text_codes(ref)
    value = np.array(
        [np.nan if t is None else float(_number_text(t.lower()) in truthy) for t in texts]
    )
    return value[codes]
