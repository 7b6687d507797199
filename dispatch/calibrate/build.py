"""From fits to a plain scenario: the classes, reviewers and markets a user can edit.

What a task log can tell is written from the fits (arrival profiles, market mixes, handling
distributions and group speeds, patience, accuracy, risk); what it cannot tell (SLAs,
priorities, holding costs, severity and reach, shifts, routing) keeps the scenario defaults
and is listed in the report as "to edit". Every number is written with six significant
digits, so the YAML reads cleanly and reloads to the same scenario.
"""

from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dispatch.calibrate.arrivals import ProfileFit, fit_profiles
from dispatch.calibrate.handling import ALL, HandlingFit, _sig, fit_handling
from dispatch.calibrate.load import Observations, load_observations
from dispatch.calibrate.outcomes import (
    AccuracyFit,
    PatienceFit,
    fit_accuracy,
    fit_patience,
    fit_risk,
    peak_in_service,
    prevalence,
)
from dispatch.calibrate.spec import CalibrationSpec
from dispatch.importers.names import safe_name

_GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-\.]*$")  # as ReviewerGroup.name


@dataclass
class Calibration:
    """Everything fitted from one task log, and the scenario written from it."""

    spec: CalibrationSpec
    obs: Observations
    profiles: ProfileFit
    handling: HandlingFit
    patience: dict[str, PatienceFit]
    accuracy: list[AccuracyFit]
    reviewer_accuracy: list[AccuracyFit]
    risk: dict[str, dict[str, float]]
    prevalence: dict[str, float]
    scenario: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def calibrate(spec: CalibrationSpec, out_dir: Path | None = None) -> Calibration:
    """Fit ``spec``'s task log and build the scenario (``out_dir``: where it will live, for
    the roster's relative path)."""
    obs = load_observations(spec)
    frame = obs.frame
    cal = Calibration(
        spec=spec,
        obs=obs,
        profiles=fit_profiles(obs, spec.slot),
        handling=fit_handling(frame, obs.classes, spec.criterion, spec.min_samples),
        patience=fit_patience(frame, obs.classes),
        accuracy=fit_accuracy(frame, "group", spec.min_samples),
        reviewer_accuracy=fit_accuracy(frame, "reviewer", spec.min_samples),
        risk=fit_risk(frame, obs.classes),
        prevalence=prevalence(frame, obs.classes),
    )
    cal.notes += cal.profiles.notes + cal.handling.notes
    cal.scenario = scenario_payload(cal, out_dir)
    return cal


def scenario_payload(cal: Calibration, out_dir: Path | None) -> dict[str, Any]:
    spec, obs = cal.spec, cal.obs
    sha = obs.source.sha256 or ""
    payload: dict[str, Any] = {
        "name": spec.name,
        "description": (
            f"Calibrated by dispatch calibrate from {Path(spec.task_log.path).name} "
            f"(sha256 {sha[:16]}...): arrival profiles, handling times, "
            + ("patience, " if cal.patience else "")
            + ("accuracy, " if cal.accuracy else "")
            + "fitted; SLAs, priorities, harm severity and reach, shifts and routing are "
            "defaults to edit (see report.md)."
        ),
        "horizon": float(spec.horizon or obs.period),
        "markets": obs.markets or ["all"],
        "sample_interval": 15.0,
        "classes": [_class_dict(cal, c) for c in obs.classes],
    }
    if spec.roster is not None:
        payload["reviewers"] = []
        payload["data"] = {"rosters": [_roster_dict(spec, out_dir)]}
    else:
        payload["reviewers"] = _groups(cal)
    return payload


def _class_dict(cal: Calibration, c: str) -> dict[str, Any]:
    prof = cal.profiles.classes[c]
    out: dict[str, Any] = {
        "name": c,
        "arrivals": {
            "kind": "profile",
            "slot": float(cal.profiles.slot),
            "rates": [_sig(r) for r in prof.rates],
        },
    }
    fit = cal.handling.classes.get(c)
    if fit is not None and fit.chosen is not None:
        out["handling"] = fit.chosen.scenario_dict()
    else:
        known = [f.mean for f in cal.handling.classes.values() if f.chosen is not None]
        mean = _sig(sum(known) / len(known)) if known else 1.0
        out["handling"] = {"kind": "exponential", "mean": mean}
        cal.notes.append(f"class {c}: handling time is a placeholder (exponential, mean {mean:g})")
    pat = cal.patience.get(c)
    if pat is not None:
        out["patience"] = {"kind": "exponential", "mean": _sig(pat.mean)}
    if cal.obs.markets and len(cal.obs.markets) > 1 and prof.market_mix:
        out["market_mix"] = _shares(prof.market_mix)
    harm: dict[str, Any] = {}
    if c in cal.risk:
        harm["risk"] = {"kind": "beta", "a": _sig(cal.risk[c]["a"]), "b": _sig(cal.risk[c]["b"])}
    elif c in cal.prevalence:
        harm["prevalence"] = _sig(cal.prevalence[c])
    if harm:
        out["harm"] = harm
    return out


