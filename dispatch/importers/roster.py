"""Reviewer rosters: markets, classes, accuracy, speed and shifts per reviewer.

Importing a roster takes two steps, because with ``markets: from_data`` the scenario's
markets are known only once every file has been read:

1. :func:`read_roster` reads and checks every column into :class:`RosterRows`, one entry per
   reviewer (errors name file, row and column; defaults go to the report);
2. :func:`roster_groups` turns the reviewers into reviewer groups, one per distinct kind of
   reviewer (classes, markets, accuracy, speed, shift) with the headcount as ``count``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from dispatch.dataspec import ColumnSpec, RosterColumns
from dispatch.errors import ConfigError
from dispatch.importers.columns import ExportTable
from dispatch.importers.common import _DAY, _GROUP_NAME_BAD, _UNIT_TO_MINUTES, _first, _show
from dispatch.importers.names import Seen, Where, map_class_labels, map_market_codes
from dispatch.importers.records import ImportReport
from dispatch.importers.rostercells import parse_list, parse_shift_time
from dispatch.importers.tasklog import _col_label
from dispatch.scenario import AccuracySpec, ReviewerGroup, RosterSpec, Scenario, Shift

_ACC_FIX = (
    "give accuracy as a share in [0, 1] (0.93 for 93%); a percentage column converts with "
    "transform: {kind: scale, factor: 0.01}"
)


@dataclass
class RosterRows:
    """The reviewers of one roster, column by column (index = data row - 1)."""

    table: ExportTable
    ids: list[str]
    classes: list[list[str]]
    markets: list[set[str] | None]  # None: all markets
    accuracy: np.ndarray  # nan: the group default
    by_class: dict[str, np.ndarray]  # nan: the overall accuracy
    mean_handling: np.ndarray  # minutes; nan: speed 1.0
    shifts: list[tuple[float, float] | None]  # None: always on duty
    specificity: float


# ------------------------------------------------------------------------------------------
# Step 1: read and check
# ------------------------------------------------------------------------------------------
def read_roster(
    scen: Scenario, idx: int, spec: RosterSpec, report: ImportReport, markets: list[str] | None
) -> RosterRows:
    """Read one roster; ``markets`` is ``None`` with ``markets: from_data``."""
    where = f"data.rosters.{idx}"
    default_classes = _check_config(scen, spec, where)
    table = ExportTable.read(scen.resolve_path(spec.path), spec, where, report, "roster")
    cols = spec.columns
    table.require(cols.mapped())
    if markets == ["all"] and cols.markets is not None:
        raise ConfigError(
            f"column '{cols.markets.column}' is mapped as markets, but the scenario has the "
            f"single market 'all', so it would be ignored; list the scenario's markets (or "
            f"write markets: from_data), or remove the mapping",
            field=f"{where}.columns.markets",
        )
    classes = _reviewer_classes(table, cols.classes, default_classes, scen, where)
    return RosterRows(
        table=table,
        ids=_reviewer_ids(table, cols.reviewer_id),
        classes=classes,
        markets=_reviewer_markets(table, cols.markets, markets, where),
        accuracy=_overall_accuracy(table, cols.accuracy),
        by_class=_class_accuracies(table, cols, classes, where),
        mean_handling=_mean_handling(table, cols.mean_handling_time, spec.handling_time_unit),
        shifts=_shifts(table, cols, spec.shift_time_format),
        specificity=spec.specificity,
    )


def _check_config(scen: Scenario, spec: RosterSpec, where: str) -> list[str] | None:
    """Checks that need the scenario but not the file; returns the default classes."""
    class_names = [c.name for c in scen.classes]
    cols = spec.columns
    bad_keys = sorted(set(cols.accuracy_by_class) - set(class_names))
    if bad_keys:
        raise ConfigError(
            f"unknown classes {bad_keys}; keys must be the scenario's classes {class_names}",
            field=f"{where}.columns.accuracy_by_class",
        )
    default = spec.default_classes
    if default == "all":
        default = class_names
    elif default is not None:
        bad = sorted(set(default) - set(class_names))
        if bad or not default:
            raise ConfigError(
                f"default_classes must be all or a non-empty list of the scenario's classes "
                f"{class_names} (unknown: {bad})",
                field=f"{where}.default_classes",
            )
    if cols.classes is None and default is None:
        raise ConfigError(
            "the roster says nothing about which classes reviewers handle; map "
            "columns.classes or set default_classes (a list, or all)",
            field=where,
        )
    if (cols.shift_start is None) != (cols.shift_end is None):
        raise ConfigError(
            "map both shift_start and shift_end, or neither (always on duty)",
            field=f"{where}.columns",
        )
    return None if default is None else [c for c in class_names if c in set(default)]


def _reviewer_ids(table: ExportTable, ref: ColumnSpec) -> list[str]:
    """Ids present and unique (a duplicate would count a person twice)."""
    ids = table.text(ref)
    seen: dict[str, int] = {}
    for i, rid in enumerate(ids):
        if rid is None:
            raise table.cell_error(
                i + 1,
                ref,
                "blank reviewer id",
                "every reviewer needs an id; fill it in or drop the row",
            )
        if rid in seen:
            raise table.cell_error(
                i + 1,
                ref,
                f"reviewer id {_show(rid)} already on row {seen[rid]}",
                "list each reviewer once",
            )
        seen[rid] = i + 1
    return [str(r) for r in ids]


def _list_cells(table: ExportTable, ref: ColumnSpec) -> list[list[str] | None]:
    """Every row's list cell parsed (each distinct text once; Parquet lists per row)."""
    series = table.series(ref)
    delim = table.spec.list_delimiter  # type: ignore[attr-defined]
    na = table.na(ref)
    first = series.dropna()
    if len(first) and isinstance(first.iloc[0], list | tuple | np.ndarray):
        return [
            parse_list(v, delim, table.fname, i + 1, ref.column, na) for i, v in enumerate(series)
        ]
    codes, texts = table.text_codes(ref)
    first_row = {int(c): i + 1 for i, c in reversed(list(enumerate(codes)))}
    parsed = [
        None
        if t is None
        else parse_list(t, delim, table.fname, first_row.get(k, 0), ref.column, na)
        for k, t in enumerate(texts)
    ]
    return [parsed[c] for c in codes]


