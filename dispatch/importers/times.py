"""Time columns of exports: timestamps in several formats, and minute 0.

Formats (``timestamp_format``): ``iso`` strings (naive ones are UTC, offsets converted to
UTC), ``unix_s``, ``unix_ms``, ``minutes`` (already minutes since minute 0) or a strftime
pattern such as ``%Y-%m-%d %H:%M:%S``. Parquet datetime columns are used as they are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from dispatch.dataspec import ColumnSpec
from dispatch.errors import ConfigError, DataError
from dispatch.importers.columns import ExportTable
from dispatch.importers.common import _NUMERIC_TIME_SCALE, _first, _numeric, _one_line, _show

_EPOCH = pd.Timestamp(0, tz="UTC")


def time_values(
    table: ExportTable,
    ref: ColumnSpec,
    spec: Any,
    where: str,
    *,
    allow_blank: bool = False,
    what: str = "arrival",
) -> pd.Series | np.ndarray:
    """Parse a time column: UTC datetimes (NaT blank), or floats (nan blank) in the format's
    own unit. Blank cells are an error unless ``allow_blank`` (e.g. a review start of a task
    nobody reviewed). ``spec`` has ``timestamp_format``; ``where`` is its config path."""
    fmt = spec.timestamp_format
    series, fname, column = table.series(ref), table.fname, ref.column
    blank = table.blank(ref)
    if blank.any() and not allow_blank:
        raise table.cell_error(
            _first(blank) + 1,
            ref,
            f"blank {what} timestamp",
            f"every task needs its {what} time; fill it in or drop the row from the export",
        )
    is_dt = pd.api.types.is_datetime64_any_dtype(series)
    if fmt in _NUMERIC_TIME_SCALE:
        if is_dt:
            raise DataError(
                f"{fname}: column '{column}' holds datetimes but timestamp_format is "
                f"'{fmt}'; set timestamp_format: iso for this log"
            )
        vals, _ = _numeric(series, fname, column, "timestamp", na=table.na(ref))
        return vals
    if is_dt:
        ts = series.dt.tz_localize("UTC") if series.dt.tz is None else series.dt.tz_convert("UTC")
        return ts.reset_index(drop=True)
    text = series.astype("string").str.strip().mask(pd.Series(blank, index=series.index))
    pattern = "ISO8601" if fmt == "iso" else fmt
    try:
        ts = pd.to_datetime(text, format=pattern, utc=True, errors="coerce")
    except (ValueError, TypeError) as exc:
        raise ConfigError(
            f"timestamp_format {fmt!r} is not a usable strftime pattern ({_one_line(exc)}); "
            f"use 'iso', 'unix_s', 'unix_ms', 'minutes' or e.g. '%Y-%m-%d %H:%M:%S'",
            field=f"{where}.timestamp_format",
        ) from None
    bad = ts.isna().to_numpy(dtype=bool) & ~blank
    if bad.any():
        i = _first(bad)
        expect = (
            "an ISO 8601 timestamp such as 2024-03-01T08:00:00"
            if fmt == "iso"
            else f"the pattern {fmt!r}"
        )
        raise table.cell_error(
            i + 1,
            ref,
            f"unparsable timestamp {_show(series.iloc[i])}",
            f"expected {expect}; fix the cell or set timestamp_format to match the export",
        )
    return ts.reset_index(drop=True)


def parse_start(spec: Any, where: str) -> pd.Timestamp | float:
    """Minute 0 given as ``spec.start``, in the same representation as the parsed column."""
    fmt = spec.timestamp_format
    raw = str(spec.start).strip()
    where = f"{where}.start"
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


def epoch_minutes(values: pd.Series | np.ndarray, fmt: str) -> np.ndarray:
    """Parsed times as minutes since 1970-01-01 UTC (``minutes`` logs: as they are)."""
    if isinstance(values, pd.Series):
        return ((values - _EPOCH) / pd.Timedelta(minutes=1)).to_numpy(dtype=float, na_value=np.nan)
    return np.asarray(values, dtype=float) * _NUMERIC_TIME_SCALE[fmt]


def start_epoch_minutes(origin: pd.Timestamp | float, fmt: str) -> float:
    """``parse_start``'s result on the scale of :func:`epoch_minutes`."""
    if isinstance(origin, pd.Timestamp):
        return float((origin - _EPOCH) / pd.Timedelta(minutes=1))
    return float(origin) * _NUMERIC_TIME_SCALE[fmt]
