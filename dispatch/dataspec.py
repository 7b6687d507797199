"""The ``data:`` section of a scenario: which export files to import and how to read them.

A task log or roster entry names its file, says which column holds which field, and how to
read the values: which cells mean "missing" (``na_values``), how the export's class labels and
market codes translate into the scenario's names (``class_map``, ``market_map``; class labels
with spaces or parentheses get safe names automatically), and how a column becomes the field
the simulator needs (a ``transform`` from a small documented set, see
:mod:`dispatch.transforms`). The README section "Importing a real operation" shows every
option with an example; :mod:`dispatch.importers` does the reading.

A column is named either by its header text alone (``risk: model_score``) or by a mapping with
options (``risk: {column: punish_num, na_values: ["-"], transform: {kind: logistic}}``).
Header names are compared after stripping spaces and a UTF-8 byte-order mark, on both sides:
a header exported as ``" punish_num "`` matches ``punish_num`` and vice versa.

YAML 1.1 reads an unquoted ``NO`` (Norway), ``no``, ``off`` or ``yes`` as a boolean and an
unquoted ``null`` as nothing. Where a name is expected (market codes, class labels, map keys)
such a value stops the load with a message saying to quote it, instead of a confusing type
error or a silently wrong market.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from dispatch.transforms import Transform

_STRICT = ConfigDict(extra="forbid")
_BOM = "\ufeff"

_YAML_FALSE = "NO, No, no, OFF, Off, off or false"
_YAML_TRUE = "YES, Yes, yes, ON, On, on or true"


# ------------------------------------------------------------------------------------------
# Names from YAML: the Norway problem and numeric codes
# ------------------------------------------------------------------------------------------
def yaml_name(value: Any) -> Any:
    """A name as YAML gave it, as text: numbers become their text, booleans and null fail.

    ``{1: listing}`` (a numeric class code) becomes ``{"1": "listing"}``; ``NO`` unquoted
    arrives as ``False`` and is refused with the fix (quote it).
    """
    if isinstance(value, bool):
        spelled = _YAML_TRUE if value else _YAML_FALSE
        raise ValueError(
            f"YAML read an unquoted {spelled} here as the boolean {str(value).lower()}; if it "
            f"is a code or name (NO is Norway), quote it: 'NO'"
        )
    if value is None:
        raise ValueError(
            "YAML read an empty value or an unquoted null/~ here as nothing; quote the name "
            "(write 'null' or \"\" if that is really the text)"
        )
    if isinstance(value, int | float):
        return str(int(value)) if float(value).is_integer() else str(value)
    return value


def yaml_names(values: Any) -> Any:
    """Every item of a YAML list through :func:`yaml_name`; the message names the item."""
    if not isinstance(values, list | tuple):
        return values
    out = []
    for i, v in enumerate(values):
        try:
            out.append(yaml_name(v))
        except ValueError as exc:
            raise ValueError(f"item {i + 1}: {exc}") from None
    return out


def yaml_keys(mapping: Any) -> Any:
    """Keys (and text values) of a YAML mapping through :func:`yaml_name`."""
    if not isinstance(mapping, dict):
        return mapping
    out = {}
    for k, v in mapping.items():
        try:
            key = yaml_name(k)
        except ValueError as exc:
            raise ValueError(f"a key: {exc}") from None
        out[key] = v
    return out


def yaml_name_map(mapping: Any) -> Any:
    """A name -> name mapping (class_map, market_map): keys and values are names."""
    mapping = yaml_keys(mapping)
    if not isinstance(mapping, dict):
        return mapping
    out = {}
    for k, v in mapping.items():
        try:
            out[k] = yaml_name(v)
        except ValueError as exc:
            raise ValueError(f"the value of {k!r}: {exc}") from None
    return out


def clean_header(name: str) -> str:
    """A header as the importer compares it: no surrounding spaces, no byte-order mark."""
    text = str(name).replace(_BOM, "").strip()
    if not text:
        raise ValueError("a column name cannot be blank")
    return text


def _clean_keys(mapping: dict[str, Any]) -> dict[str, Any]:
    return {k.strip(): v for k, v in mapping.items()}


def _as_list(value: Any) -> Any:
    """One transform or a list of them: always a list."""
    if value is None:
        return []
    return value if isinstance(value, list | tuple) else [value]


Header = Annotated[str, BeforeValidator(yaml_name), AfterValidator(clean_header)]
NameMap = Annotated[dict[str, str], BeforeValidator(yaml_name_map), AfterValidator(_clean_keys)]
TextList = Annotated[list[str], BeforeValidator(yaml_names)]


# ------------------------------------------------------------------------------------------
# One column and its options
# ------------------------------------------------------------------------------------------
class ColumnSpec(BaseModel):
    """A column with reading options; a bare header name is the same without options."""

    model_config = _STRICT
    column: Header = Field(description="Header of the column in the export.")
    na_values: TextList = Field(
        default_factory=list,
        description="More cell texts read as missing in this column, on top of the file's "
        "na_values (compared after stripping spaces, case-sensitive).",
    )
    map: Annotated[dict[str, float], BeforeValidator(yaml_keys), AfterValidator(_clean_keys)] = (
        Field(
            default_factory=dict,
            description="Cell text -> number, for numeric fields with text levels "
            "(severity: {map: {low: 1, high: 10}}); other cells must be numbers.",
        )
    )
    transform: Annotated[list[Transform], BeforeValidator(_as_list)] = Field(
        default_factory=list,
        description="How the column's numbers become the field: logistic, minmax, rank, "
        "threshold, clip or scale (a list is applied in order); see dispatch/transforms.py.",
    )


def _as_column(value: Any) -> Any:
    """A bare header name is a column without options."""
    if isinstance(value, dict | ColumnSpec):
        return value
    return {"column": value}


#: A mapping entry: a header name, or a mapping with ``column`` and options. Always held as a
#: :class:`ColumnSpec`, so the importer has one shape to read.
ColumnRef = Annotated[ColumnSpec, BeforeValidator(_as_column)]


def no_numeric_options(fields: dict[str, ColumnSpec | None], where: str) -> None:
    """Class, market, time and id columns take names, not numbers: no map or transform."""
    for fld, ref in fields.items():
        if ref is not None and (ref.map or ref.transform):
            names = {"class": "class_map", "classes": "class_map", "market": "market_map"}
            names["markets"] = "market_map"
            hint = (
                f"use {names[fld]} on the file for names"
                if fld in names
                else "these options are for numeric fields"
            )
            raise ValueError(f"{where}.{fld}: map and transform do not apply here; {hint}")


# ------------------------------------------------------------------------------------------
# Task logs
# ------------------------------------------------------------------------------------------
class _ExportFile(BaseModel):
    """Options every export file shares: missing-value markers and name maps."""

    model_config = _STRICT
    path: str = Field(
        description="CSV (.csv, .csv.gz) or Parquet (.parquet, .pq) file; relative paths are "
        "resolved from the scenario file's folder."
    )
    na_values: TextList = Field(
        default_factory=list,
        description='Cell texts read as missing in every column, e.g. ["-", "n.a."], on top '
        "of the built-in ones (see keep_default_na).",
    )
    keep_default_na: bool = Field(
        default=True,
        description="Also read empty cells and NA, N/A, NaN, NaT, null, None (any case) as "
        "missing. Set false when such a text is a real value (NA is Namibia's code); empty "
        "cells stay missing.",
    )
    class_map: NameMap = Field(
        default_factory=dict,
        description="Export class label -> scenario class name. Labels not listed keep their "
        "name if it is a class, else get a safe name (lower case, runs of other characters "
        "as _: 'Ad (video)' -> ad_video); every renaming is reported.",
    )
    market_map: NameMap = Field(
        default_factory=dict,
        description="Export market code -> scenario market (UK: GB); codes not listed are "
        "used as written.",
    )


class ColumnMap(BaseModel):
    """Which column of a task log holds each field (only ``arrival`` and ``class`` needed)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    arrival: ColumnRef = Field(description="Arrival (creation) timestamp; never blank.")
    task_class: ColumnRef = Field(alias="class", description="Class label; never blank.")
    market: ColumnRef | None = Field(
        default=None, description="Market code; blank: drawn from the class market mix."
    )
    risk: ColumnRef | None = Field(
        default=None,
        description="Risk score, a probability in [0, 1] (transform counts or scores into "
        "one); blank: drawn from the class risk model.",
    )
    reach: ColumnRef | None = Field(
        default=None, description="Views per minute while up (>= 0); blank: drawn."
    )
    severity: ColumnRef | None = Field(default=None, description="Severity (>= 0); blank: drawn.")
    label: ColumnRef | None = Field(
        default=None,
        description="Ground truth; texts in label_true mean violating, others not; blank: "
        "drawn from the risk.",
    )
    handling_time: ColumnRef | None = Field(
        default=None,
        description="Handling time in handling_time_unit (>= 0); blank: drawn from the class.",
    )
    task_id: ColumnRef | None = Field(
        default=None, description="Task id, kept to trace a simulated task to its row."
    )

    @model_validator(mode="after")
    def _options_fit(self) -> ColumnMap:
        no_numeric_options(
            {
                "arrival": self.arrival,
                "class": self.task_class,
                "market": self.market,
                "label": self.label,
                "task_id": self.task_id,
            },
            "columns",
        )
        return self

    def mapped(self) -> dict[str, ColumnSpec]:
        """Field -> entry for every mapped field ("class" under its YAML name)."""
        out = {}
        for name in type(self).model_fields:
            ref = getattr(self, name)
            if ref is not None:
                out["class" if name == "task_class" else name] = ref
        return out