def _items_seen(cells: list[list[str] | None], skip: str | None = None) -> dict[str, Seen]:
    out: dict[str, Seen] = {}
    for i, items in enumerate(cells):
        for item in items or ():
            if skip is not None and item.lower() == skip:
                continue
            s = out.get(item)
            if s is None:
                out[item] = Seen(1, i + 1)
            else:
                s.count += 1
    return out


def _reviewer_classes(
    table: ExportTable,
    ref: ColumnSpec | None,
    default: list[str] | None,
    scen: Scenario,
    where: str,
) -> list[list[str]]:
    """Classes per reviewer in scenario order; blank cells get the default classes."""
    n, short = table.n, table.short
    if ref is None:
        table.report.default(
            short, "classes", n, f"reviewers get default_classes {default}", blank=False
        )
        return [list(default or ())] * n
    class_names = [c.name for c in scen.classes]
    cells = _list_cells(table, ref)
    blank = np.array([c is None for c in cells], dtype=bool)
    if blank.any() and default is None:
        raise table.cell_error(
            _first(blank) + 1,
            ref,
            "blank classes",
            f"list the classes the reviewer handles (from {class_names}) or set default_classes "
            f"on the roster (a list, or all)",
        )
    mapping = map_class_labels(
        _items_seen(cells),
        class_names,
        table.spec.class_map,
        Where(table.fname, short, ref.column, "classes", where),
        table.report,
    )
    table.report.default(
        short, _col_label("classes", ref.column), int(blank.sum()), f"default_classes {default}"
    )
    out = []
    for items in cells:
        got = set(default or ()) if items is None else {mapping[x] for x in items}
        out.append([c for c in class_names if c in got])
    return out


def _reviewer_markets(
    table: ExportTable, ref: ColumnSpec | None, markets: list[str] | None, where: str
) -> list[set[str] | None]:
    """Markets per reviewer; blank cells and an ``all`` item mean every market."""
    if ref is None:
        return [None] * table.n
    cells = _list_cells(table, ref)
    mapping = map_market_codes(
        _items_seen(cells, skip="all"),
        markets,
        table.spec.market_map,
        Where(table.fname, table.short, ref.column, "markets", where),
        table.report,
    )
    out: list[set[str] | None] = []
    blank = 0
    for items in cells:
        if items is None:
            blank += 1
            out.append(None)
        elif any(x.lower() == "all" for x in items):
            out.append(None)
        else:
            out.append({mapping[x] for x in items})
    table.report.default(table.short, _col_label("markets", ref.column), blank, "all markets")
    return out


