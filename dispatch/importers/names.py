"""Class labels and market codes: from what an export says to the scenario's names.

Exports label classes for people ("Ad review (video)"), while scenario class names are
identifiers (``ad_review_video``). A label becomes a class name by, in order:

1. the file's ``class_map`` (label -> class), if it lists the label;
2. the label itself, if it is a class of the scenario;
3. its *safe name* (:func:`safe_name`), if that is a class of the scenario.

Two different labels that reach the same class through a safe name are refused (one of them
is probably a different class): map them explicitly. Labels that match nothing are listed all
at once, with their safe names, so one look at the message says what to add.

Market codes go through the file's ``market_map`` and are otherwise taken as written; the
scenario's markets (or, with ``markets: from_data``, the union of all codes found) decide
what is known. Unknown codes are likewise listed all at once.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass

from dispatch.errors import ConfigError, DataError
from dispatch.importers.records import ImportReport, ValueMapping

_NOT_WORD = re.compile(r"[^0-9A-Za-z]+")
#: What the scenario accepts as a class name (TaskClass.name).
CLASS_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LISTED = 10  # unknown names shown in one message


def safe_name(label: str) -> str:
    """A valid class name for an export label, the same every time.

    Accents are dropped, every run of characters other than letters and digits becomes one
    ``_``, the result is lower case without leading or trailing ``_``, and a leading digit
    gets a ``c_`` prefix: ``'Ad review (video)'`` -> ``ad_review_video``, ``'2nd look'`` ->
    ``c_2nd_look``. A label with no letters or digits has no safe name (empty string).
    """
    ascii_text = unicodedata.normalize("NFKD", label).encode("ascii", "ignore").decode()
    slug = _NOT_WORD.sub("_", ascii_text).strip("_").lower()
    if slug and slug[0].isdigit():
        slug = f"c_{slug}"
    return slug


@dataclass
class Seen:
    """How often a name occurs in a column and its first 1-based data row."""

    count: int
    first_row: int


def tally(values: Iterable[tuple[str, int]]) -> dict[str, Seen]:
    """Distinct names with counts and first rows from (name, row) pairs."""
    out: dict[str, Seen] = {}
    for name, row in values:
        s = out.get(name)
        if s is None:
            out[name] = Seen(1, row)
        else:
            s.count += 1
    return out


@dataclass
class Where:
    """The file and column being mapped, for messages and the report."""

    fname: str
    short: str
    column: str
    field: str
    spec_field: str  # e.g. data.task_logs.0


def map_class_labels(
    seen: dict[str, Seen],
    known: list[str] | None,
    class_map: dict[str, str],
    where: Where,
    report: ImportReport,
) -> dict[str, str]:
    """Label -> class name for every label in ``seen``; unknown labels raise all at once.

    ``known`` is ``None`` when the data defines the classes (``dispatch calibrate``): every
    label becomes a class, named by class_map or by its safe name (so importing the same
    export into the calibrated scenario finds every class again).
    """
    if known is None:
        return _name_new_classes(seen, class_map, where, report)
    bad_targets = sorted({v for v in class_map.values() if v not in known})
    if bad_targets:
        raise ConfigError(
            f"maps labels to {bad_targets}, which are not classes of the scenario; use one of "
            f"{known}",
            field=f"{where.spec_field}.class_map",
        )
    out: dict[str, str] = {}
    how: dict[str, str] = {}
    unknown: list[str] = []
    for label in seen:
        if label in class_map:
            out[label], how[label] = class_map[label], "class_map"
        elif label in known:
            out[label] = label
        elif safe_name(label) in known:
            out[label], how[label] = safe_name(label), "safe name"
        else:
            unknown.append(label)
    if unknown:
        shown = [
            _count(label, seen, f"safe name {safe_name(label) or '(none)'}")
            for label in unknown[:_LISTED]
        ]
        raise DataError(
            f"{where.fname}: column '{where.column}': {len(unknown)} unknown class label"
            f"{'s' if len(unknown) > 1 else ''}: {', '.join(shown)}{_more(unknown)}; add classes "
            f"with these names to the scenario or map the labels in class_map (classes: {known})"
        )
    _refuse_collisions(out, how, where)
    _report(out, how, seen, where, report)
    _note_unused_keys(class_map, seen, "class_map", where, report)
    return out


def _name_new_classes(
    seen: dict[str, Seen], class_map: dict[str, str], where: Where, report: ImportReport
) -> dict[str, str]:
    out: dict[str, str] = {}
    how: dict[str, str] = {}
    for label in seen:
        if label in class_map:
            out[label], how[label] = class_map[label], "class_map"
        elif safe_name(label) == label:
            out[label] = label
        elif safe_name(label):
            out[label], how[label] = safe_name(label), "safe name"
        else:
            raise DataError(
                f"{where.fname}: column '{where.column}': class label {label!r} (row "
                f"{seen[label].first_row}) has no letters or digits to make a name from; map "
                f"it in class_map"
            )
    bad = sorted({v for v in out.values() if not CLASS_NAME.match(v)})
    if bad:
        raise ConfigError(
            f"maps labels to {bad}, which are not valid class names (letters, digits and _, "
            f"not starting with a digit)",
            field=f"{where.spec_field}.class_map",
        )
    _refuse_collisions(out, how, where)
    _report(out, how, seen, where, report)
    _note_unused_keys(class_map, seen, "class_map", where, report)
    return out


def map_market_codes(
    seen: dict[str, Seen],
    known: list[str] | None,
    market_map: dict[str, str],
    where: Where,
    report: ImportReport,
) -> dict[str, str]:
    """Code -> market for every code in ``seen``; with ``known``, unknown codes raise at once.

    ``known`` is ``None`` with ``markets: from_data``: every code is welcome.
    """
    out = {code: market_map.get(code, code) for code in seen}
    how = {code: "market_map" for code in seen if code in market_map}
    if known is not None:
        unknown = [c for c in seen if out[c] not in known]
        if unknown:
            shown = [
                _count(c, seen, f"market_map -> {out[c]}" if c in how else "")
                for c in unknown[:_LISTED]
            ]
            raise DataError(
                f"{where.fname}: column '{where.column}': {len(unknown)} unknown market code"
                f"{'s' if len(unknown) > 1 else ''}: {', '.join(shown)}{_more(unknown)}; add "
                f"them to the scenario's markets (or write markets: from_data) or map them in "
                f"market_map (markets: {known})"
            )
    _report(out, how, seen, where, report)
    _note_unused_keys(market_map, seen, "market_map", where, report)
    return out


def _count(name: str, seen: dict[str, Seen], extra: str = "") -> str:
    """``'Ad (video)' (12 rows, first row 3, safe name ad_video)``."""
    s = seen[name]
    rows = f"{s.count} rows, first row {s.first_row}" if s.count > 1 else f"row {s.first_row}"
    return f"{name!r} ({rows}{', ' + extra if extra else ''})"


def _more(items: list[str]) -> str:
    return f" and {len(items) - _LISTED} more" if len(items) > _LISTED else ""


def _refuse_collisions(out: dict[str, str], how: dict[str, str], where: Where) -> None:
    """Two labels reaching one class where a safe name was involved: refuse, one line."""
    by_target: dict[str, list[str]] = {}
    for label, name in out.items():
        by_target.setdefault(name, []).append(label)
    for name, labels in by_target.items():
        if len(labels) > 1 and any(how.get(lb) == "safe name" for lb in labels):
            shown = " and ".join(repr(lb) for lb in labels[:3])
            raise DataError(
                f"{where.fname}: column '{where.column}': the class labels {shown} all become "
                f"class {name}; if they are the same class list each in class_map, otherwise "
                f"map them to different classes"
            )


def _report(
    out: dict[str, str],
    how: dict[str, str],
    seen: dict[str, Seen],
    where: Where,
    report: ImportReport,
) -> None:
    for label, kind in how.items():
        if out[label] != label:
            report.mappings.append(
                ValueMapping(
                    where.short,
                    where.column,
                    where.field,
                    label,
                    out[label],
                    kind,
                    seen[label].count,
                )
            )


def _note_unused_keys(
    mapping: dict[str, str], seen: dict[str, Seen], name: str, where: Where, report: ImportReport
) -> None:
    unused = [k for k in mapping if k not in seen]
    if unused:
        report.notes.append(
            f"{name} entries not found in column '{where.column}' of {where.short}: "
            f"{', '.join(repr(k) for k in unused[:_LISTED])}{_more(unused)} (check spelling)"
        )
