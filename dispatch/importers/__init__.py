"""Import a real operation's exports: task logs (arrivals and backlog) and reviewer rosters.

A scenario's ``data:`` section points at files exported from the production queueing system.
Task logs either *replay* the day's arrivals at their recorded minutes (so a policy is judged
on the traffic that actually happened, not on a fitted Poisson model) or *seed the backlog*
that was waiting when a snapshot was taken. Rosters turn the people on staff into reviewer
groups, so the simulated workforce is the real one.

Exports are messy, so this module is strict about what it cannot interpret and explicit about
what it fills in:

* every unreadable value raises :class:`~dispatch.errors.DataError` with one line naming the
  file, the 1-based data row (the header is not counted) and the column, and saying what to
  fix -- a planner can correct the export without reading a traceback;
* every default applied (a blank risk score drawn from the class model, a blank accuracy set
  to the file's mean, ...) is counted per file and column in an :class:`ImportReport`, so
  nobody mistakes a simulated value for a measured one.

Every file's reading options (missing-value markers, class and market maps, safe class names,
transforms of numeric columns) are declared in :mod:`dispatch.dataspec`. The report is a
result artefact: :mod:`dispatch.importers.provenance` prints and saves it and fingerprints
the data files so a resumed run can refuse changed data.

Timestamps: ``iso`` strings (naive ones are taken as UTC, offsets are converted to UTC),
``unix_s``, ``unix_ms``, ``minutes`` (already minutes since minute 0; only ``start`` shifts
them) or a strftime pattern. Cells that read ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` or
nothing at all count as blank (``keep_default_na: false`` keeps all but the empty cell),
plus the file's and column's ``na_values``.
"""

from dispatch.importers.names import safe_name
from dispatch.importers.provenance import (
    check_data_unchanged,
    data_fingerprints,
    import_report,
    write_import_report,
)
from dispatch.importers.records import (
    DefaultApplied,
    ImportedData,
    ImportReport,
    LoadedFile,
    TaskRow,
    TransformApplied,
    ValueMapping,
)
from dispatch.importers.resolve import resolve_data

__all__ = [
    "DefaultApplied",
    "ImportReport",
    "ImportedData",
    "LoadedFile",
    "TaskRow",
    "TransformApplied",
    "ValueMapping",
    "check_data_unchanged",
    "data_fingerprints",
    "import_report",
    "resolve_data",
    "safe_name",
    "write_import_report",
]
