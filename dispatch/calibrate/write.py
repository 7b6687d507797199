"""Write a calibration's output folder atomically: everything or nothing.

The folder is built under a temporary name next to its destination and renamed into place
in one step, so an interrupted calibration never leaves a half-written scenario that looks
finished. An existing non-empty folder is replaced only when asked (``overwrite``).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from dispatch.calibrate.build import Calibration, validate_payload
from dispatch.calibrate.figures import arrival_profile, handling_times
from dispatch.calibrate.report import markdown, summary, tables
from dispatch.errors import ConfigError

SCENARIO_FILE = "scenario.yaml"


def check_destination(out: Path, overwrite: bool) -> None:
    """Refuse a non-empty destination unless ``overwrite`` (checked before any work)."""
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise ConfigError(
            f"{out} exists and is not empty; choose a new folder or pass --overwrite",
            field="--out",
        )


def write_calibration(cal: Calibration, out: str | Path, overwrite: bool = False) -> Path:
    """Write scenario.yaml, report.md, the CSV tables, calibration.json and figures/."""
    out = Path(out)
    check_destination(out, overwrite)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
    try:
        # tmp is out's sibling, so paths relative to out resolve the same from it
        warnings_ = validate_payload(cal.scenario, tmp)
        _fill(tmp, cal, warnings_)
        _publish(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _fill(folder: Path, cal: Calibration, warnings_: list[str]) -> None:
    (folder / SCENARIO_FILE).write_text(scenario_yaml(cal.scenario), encoding="utf-8")
    (folder / "report.md").write_text(markdown(cal, warnings_), encoding="utf-8")
    for name, frame in tables(cal).items():
        frame.to_csv(folder / name, index=False)
    data = _plain(summary(cal) | {"warnings": warnings_})
    (folder / "calibration.json").write_text(
        json.dumps(data, indent=2, allow_nan=False, default=str) + "\n"
    )
    figures = folder / "figures"
    figures.mkdir()
    for name, draw in (
        ("arrival_profile.png", arrival_profile),
        ("handling_times.png", handling_times),
    ):
        draw(cal).savefig(figures / name, dpi=110)
    for p in folder.rglob("*"):
        os.chmod(p, 0o755 if p.is_dir() else 0o644)


def _plain(obj: Any) -> Any:
    """JSON-safe: non-finite floats become null, tuples lists, numpy scalars Python ones."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, str):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _publish(tmp: Path, out: Path) -> None:
    os.chmod(tmp, 0o755)
    if not out.exists():
        os.replace(tmp, out)
        return
    old = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".old"))
    os.rmdir(old)
    os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def scenario_yaml(payload: dict[str, Any]) -> str:
    """The scenario as plain YAML with a header saying where it came from."""
    header = (
        "# Written by `dispatch calibrate`; see report.md next to this file for the fits.\n"
        "# Fitted: arrival profiles, market mixes, handling times (and group speeds), patience,\n"
        "# accuracy and risk where the log has them. Edit the rest: SLAs, priorities, harm,\n"
        "# shifts, routing. Simulate on new seeds: dispatch simulate scenario.yaml --seed 1\n"
    )
    body = yaml.safe_dump(payload, sort_keys=False, default_flow_style=None, width=100)
    return header + body