class TaskLogSpec(_ExportFile):
    """A task log (CSV or Parquet) that replays arrivals and/or seeds the morning's backlog."""

    name: str = Field(description="Name that replaying classes refer to (arrivals.log).")
    columns: ColumnMap = Field(description="Which column holds which field.")
    timestamp_format: str = Field(
        default="iso",
        description="'iso', 'unix_s', 'unix_ms', 'minutes' (already minutes since start) or a "
        "strftime pattern such as '%Y-%m-%d %H:%M:%S'.",
    )
    start: str | None = Field(
        default=None,
        description="Timestamp of minute 0; default the first arrival (replay) or the last "
        "(backlog snapshot).",
    )
    handling_time_unit: Literal["seconds", "minutes", "hours"] = Field(
        default="seconds", description="Unit of the handling_time column."
    )
    use: Literal["replay", "backlog", "both"] = Field(
        default="replay",
        description="replay: rows from minute 0 on arrive as logged; backlog: rows up to "
        "minute 0 wait at the start; both: before minute 0 backlog, after it replay.",
    )
    label_true: TextList = Field(
        default_factory=lambda: ["1", "true", "yes", "violating"],
        description="Label texts meaning violating (case-insensitive).",
    )

    @field_validator("start", mode="before")
    @classmethod
    def _start_as_text(cls, v: Any) -> Any:
        # YAML reads an unquoted 2024-03-01T08:00:00Z as a datetime: accept it as text.
        import datetime

        if v is None or isinstance(v, str):
            return v
        if isinstance(v, datetime.datetime | datetime.date):
            return v.isoformat()
        return str(v)