def _accuracy_column(
    table: ExportTable, fld: str, ref: ColumnSpec
) -> tuple[np.ndarray, np.ndarray]:
    """Accuracies as shares in [0, 1]; percentages are an error, not silently rescaled."""
    vals, blank = table.numeric(fld, ref, 0.0, None, _ACC_FIX, probability=True)
    pct = ~blank & (vals > 1.0)
    if pct.any():
        i = _first(pct)
        cell = _show(table.series(ref).iloc[i])
        what = fld.replace("_", " ")
        problem = (
            f"{what} {cell} looks like a percentage"
            if vals[i] <= 100.0
            else f"{what} {cell} is out of range [0, 1]"
        )
        raise table.cell_error(i + 1, ref, problem, _ACC_FIX)
    return vals, blank


def _default_accuracy() -> AccuracySpec:
    return ReviewerGroup.model_fields["default_accuracy"].get_default(call_default_factory=True)


def _overall_accuracy(table: ExportTable, ref: ColumnSpec | None) -> np.ndarray:
    """Overall accuracy; blanks get the file's mean (all blank: the group default)."""
    d = _default_accuracy()
    default_text = f"default sensitivity {d.sensitivity:g}, specificity {d.specificity:g}"
    if ref is None:
        table.report.default(
            table.short, "accuracy", table.n, f"reviewers get the {default_text}", blank=False
        )
        return np.full(table.n, np.nan)
    acc, blank = _accuracy_column(table, "accuracy", ref)
    label = _col_label("accuracy", ref.column)
    if blank.all():
        table.report.default(
            table.short, label, table.n, f"no accuracy in the file: {default_text}"
        )
    elif blank.any():
        mean = float(np.mean(acc[~blank]))
        acc[blank] = mean
        table.report.default(
            table.short, label, int(blank.sum()), f"set to the file's mean accuracy {mean:.4g}"
        )
    return acc


def _class_accuracies(
    table: ExportTable, cols: RosterColumns, classes: list[list[str]], where: str
) -> dict[str, np.ndarray]:
    """Per-class accuracy columns; a column no reviewer's classes use is an error."""
    out: dict[str, np.ndarray] = {}
    for cname, ref in cols.accuracy_by_class.items():
        vals, blank = _accuracy_column(table, f"accuracy_of_{cname}", ref)
        handles = np.array([cname in c for c in classes], dtype=bool)
        if (~blank).any() and not (handles & ~blank).any():
            raise ConfigError(
                f"no reviewer with a value in column '{ref.column}' handles class {cname}, so "
                f"the column would be ignored; check the classes column or remove the mapping",
                field=f"{where}.columns.accuracy_by_class.{cname}",
            )
        unused = int((~handles & ~blank).sum())
        if unused:
            table.report.notes.append(
                f"{unused} values of accuracy_by_class.{cname} (column '{ref.column}') in "
                f"{table.short} not used: those reviewers do not handle {cname}"
            )
        out[cname] = vals
        table.report.default(
            table.short,
            f"accuracy_by_class.{cname} (column '{ref.column}')",
            int(blank.sum()),
            "the reviewer's overall accuracy used",
        )
    return out


def _mean_handling(table: ExportTable, ref: ColumnSpec | None, unit: str) -> np.ndarray:
    """The reviewer's mean handling time in minutes (nan: speed 1.0)."""
    if ref is None:
        table.report.default(
            table.short, "mean_handling_time", table.n, "reviewers get speed 1.0", blank=False
        )
        return np.full(table.n, np.nan)
    mht, blank = table.numeric("mean_handling_time", ref, 0.0, None, "handling times must be > 0")
    zero = ~blank & (mht <= 0)
    if zero.any():
        i = _first(zero)
        raise table.cell_error(
            i + 1,
            ref,
            f"mean handling time {_show(table.series(ref).iloc[i])} is not > 0",
            "give the reviewer's mean handling time, or leave it blank for speed 1.0",
        )
    table.report.default(
        table.short, _col_label("mean_handling_time", ref.column), int(blank.sum()), "speed 1.0"
    )
    return mht * _UNIT_TO_MINUTES[unit]


def _shifts(table: ExportTable, cols: RosterColumns, fmt: str) -> list[tuple[float, float] | None]:
    """(start, end) minutes of the day per reviewer; both blank (or 00:00-24:00): on duty."""
    if cols.shift_start is None or cols.shift_end is None:
        return [None] * table.n
    s_ref, e_ref = cols.shift_start, cols.shift_end
    s_blank, e_blank = table.blank(s_ref), table.blank(e_ref)
    out: list[tuple[float, float] | None] = []
    for i in range(table.n):
        if s_blank[i] != e_blank[i]:
            raise table.cell_error(
                i + 1,
                e_ref if e_blank[i] else s_ref,
                "only one of shift_start and shift_end is given",
                "give both, or leave both blank for always on duty",
            )
        start = parse_shift_time(
            table.series(s_ref).iloc[i], fmt, table.fname, i + 1, s_ref.column, s_blank[i]
        )
        end = parse_shift_time(
            table.series(e_ref).iloc[i], fmt, table.fname, i + 1, e_ref.column, e_blank[i]
        )
        if start is None or end is None:
            out.append(None)
            continue
        if start == end:
            raise table.cell_error(
                i + 1,
                e_ref,
                "the shift ends when it starts",
                "give the real end time, or leave both blank for always on duty",
            )
        start %= _DAY
        end = end % _DAY or _DAY
        # 00:00-24:00 is a full day: the same as no shift at all.
        out.append(None if (end - start) % _DAY == 0 else (start, end))
    table.report.default(table.short, "shift_start/shift_end", int(s_blank.sum()), "always on duty")
    return out


