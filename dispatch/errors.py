"""User-facing errors: one clear message naming the field and the fix, never a traceback."""

from __future__ import annotations


class DispatchError(Exception):
    """Base class of errors the CLI reports as one line and a non-zero exit."""


class ConfigError(DispatchError):
    """A scenario, experiment or flag is invalid.

    The message names the file (if any), the field, what is wrong and how to fix it.
    """

    def __init__(self, message: str, *, source: str | None = None, field: str | None = None):
        self.source = source
        self.field = field
        parts = []
        if source:
            parts.append(str(source))
        if field:
            parts.append(f"field '{field}'")
        prefix = ": ".join(parts)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class DataError(DispatchError):
    """An imported roster or task log is missing columns or has malformed values."""
