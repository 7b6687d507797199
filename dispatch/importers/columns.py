"""One export file as the importer reads it: mapped columns, missing values, maps, transforms.

:class:`ExportTable` wraps the raw table with the file's reading options (``na_values``,
``keep_default_na``) and each column's own (``na_values``, ``map``, ``transform``), keeps
track of which columns the mapping used (the rest are listed in the import report as not
used), and records in the report every transform it applied and every probability column
that looks like something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from dispatch.dataspec import ColumnSpec, _ExportFile
from dispatch.errors import DataError
from dispatch.importers.common import (
    NaRule,
    _blank_mask,
    _cell_error,
    _file_sha256,
    _first,
    _numeric,
    _read_table,
    _require_columns,
    _show,
    _text,
    _text_codes,
)
from dispatch.importers.records import ImportReport, LoadedFile, TransformApplied
from dispatch.transforms import apply_transforms

_TRANSFORM_HINT = (
    "if the column is a count, flag or score, give it a transform "
    "(e.g. transform: {kind: logistic, center: 1, scale: 1}; kinds: logistic, minmax, rank, "
    "threshold, clip, scale)"
)


@dataclass
class ExportTable:
    """An export read from disk with the options of its ``data:`` entry."""

    df: pd.DataFrame
    fname: str  # the resolved path, for error messages
    short: str  # the path as written in the scenario, for the report
    spec: _ExportFile
    report: ImportReport
    used: dict[str, None] = field(default_factory=dict)

    @classmethod
    def read(
        cls, path: Path, spec: _ExportFile, where: str, report: ImportReport, what: str
    ) -> ExportTable:
        """Read ``path`` (``spec.path`` resolved); an empty file is an error saying what to do."""
        df = _read_table(path, f"{where}.path")
        if len(df) == 0:
            raise DataError(f"{path}: no rows; export the {what} again or remove it from {where}")
        return cls(df, str(path), spec.path, spec, report)

    @property
    def n(self) -> int:
        return len(self.df)

    def require(self, mapped: dict[str, ColumnSpec]) -> None:
        """Every mapped column exists; they count as used."""
        _require_columns(self.df, self.fname, [(k, v.column) for k, v in mapped.items()])
        for ref in mapped.values():
            self.used[ref.column] = None

    # -- cells ---------------------------------------------------------------------------
    def na(self, ref: ColumnSpec) -> NaRule:
        return NaRule(
            builtin=self.spec.keep_default_na,
            extra=frozenset(self.spec.na_values) | frozenset(ref.na_values),
        )

    def series(self, ref: ColumnSpec) -> pd.Series:
        return self.df[ref.column]

    def blank(self, ref: ColumnSpec) -> np.ndarray:
        return _blank_mask(self.series(ref), self.na(ref))

    def text(self, ref: ColumnSpec) -> np.ndarray:
        """Stripped texts, ``None`` for missing cells."""
        return _text(self.series(ref), self.na(ref))

    def text_codes(self, ref: ColumnSpec) -> tuple[np.ndarray, list[str | None]]:
        return _text_codes(self.series(ref), self.na(ref))

    def cell_error(self, row: int, ref: ColumnSpec | str, problem: str, fix: str) -> DataError:
        column = ref if isinstance(ref, str) else ref.column
        return _cell_error(self.fname, row, column, problem, fix)

    def numeric(
        self,
        fld: str,
        ref: ColumnSpec,
        lo: float | None = None,
        hi: float | None = None,
        fix: str = "",
        *,
        probability: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """A numeric field: levels mapped, numbers parsed, transforms applied, range checked.

        Returns (values with nan for blanks, blank mask). Parse errors quote the raw cell;
        range errors after a transform say which transform gave the value. For a probability
        (``probability=True``) a column of whole numbers without a transform is suspicious
        (a count or flag mapped as a probability): out of range it is an error suggesting a
        transform, all 0/1 it is a warning in the report.
        """
        what = fld.replace("_", " ")
        raw, blank = _numeric(
            self.series(ref), self.fname, ref.column, what, na=self.na(ref), levels=ref.map
        )
        vals, desc = raw, ""
        if ref.transform:
            vals, desc = self._transform(fld, ref, raw)
        elif probability and _whole(raw[~blank]):
            fix = f"{fix}; {_TRANSFORM_HINT}" if fix else _TRANSFORM_HINT
            self._warn_whole(fld, ref, raw[~blank], lo, hi)
        self._check_range(fld, ref, vals, blank, lo, hi, fix, desc)
        return vals, blank

    def _transform(self, fld: str, ref: ColumnSpec, raw: np.ndarray) -> tuple[np.ndarray, str]:
        try:
            vals, desc = apply_transforms(ref.transform, raw)
        except ValueError as exc:
            raise DataError(
                f"{self.fname}: column '{ref.column}' ({fld}): cannot apply the transform: {exc}"
            ) from None
        known = vals[~np.isnan(vals)]
        self.report.transforms.append(
            TransformApplied(
                file=self.short,
                column=ref.column,
                field=fld,
                transform=desc,
                count=int(known.size),
                low=float(known.min()) if known.size else None,
                high=float(known.max()) if known.size else None,
            )
        )
        return vals, desc

    def _warn_whole(
        self, fld: str, ref: ColumnSpec, known: np.ndarray, lo: float | None, hi: float | None
    ) -> None:
        if (lo is None or known.min() >= lo) and (hi is None or known.max() <= hi):
            self.report.warnings.append(
                f"{self.short}: column '{ref.column}' mapped as {fld} (a probability) holds only "
                f"whole numbers ({', '.join(f'{v:g}' for v in np.unique(known)[:5])}): every "
                f"value is certain; {_TRANSFORM_HINT}"
            )

    def _check_range(
        self,
        fld: str,
        ref: ColumnSpec,
        vals: np.ndarray,
        blank: np.ndarray,
        lo: float | None,
        hi: float | None,
        fix: str,
        desc: str,
    ) -> None:
        out = np.zeros(len(vals), dtype=bool)
        if lo is not None:
            out |= ~blank & (vals < lo)
        if hi is not None:
            out |= ~blank & (vals > hi)
        if not out.any():
            return
        i = _first(out)
        if lo is not None and hi is not None:
            rng = f"out of range [{lo:g}, {hi:g}]"
        else:
            rng = f"below {lo:g}" if lo is not None else f"above {hi:g}"
        shown = _show(self.series(ref).iloc[i])
        value = f"{shown} gives {vals[i]:.6g} after {desc}, which" if desc else shown
        raise self.cell_error(
            i + 1, ref, f"{fld.replace('_', ' ')} {value} is {rng}", fix or "correct the value"
        )

    # -- the file as a whole --------------------------------------------------------------
    def loaded(self, kind: str, name: str, detail: str) -> LoadedFile:
        """The report entry of this file: rows, columns used and not used, content hash."""
        ignored = tuple(c for c in self.df.columns if c not in self.used)
        return LoadedFile(
            kind=kind,
            name=name,
            path=self.short,
            rows=self.n,
            detail=detail,
            sha256=_file_sha256(Path(self.fname)),
            columns_used=tuple(self.used),
            columns_ignored=ignored,
        )


def _whole(values: np.ndarray) -> bool:
    """Are all (non-blank) values whole numbers? Empty: no."""
    return bool(values.size) and bool(np.all(np.mod(values, 1.0) == 0.0))
