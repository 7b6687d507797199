"""Task logs: arrival timestamps, classes, markets, risk, labels, handling times."""

from __future__ import annotations

import numpy as np
import pandas as pd

from dispatch.errors import ConfigError, DataError
from dispatch.importers.common import (
    _NUMERIC_TIME_SCALE,
    _TASK_DEFAULTS,
    _UNIT_TO_MINUTES,
    _blank_mask,
    _cell_error,
    _file_sha256,
    _first,
    _numeric,
    _one_line,
    _read_table,
    _require_columns,
    _show,
    _text,
    _text_codes,
)
from dispatch.importers.records import ImportReport, LoadedFile, _LogTable
from dispatch.scenario import (
    ProfileArrivals,
    Scenario,
    TaskLogSpec,
)


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
