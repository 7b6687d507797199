"""Task logs: arrival timestamps, classes, markets, risk, labels, handling times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.dataspec import ColumnSpec
from dispatch.errors import ConfigError
from dispatch.importers.columns import ExportTable
from dispatch.importers.common import (
    _NUMERIC_TIME_SCALE,
    _TASK_DEFAULTS,
    _UNIT_TO_MINUTES,
    _first,
    _show,
)
from dispatch.importers.names import Seen, Where, map_class_labels, map_market_codes
from dispatch.importers.records import ImportReport, _LogTable
from dispatch.importers.times import parse_start, time_values
from dispatch.scenario import (
    ProfileArrivals,
    Scenario,
    TaskLogSpec,
)


# ------------------------------------------------------------------------------------------
# Task logs
# ------------------------------------------------------------------------------------------
def _arrival_minutes(
    table: ExportTable, ref: ColumnSpec, spec: TaskLogSpec, idx: int
) -> tuple[np.ndarray, str, float | None]:
    """Minutes relative to minute 0, what minute 0 is, and its minute of the (UTC) day.

    The minute of the day is ``None`` for ``minutes`` logs, which carry no clock time.
    """
    where = f"data.task_logs.{idx}"
    values = time_values(table, ref, spec, where)
    fmt = spec.timestamp_format
    if spec.start is not None:
        origin = parse_start(spec, where)
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
            field=f"{where}.start",
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


def _load_task_log(
    scen: Scenario,
    idx: int,
    spec: TaskLogSpec,
    report: ImportReport,
    markets: list[str] | None,
) -> _LogTable:
    """Read and check one task log; ``markets`` is ``None`` with ``markets: from_data``."""
    where = f"data.task_logs.{idx}"
    table = ExportTable.read(scen.resolve_path(spec.path), spec, where, report, "log")
    cmap = spec.columns
    mapped = cmap.mapped()
    table.require(mapped)
    n = table.n

    minutes, origin, tod = _arrival_minutes(table, cmap.arrival, spec, idx)
    _note_clock(scen, spec, tod, report)
    cls = _task_classes(table, cmap.task_class, scen, where)
    market = _task_markets(table, cmap.market, scen, cls, markets, where)
    handling = _task_number(
        table, mapped, "handling_time", 0.0, None, "handling times must be >= 0"
    )
    task_id = table.text(cmap.task_id) if cmap.task_id else np.full(n, None, dtype=object)
    if cmap.task_id is not None:
        dups = int(pd.Series(task_id).dropna().duplicated().sum())
        if dups:
            report.notes.append(f"{dups} duplicate task ids in {spec.path} (rows kept as logged)")

    log = _LogTable(
        name=spec.name,
        use=spec.use,
        minutes=minutes,
        cls=cls,
        market=market,
        risk=_task_number(table, mapped, "risk", 0.0, 1.0, _RISK_FIX, probability=True),
        reach=_task_number(table, mapped, "reach", 0.0, None, "reach must be >= 0"),
        severity=_task_number(table, mapped, "severity", 0.0, None, "severity must be >= 0"),
        label=_labels(table, cmap.label, spec),
        handling=handling * _UNIT_TO_MINUTES[spec.handling_time_unit],
        task_id=task_id,
        row_no=np.arange(1, n + 1),
    )
    _split_log(log, spec, table, report, origin)
    return log


_RISK_FIX = "risk must be a probability in [0, 1] (if the export gives percentages, divide by 100)"


def _note_clock(scen: Scenario, spec: TaskLogSpec, tod: float | None, report: ImportReport) -> None:
    if tod is not None and tod != 0.0 and _uses_clock(scen):
        hh, mm = divmod(round(tod), 60)
        report.notes.append(
            f"minute 0 of log '{spec.name}' is {hh:02d}:{mm:02d} UTC, not midnight, but shift "
            f"times and daily arrival profiles count minutes from minute 0 as if it were "
            f"00:00; set start to that day's midnight so clock times line up"
        )


def _task_number(
    table: ExportTable,
    mapped: dict[str, ColumnSpec],
    key: str,
    lo: float | None,
    hi: float | None,
    fix: str,
    *,
    probability: bool = False,
) -> np.ndarray:
    """A numeric task field; unmapped or blank cells are nan (drawn) and reported."""
    ref = mapped.get(key)
    if ref is None:
        table.report.default(table.short, key, table.n, _TASK_DEFAULTS[key], blank=False)
        return np.full(table.n, np.nan)
    vals, blank = table.numeric(key, ref, lo, hi, fix, probability=probability)
    table.report.default(
        table.short, _col_label(key, ref.column), int(blank.sum()), _TASK_DEFAULTS[key]
    )
    return vals


def _col_label(key: str, col: str) -> str:
    return key if key == col else f"{key} (column '{col}')"


def _task_classes(table: ExportTable, ref: ColumnSpec, scen: Scenario, where: str) -> np.ndarray:
    """Class name per row: labels through class_map and safe names (see names.py)."""
    codes, texts = table.text_codes(ref)
    blank = codes == len(texts) - 1  # the last text is the blank one
    if blank.any():
        raise table.cell_error(
            _first(blank) + 1,
            ref,
            "blank task class",
            f"every row needs a class (scenario classes: {[c.name for c in scen.classes]})",
        )
    seen = _seen_codes(codes, texts)
    mapping = map_class_labels(
        seen,
        [c.name for c in scen.classes],
        table.spec.class_map,
        Where(table.fname, table.short, ref.column, "class", where),
        table.report,
    )
    lookup = np.array([mapping.get(t) if t is not None else None for t in texts], dtype=object)
    return lookup[codes]


def _seen_codes(codes: np.ndarray, texts: list[str | None]) -> dict[str, Seen]:
    """Counts and first rows of each distinct non-blank text, from factorised codes.

    Two raw cells can strip to one text (' US' and 'US'): their counts add up.
    """
    counts = np.bincount(codes, minlength=len(texts))
    first = np.full(len(texts), -1)
    rows = np.arange(len(codes))[::-1]
    first[codes[rows]] = rows  # the last write per code is its first row
    out: dict[str, Seen] = {}
    for k, t in enumerate(texts):
        if t is None or counts[k] == 0:
            continue
        s = out.get(t)
        if s is None:
            out[t] = Seen(int(counts[k]), int(first[k]) + 1)
        else:
            s.count += int(counts[k])
            s.first_row = min(s.first_row, int(first[k]) + 1)
    return out


def _task_markets(
    table: ExportTable,
    ref: ColumnSpec | None,
    scen: Scenario,
    cls: np.ndarray,
    markets: list[str] | None,
    where: str,
) -> np.ndarray:
    """Market per row (``None``: drawn from the class mix).

    A market column in a scenario with the single market ``all`` would be ignored: an error.
    """
    n = table.n
    out = np.full(n, None, dtype=object)
    if ref is None:
        if markets != ["all"]:
            table.report.default(table.short, "market", n, _TASK_DEFAULTS["market"], blank=False)
        return out
    if markets == ["all"]:
        raise ConfigError(
            f"column '{ref.column}' is mapped as market, but the scenario has the single "
            f"market 'all', so it would be ignored; list the scenario's markets (or write "
            f"markets: from_data), or remove the mapping",
            field=f"{where}.columns.market",
        )
    codes, texts = table.text_codes(ref)
    mapping = map_market_codes(
        _seen_codes(codes, texts),
        markets,
        table.spec.market_map,
        Where(table.fname, table.short, ref.column, "market", where),
        table.report,
    )
    lookup = np.array([mapping.get(t) if t is not None else None for t in texts], dtype=object)
    vals = lookup[codes]
    blank = np.asarray([v is None for v in vals], dtype=bool)
    table.report.default(
        table.short, _col_label("market", ref.column), int(blank.sum()), _TASK_DEFAULTS["market"]
    )
    _check_market_mix(table, ref, scen, cls, vals, blank)
    return vals


def _check_market_mix(
    table: ExportTable,
    ref: ColumnSpec,
    scen: Scenario,
    cls: np.ndarray,
    vals: np.ndarray,
    blank: np.ndarray,
) -> None:
    for c in scen.classes:
        if not c.market_mix:
            continue
        allowed = list(c.market_mix)
        bad = (cls == c.name) & ~blank & ~np.isin(vals.astype(str), allowed)
        if bad.any():
            i = _first(bad)
            raise table.cell_error(
                i + 1,
                ref,
                f"market {_show(vals[i])} is not in the market_mix of class {c.name} {allowed}",
                "add the market to the class's market_mix or correct the row",
            )


def _number_text(text: str) -> str:
    """'1.0' -> '1', so a label column exported as floats still matches label_true."""
    try:
        x = float(text)
    except ValueError:
        return text
    return str(int(x)) if x.is_integer() else text


def _labels(table: ExportTable, ref: ColumnSpec | None, spec: TaskLogSpec) -> np.ndarray:
    """1.0 violating, 0.0 not, nan unknown; other spellings read as 0.0 and are listed."""
    short, n, report = table.short, table.n, table.report
    if ref is None:
        report.default(short, "label", n, _TASK_DEFAULTS["label"], blank=False)
        return np.full(n, np.nan)
    codes, texts = table.text_codes(ref)
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
        short, _col_label("label", ref.column), int(np.isnan(out).sum()), _TASK_DEFAULTS["label"]
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
    export: ExportTable,
    report: ImportReport,
    origin: str,
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
        report.notes.append(f"{int(ignored.sum())} rows of {spec.path} ignored: {why}")
    order = np.argsort(m, kind="stable")
    replay_sorted = order[replay[order]]
    table.replay_idx = {
        str(c): replay_sorted[table.cls[replay_sorted] == c]
        for c in dict.fromkeys(table.cls[replay_sorted])
    }
    table.backlog_idx = order[backlog[order]]
    report.files.append(
        export.loaded(
            "task_log",
            spec.name,
            f"{origin}; {int(replay.sum())} replayed, {int(backlog.sum())} backlog"
            + (f", {int(ignored.sum())} ignored" if ignored.any() else ""),
        )
    )