# ------------------------------------------------------------------------------------------
# Rosters
# ------------------------------------------------------------------------------------------
class RosterColumns(BaseModel):
    """Which column of a roster holds each field (only ``reviewer_id`` needed)."""

    model_config = _STRICT
    reviewer_id: ColumnRef = Field(description="Reviewer id; unique, never blank.")
    markets: ColumnRef | None = Field(
        default=None,
        description="Markets the reviewer covers: a JSON list ['US', 'NO'], a delimited text "
        "US|NO, or 'all'; blank: all markets.",
    )
    classes: ColumnRef | None = Field(
        default=None,
        description="Classes the reviewer handles, as a list like markets; blank: default_classes.",
    )
    accuracy: ColumnRef | None = Field(
        default=None,
        description="One accuracy (sensitivity) for all classes, a share in [0, 1]; blank: "
        "the file's mean.",
    )
    accuracy_by_class: dict[str, ColumnRef] = Field(
        default_factory=dict,
        description="Class -> column of that class's accuracy; blank: the overall accuracy.",
    )
    mean_handling_time: ColumnRef | None = Field(
        default=None,
        description="The reviewer's mean handling time (handling_time_unit); sets per-class "
        "speed = class mean / this; blank: speed 1.0.",
    )
    shift_start: ColumnRef | None = Field(
        default=None, description="Shift start, hh:mm or minutes of the day; with shift_end."
    )
    shift_end: ColumnRef | None = Field(
        default=None, description="Shift end; both blank: always on duty."
    )

    @model_validator(mode="after")
    def _options_fit(self) -> RosterColumns:
        no_numeric_options(
            {
                "reviewer_id": self.reviewer_id,
                "markets": self.markets,
                "classes": self.classes,
                "shift_start": self.shift_start,
                "shift_end": self.shift_end,
            },
            "columns",
        )
        return self

    def mapped(self) -> dict[str, ColumnSpec]:
        """Field -> entry for every mapped column (per-class accuracy as accuracy_by_class.c)."""
        out: dict[str, ColumnSpec] = {}
        for name in type(self).model_fields:
            ref = getattr(self, name)
            if name == "accuracy_by_class":
                out.update({f"accuracy_by_class.{c}": r for c, r in ref.items()})
            elif ref is not None:
                out[name] = ref
        return out


class RosterSpec(_ExportFile):
    """A reviewer roster export; each row becomes a reviewer (grouped when identical)."""

    columns: RosterColumns = Field(description="Which column holds which field.")
    list_delimiter: str = Field(default="|", description="Separator of list cells not in JSON.")
    handling_time_unit: Literal["seconds", "minutes", "hours"] = Field(
        default="seconds", description="Unit of the mean_handling_time column."
    )
    shift_time_format: Literal["hh:mm", "minutes"] = Field(
        default="hh:mm", description="How shift times are written."
    )
    default_classes: Literal["all"] | list[str] | None = Field(
        default=None,
        description="Classes of reviewers whose classes cell is blank or not mapped: a list "
        "of class names, or all (every class of the scenario).",
    )
    specificity: float = Field(
        default=0.97, ge=0, le=1, description="Specificity assumed when only accuracy is known."
    )

    @field_validator("default_classes", mode="before")
    @classmethod
    def _class_names(cls, v: Any) -> Any:
        return yaml_names(v)


class DataSpec(BaseModel):
    """Real exports to import: task logs (arrivals, backlog) and rosters (reviewers)."""

    model_config = _STRICT
    task_logs: list[TaskLogSpec] = Field(
        default_factory=list, description="Task logs; replayed or seeding the backlog."
    )
    rosters: list[RosterSpec] = Field(
        default_factory=list, description="Rosters; each adds reviewer groups."
    )

    def market_columns(self) -> bool:
        """Does any file map a market column (needed for ``markets: from_data``)?"""
        return any(t.columns.market is not None for t in self.task_logs) or any(
            r.columns.markets is not None for r in self.rosters
        )