def _shares(mix: dict[str, float]) -> dict[str, float]:
    """Shares rounded to 6 decimals that still sum to 1 (the largest absorbs the rest)."""
    out = {m: round(v, 6) for m, v in mix.items() if round(v, 6) > 0}
    top = max(out, key=lambda m: out[m])
    out[top] = round(out[top] + 1.0 - sum(out.values()), 6)
    return out


def _groups(cal: Calibration) -> list[dict[str, Any]]:
    """Reviewer groups from the log's group column (one group 'reviewers' without one)."""
    frame = cal.obs.frame
    done = frame[~frame["expired"] & (frame["start"].notna() | frame["handling"].notna())]
    has_groups = frame["group"].notna().any()
    keys = sorted(done["group"].dropna().unique().tolist()) if has_groups else [None]
    taken: set[str] = set()
    out = []
    for g in keys:
        rows = done if g is None else done[done["group"] == g]
        all_rows = frame if g is None else frame[frame["group"] == g]
        name = _group_name("reviewers" if g is None else str(g), taken)
        group: dict[str, Any] = {
            "name": name,
            "count": _headcount(cal, all_rows, name),
            "classes": [c for c in cal.obs.classes if (rows["cls"] == c).any()],
            "markets": _group_markets(cal, rows),
        }
        speeds = {
            c: _sig(s)
            for c, s in cal.handling.speeds.get(str(g), {}).items()
            if abs(s - 1.0) > 1e-9
        }
        if speeds:
            group["speed"] = speeds
        group.update(_group_accuracy(cal, ALL if g is None else str(g)))
        out.append(group)
    handled = {c for g in out for c in g["classes"]}
    for c in cal.obs.classes:
        if c not in handled:
            cal.notes.append(f"class {c}: no reviewer handled it in the log; no group is eligible")
    return [g for g in out if g["classes"]]


def _group_name(label: str, taken: set[str]) -> str:
    base = label if _GROUP_NAME.match(label) else (safe_name(label) or "group")
    if not _GROUP_NAME.match(base):
        base = f"group_{base}"
    name, k = base, 2
    while name in taken:
        name, k = f"{base}_{k}", k + 1
    taken.add(name)
    return name


def _headcount(cal: Calibration, rows, name: str) -> int:
    ids = rows["reviewer"].dropna()
    if len(ids):
        return int(ids.nunique())
    peak = peak_in_service(rows)
    if peak:
        cal.notes.append(
            f"group {name}: no reviewer ids; count = {peak}, the most tasks in review at once "
            f"(a lower bound)"
        )
        return peak
    cal.notes.append(f"group {name}: no reviewer ids and no review times; count set to 1")
    return 1


def _group_markets(cal: Calibration, rows) -> list[str] | str:
    markets = cal.obs.markets
    if not markets:
        return "all"
    seen = set(rows["market"].dropna())
    return "all" if seen >= set(markets) or not seen else [m for m in markets if m in seen]


def _group_accuracy(cal: Calibration, group: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in cal.accuracy:
        if f.group != group or not (f.sensitivity.n and f.specificity.n):
            continue
        acc = {
            "sensitivity": round(f.sensitivity.estimate, 4),
            "specificity": round(f.specificity.estimate, 4),
        }
        if f.cls == ALL:
            out["default_accuracy"] = acc
        else:
            out.setdefault("accuracy", {})[f.cls] = acc
    return out


def _roster_dict(spec: CalibrationSpec, out_dir: Path | None) -> dict[str, Any]:
    """The roster entry, its path relative to the folder the scenario is written to."""
    roster = spec.roster.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    path = spec.resolve_path(spec.roster.path).resolve()
    roster["path"] = os.path.relpath(path, out_dir.resolve()) if out_dir else str(path)
    return roster


def validate_payload(payload: dict[str, Any], out_dir: Path) -> list[str]:
    """Load the written scenario as ``dispatch simulate`` would (and import its roster);
    returns the warnings it raised (e.g. offered load above capacity)."""
    from dispatch.importers import resolve_data
    from dispatch.scenario import scenario_from_dict

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        scen = scenario_from_dict(dict(payload), source="scenario.yaml", base_dir=str(out_dir))
        if scen.data.rosters:
            resolve_data(scen)
    return [str(w.message) for w in caught]
