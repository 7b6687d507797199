"""``dispatch calibrate``: fit a scenario to a real operation's task log (and roster).

From a task log -- a real export described by a calibration config, or the ``tasks.parquet``
that ``dispatch simulate --out DIR --records`` writes -- this package fits:

* arrival profiles per class by time of day (by day of week and time when the log spans a
  week), with market mixes (:mod:`~dispatch.calibrate.arrivals`);
* handling-time distributions per class and reviewer group, exponential / lognormal / gamma
  by maximum likelihood, chosen by AIC or the KS statistic, with group speed factors
  (:mod:`~dispatch.calibrate.handling`);
* exponential patience where tasks expire, reviewer accuracy where the truth is known, risk
  score distributions (:mod:`~dispatch.calibrate.outcomes`);

and writes a plain scenario YAML a user can edit and simulate on new seeds, with a fit
report (``report.md``, tables as CSV, figures), atomically into an output folder
(:mod:`~dispatch.calibrate.write`). The log is read with the importer's machinery, so a
config's ``task_log`` takes the same options as a scenario's ``data:`` entries.

Flow: :func:`~dispatch.calibrate.spec.load_spec` -> :func:`~dispatch.calibrate.build.
calibrate` (load, fit, build) -> :func:`~dispatch.calibrate.write.write_calibration`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dispatch.calibrate.build import Calibration, calibrate
from dispatch.calibrate.spec import CalibrationSpec, load_spec, simulator_log
from dispatch.calibrate.write import check_destination, write_calibration

__all__ = [
    "Calibration",
    "CalibrationSpec",
    "calibrate",
    "load_spec",
    "run_calibration",
    "simulator_log",
    "write_calibration",
]


def run_calibration(
    source: str | Path,
    out: str | Path,
    overrides: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Calibration:
    """Read ``source`` (config or simulator export), fit, and write the folder ``out``."""
    out = Path(out)
    check_destination(out, overwrite)
    spec = load_spec(source, overrides)
    cal = calibrate(spec, out)
    write_calibration(cal, out, overwrite=overwrite)
    return cal
