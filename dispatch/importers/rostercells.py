"""Roster cells: list cells (JSON, delimited, Parquet lists) and shift times."""

from __future__ import annotations

import json
import math
from datetime import time as dt_time
from typing import Any

import numpy as np

from dispatch.importers.common import (
    _DAY,
    _HHMM,
    NULL_TOKENS,
    NaRule,
    _cell_error,
    _cell_str,
    _show,
)


def parse_list(
    value: Any, delimiter: str, fname: str, row: int, column: str, na: NaRule
) -> list[str] | None:
    """Names in one list cell; ``None`` if blank.

    Accepted: a JSON list (``["US", "NO"]``), a bracketed list of bare names (``[US, NO]``,
    as some exports write it), a delimited text (``US|NO``) or a Parquet list. The cell text
    is read as text, never as YAML, so ``NO`` stays Norway.
    """
    if isinstance(value, list | tuple | np.ndarray):
        items = [_cell_str(v) for v in value]
        return [s for s in items if s] or None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    text = _cell_str(value)
    if _is_blank(text, na):
        return None
    if text.startswith("["):
        items = _bracketed(text, delimiter, fname, row, column)
    else:
        items = [s.strip() for s in text.split(delimiter)]
    items = [s for s in items if s]
    return items or None


def _is_blank(text: str, na: NaRule) -> bool:
    if text == "" or text in na.extra:
        return True
    return na.builtin and text.lower() in NULL_TOKENS


def _bracketed(text: str, delimiter: str, fname: str, row: int, column: str) -> list[str]:
    try:
        parsed = json.loads(text)
    except json.JSONDecodeError as exc:
        inner = text[1:-1] if text.endswith("]") else None
        if inner is not None and '"' not in inner and "'" not in inner and "[" not in inner:
            return [s.strip() for s in inner.split(",")]  # [US, NO]: bare names
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
    return [_cell_str(x) for x in parsed]


def parse_shift_time(
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
