"""Shared parsing helpers and constants for importing exports."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from dispatch.errors import DataError

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
            f"folder of the config file that names it)"
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
    # Header cells padded with spaces (and a byte-order mark) are spreadsheet artefacts;
    # nobody means them. The mapping's names are cleaned the same way (dataspec.clean_header).
    df.columns = [str(c).replace("\ufeff", "").strip() for c in df.columns]
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


@dataclass(frozen=True)
class NaRule:
    """Which cell texts read as missing in one column.

    ``builtin``: compare case-insensitively with :data:`NULL_TOKENS` (the file's
    ``keep_default_na``); ``extra``: the file's and the column's ``na_values``, compared
    exactly after stripping. An empty cell is always missing.
    """

    builtin: bool = True
    extra: frozenset[str] = frozenset()

    def mask(self, stripped: pd.Series) -> np.ndarray:
        """Missing cells of a column already converted to stripped strings (nan stays nan)."""
        mask = stripped.isna().to_numpy(dtype=bool, copy=True)
        tokens = [t for t in self.extra if t]
        if self.builtin:
            mask |= stripped.str.lower().isin(list(NULL_TOKENS)).fillna(True).to_numpy(dtype=bool)
        else:
            mask |= (stripped == "").fillna(True).to_numpy(dtype=bool)
        if tokens:
            mask |= stripped.isin(tokens).fillna(True).to_numpy(dtype=bool)
        return mask


DEFAULT_NA = NaRule()


def _blank_mask(series: pd.Series, na: NaRule = DEFAULT_NA) -> np.ndarray:
    mask = series.isna().to_numpy(dtype=bool, copy=True)
    if _is_text(series):
        mask |= na.mask(_stripped(series))
    return mask


def _stripped(series: pd.Series) -> pd.Series:
    """Cells as stripped strings; Parquet list cells become their JSON-like text."""
    try:
        return series.astype("string").str.strip()
    except (TypeError, ValueError):  # unhashable or odd objects: one conversion per cell
        return pd.Series(
            [None if v is None else str(v) for v in series], dtype="string"
        ).str.strip()


def _text_codes(series: pd.Series, na: NaRule = DEFAULT_NA) -> tuple[np.ndarray, list[str | None]]:
    """Cells as codes into their distinct texts (stripped); blanks map to ``None``.

    Works on the distinct values only, so a million-row log with a handful of classes and
    markets costs one factorisation, not a million string conversions.
    """
    blank = _blank_mask(series, na)
    try:
        codes, uniques = pd.factorize(series, use_na_sentinel=True)
    except TypeError:  # unhashable cells (Parquet lists): one code per row
        codes = np.arange(len(series))
        uniques = series.to_numpy(dtype=object)
    texts: list[str | None] = [_cell_str(u) for u in np.asarray(uniques, dtype=object)]
    texts.append(None)  # code -1: missing
    codes = np.where(blank, len(texts) - 1, np.where(codes < 0, len(texts) - 1, codes))
    return codes, texts


def _text(series: pd.Series, na: NaRule = DEFAULT_NA) -> np.ndarray:
    """Cells as stripped strings (object array); blanks are ``None``."""
    codes, texts = _text_codes(series, na)
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
    na: NaRule = DEFAULT_NA,
    levels: dict[str, float] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Parse a numeric column: (values with nan for blanks, blank mask); bad cells raise.

    ``levels`` maps cell texts to numbers first (severity written as low/high); other cells
    must be numbers. Ranges are checked by the caller, after any transform
    (:meth:`~dispatch.importers.columns.ExportTable.numeric`).
    """
    blank = _blank_mask(series, na)
    if pd.api.types.is_bool_dtype(series):
        raise DataError(
            f"{fname}: column '{column}' holds true/false values, not numbers ({what}); map "
            f"the right column"
        )
    if _is_text(series):
        src = _stripped(series).mask(pd.Series(blank, index=series.index))
        if levels:
            src = src.replace({k: str(v) for k, v in levels.items()})
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
            "write a plain number such as 0.25 (no units or thousands separators); if it "
            "marks a missing value, add it to na_values",
        )
    vals[blank] = np.nan
    return vals, blank
