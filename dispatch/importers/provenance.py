"""The import report as a result artefact: printed, saved, and binding on resumed runs.

A simulation of imported data is only as good as the import, so the report goes wherever the
results go: ``dispatch simulate`` prints it on stderr (stdout stays clean for ``--json``) and
``--out`` saves it next to the metrics as ``import_report.json`` (complete, machine-readable)
and ``import_report.txt`` (the same summary a person reads). Both carry the SHA-256 of every
data file, so a result can be traced to the exact export.

For experiment runs (:mod:`dispatch.runner`), :func:`data_fingerprints` gives the content
hashes cheaply (no parsing) and :func:`check_data_unchanged` refuses to resume a run whose
data files changed since it started: a resumed run would otherwise mix cells computed on two
different exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.errors import DataError
from dispatch.importers.common import _file_sha256
from dispatch.importers.records import ImportReport
from dispatch.scenario import Scenario

REPORT_STEM = "import_report"


def import_report(scenario: Scenario) -> dict[str, Any]:
    """Import ``scenario``'s data and return the complete report as JSON-able data.

    Empty (no files) for a scenario without a ``data:`` section. Raises the import's
    :class:`~dispatch.errors.DataError` / :class:`~dispatch.errors.ConfigError` when the
    data cannot be imported, like a simulation would.
    """
    return _report_of(scenario).to_dict()


def _report_of(scenario: Scenario) -> ImportReport:
    if not (scenario.data.task_logs or scenario.data.rosters):
        return ImportReport()
    from dispatch.importers.resolve import resolve_data

    return resolve_data(scenario)[1].report


def data_fingerprints(scenario: Scenario) -> dict[str, str]:
    """SHA-256 of every data file of ``scenario``, keyed by the path as the scenario writes it.

    Call it on the scenario as loaded (before :func:`~dispatch.importers.resolve_data`, which
    moves rosters into reviewer groups). A missing file raises :class:`DataError`.
    """
    out: dict[str, str] = {}
    for where, spec in _data_files(scenario):
        path = scenario.resolve_path(spec.path)
        sha = _file_sha256(path)
        if sha is None:
            raise DataError(f"{path}: file not found; check {where}.path")
        out[spec.path] = sha
    return out


def check_data_unchanged(scenario: Scenario, saved: dict[str, str]) -> None:
    """Raise :class:`DataError` (one line) if any data file differs from ``saved``.

    ``saved`` is what :func:`data_fingerprints` returned when the run started. Files added
    to or removed from the scenario count as changes too.
    """
    now = data_fingerprints(scenario)
    changed = [
        f"{p} (sha256 {saved[p][:12]}... now {now[p][:12]}...)"
        for p in sorted(set(saved) & set(now))
        if saved[p] != now[p]
    ]
    changed += [f"{p} (no longer in the scenario)" for p in sorted(set(saved) - set(now))]
    changed += [f"{p} (new in the scenario)" for p in sorted(set(now) - set(saved))]
    if changed:
        raise DataError(
            f"data of scenario {scenario.name} changed since this run started: "
            f"{'; '.join(changed)}; restore the files or start a new run folder (a resumed run "
            f"must use the same data)"
        )


def write_import_report(
    report: ImportReport | Scenario, folder: str | Path, stem: str = REPORT_STEM
) -> list[Path]:
    """Save ``report`` as ``<stem>.json`` and ``<stem>.txt`` in ``folder`` (atomically).

    Accepts an :class:`ImportReport`, or a scenario (imported here). Returns the paths.
    """
    from dispatch.io import atomic_write_json, atomic_write_text

    if isinstance(report, Scenario):
        report = _report_of(report)
    folder = Path(folder)
    paths = [folder / f"{stem}.json", folder / f"{stem}.txt"]
    atomic_write_json(paths[0], report.to_dict())
    atomic_write_text(paths[1], report.summary() + "\n")
    return paths


def _data_files(scenario: Scenario) -> list[tuple[str, Any]]:
    return [(f"data.task_logs.{i}", s) for i, s in enumerate(scenario.data.task_logs)] + [
        (f"data.rosters.{i}", s) for i, s in enumerate(scenario.data.rosters)
    ]
