"""Reviewer rosters: markets, classes, accuracy, speed and shifts per reviewer."""

from __future__ import annotations

import json
import math
from datetime import time as dt_time
from typing import Any

import numpy as np
import pandas as pd

from dispatch.errors import ConfigError, DataError
from dispatch.importers.common import (
    _DAY,
    _GROUP_NAME_BAD,
    _HHMM,
    _UNIT_TO_MINUTES,
    NULL_TOKENS,
    _blank_mask,
    _cell_error,
    _cell_str,
    _file_sha256,
    _first,
    _numeric,
    _read_table,
    _require_columns,
    _show,
    _text,
)
from dispatch.importers.records import ImportReport, LoadedFile
from dispatch.importers.tasklog import _col_label
from dispatch.scenario import (
    AccuracySpec,
    ReviewerGroup,
    RosterSpec,
    Scenario,
    Shift,
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