# ------------------------------------------------------------------------------------------
# Step 2: reviewers into groups
# ------------------------------------------------------------------------------------------
def roster_groups(
    rows: RosterRows, scen: Scenario, markets: list[str], taken: set[str]
) -> list[ReviewerGroup]:
    """One group per distinct kind of reviewer, named after its first member."""
    handling_mean = {c.name: c.handling.expected for c in scen.classes}
    groups: dict[tuple, dict[str, Any]] = {}
    mixed_speed = 0
    for i, rid in enumerate(rows.ids):
        classes = rows.classes[i]
        kind = _reviewer_kind(rows, i, classes, markets, handling_mean)
        means = [handling_mean[c] for c in classes]
        if kind["speed"] and max(means) > 1.5 * min(means):
            mixed_speed += 1
        key = _kind_key(kind)
        if key in groups:
            groups[key]["count"] += 1
        else:
            groups[key] = kind | {"first_id": rid, "count": 1}
    short = rows.table.short
    if mixed_speed:
        rows.table.report.notes.append(
            f"{mixed_speed} reviewers in {short} handle classes whose mean handling times "
            f"differ by more than 1.5x: one mean handling time per reviewer makes their "
            f"per-class speeds depend on their class mix; check the speed factors"
        )
    out = [
        ReviewerGroup(
            name=_unique_name(f"roster_{_GROUP_NAME_BAD.sub('_', g.pop('first_id'))}", taken),
            **g,
        )
        for g in groups.values()
    ]
    rows.table.report.files.append(
        rows.table.loaded("roster", short, _groups_detail(len(rows.ids), out))
    )
    return out


def _reviewer_kind(
    rows: RosterRows,
    i: int,
    classes: list[str],
    markets: list[str],
    handling_mean: dict[str, float],
) -> dict[str, Any]:
    """Everything that makes reviewer ``i`` interchangeable with another, as group fields."""
    acc = rows.accuracy[i]
    spec = rows.specificity
    default_acc = (
        AccuracySpec(sensitivity=float(acc), specificity=spec)
        if acc == acc
        else _default_accuracy()
    )
    accuracy = {
        c: AccuracySpec(sensitivity=float(vals[i]), specificity=spec)
        for c, vals in rows.by_class.items()
        if c in classes and vals[i] == vals[i]
    }
    mht = rows.mean_handling[i]
    speed = {c: handling_mean[c] / float(mht) for c in classes} if mht == mht else {}
    mk = rows.markets[i]
    shift = rows.shifts[i]
    return {
        "classes": classes,
        "markets": "all" if mk is None else [m for m in markets if m in mk],
        "default_accuracy": default_acc,
        "accuracy": accuracy,
        "speed": speed,
        "shifts": [Shift(start=shift[0], end=shift[1])] if shift else [],
    }


def _kind_key(kind: dict[str, Any]) -> tuple:
    d = kind["default_accuracy"]
    shifts = kind["shifts"]
    return (
        tuple(kind["classes"]),
        kind["markets"] if isinstance(kind["markets"], str) else tuple(kind["markets"]),
        (d.sensitivity, d.specificity),
        tuple(sorted((c, a.sensitivity, a.specificity) for c, a in kind["accuracy"].items())),
        tuple(sorted(kind["speed"].items())),
        (shifts[0].start, shifts[0].end) if shifts else None,
    )


def _groups_detail(n: int, groups: list[ReviewerGroup], shown: int = 6) -> str:
    names = ", ".join(f"{g.name} x{g.count}" for g in groups[:shown])
    more = f", ... ({len(groups) - shown} more)" if len(groups) > shown else ""
    return f"{n} reviewers in {len(groups)} groups: {names}{more}"


def _unique_name(base: str, taken: set[str]) -> str:
    name, k = base, 2
    while name in taken:
        name = f"{base}_{k}"
        k += 1
    taken.add(name)
    return name
