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

Timestamps: ``iso`` strings (naive ones are taken as UTC, offsets are converted to UTC),
``unix_s``, ``unix_ms``, ``minutes`` (already minutes since minute 0; only ``start`` shifts
them) or a strftime pattern. Cells that read ``NA``, ``N/A``, ``NaN``, ``null``, ``None`` or
nothing at all count as blank.
"""

from dispatch.importers.records import (
    DefaultApplied,
    ImportedData,
    ImportReport,
    LoadedFile,
    TaskRow,
)
from dispatch.importers.resolve import resolve_data

__all__ = [
    "DefaultApplied",
    "ImportReport",
    "ImportedData",
    "LoadedFile",
    "TaskRow",
    "resolve_data",
]
