"""The fit report of a calibration: ``report.md``, fit tables as CSV, ``calibration.json``.

The report says where every number of the written scenario comes from (the source file and
its SHA-256, minute 0, the observation window), how well each fit holds (goodness-of-fit
tables and tests), and what the task log could not tell (the fields left to edit).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from dispatch.calibrate.build import Calibration
from dispatch.calibrate.handling import ALL
from dispatch.calibrate.outcomes import accuracy_frame

#: Scenario fields a task log cannot tell; the written scenario keeps their defaults.
TO_EDIT = (
    "sla, priority and holding_cost of each class (defaults: 60 min, 0, 1.0)",
    "harm severity and reach (defaults: 1), and harm.lifetime",
    "reviewer shifts and breaks (groups are always on duty unless a roster gives shifts)",
    "routing, QA sampling and escalations (follow-up tasks in the log count as arrivals)",
    "fatigue and wellbeing caps",
)


def tables(cal: Calibration) -> dict[str, pd.DataFrame]:
    """The CSV tables, by file name."""
    out = {
        "arrival_profile.csv": cal.profiles.frame(),
        "handling_fit.csv": cal.handling.frame(),
    }
    if cal.patience:
        out["patience_fit.csv"] = pd.DataFrame([vars(p) for p in cal.patience.values()])
    if cal.accuracy:
        out["accuracy_fit.csv"] = accuracy_frame(cal.accuracy, "group")
    if len(cal.reviewer_accuracy) > 1:
        out["accuracy_by_reviewer.csv"] = accuracy_frame(cal.reviewer_accuracy, "reviewer")
    return out


def summary(cal: Calibration) -> dict[str, Any]:
    """Machine-readable headline figures (``calibration.json``)."""
    obs, prof = cal.obs, cal.profiles
    return {
        "source": {
            "path": obs.source.path,
            "sha256": obs.source.sha256,
            "rows": obs.source.rows,
            "minute0": obs.minute0,
            "window": list(obs.window),
            "period": obs.period,
        },
        "criterion": cal.spec.criterion,
        "classes": {
            c: {
                "arrivals": p.total,
                "mean_rate_per_min": _num(sum(p.rates * prof.exposure) / prof.exposure.sum()),
                "market_mix": p.market_mix,
                "shape_p": _num(p.shape_p),
                "market_mix_p": _num(p.mix_p),
                "handling": _handling(cal, c),
                "patience_mean": _num(cal.patience[c].mean) if c in cal.patience else None,
            }
            for c, p in prof.classes.items()
        },
        "speeds": cal.handling.speeds,
        "notes": cal.notes,
        "import": cal.obs.report.to_dict(),
    }


def _handling(cal: Calibration, c: str) -> dict[str, Any] | None:
    fit = cal.handling.classes.get(c)
    if fit is None or fit.chosen is None:
        return None
    return {
        "family": fit.chosen.family,
        "mean": fit.chosen.mean,
        "cv": fit.chosen.cv,
        "n": fit.n,
        "reference_group": cal.handling.reference.get(c),
    }


def _num(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def _fmt(x: float, digits: int = 4) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x:.{digits}g}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def markdown(cal: Calibration, warnings_: list[str]) -> str:
    """``report.md``: sources, fits, checks, and what to edit."""
    obs = cal.obs
    lines = [
        f"# Calibration of {cal.spec.name}",
        "",
        f"Source: `{obs.source.path}`, {obs.source.rows} rows, sha256 `{obs.source.sha256}`.",
        f"{obs.minute0}; arrivals counted in [{obs.window[0]:g}, {obs.window[1]:g}) min; "
        f"{'weekly' if obs.weekly else 'daily'} profile in {cal.profiles.slot:g}-minute slots.",
        "Written: `scenario.yaml` (simulate it with `dispatch simulate scenario.yaml`).",
        "",
        *_arrival_section(cal),
        *_handling_section(cal),
        *_outcome_section(cal),
        "## To edit",
        "The task log does not say:",
        *[f"- {x}" for x in TO_EDIT],
        "",
    ]
    notes = cal.notes + warnings_
    if notes:
        lines += ["## Notes", *[f"- {n}" for n in notes], ""]
    lines += ["## Import", "```", obs.report.summary(), "```", ""]
    return "\n".join(lines)


def _arrival_section(cal: Calibration) -> list[str]:
    prof = cal.profiles
    rows = []
    for c, p in prof.classes.items():
        mean = sum(p.rates * prof.exposure) / prof.exposure.sum() if prof.exposure.sum() else 0
        peak = int(p.rates.argmax())
        rows.append(
            [
                c,
                str(p.total),
                _fmt(mean * 60),
                f"{_fmt(p.rates[peak] * 60)} at {_clock(peak * prof.slot, prof.period)}",
                f"{_fmt(p.shape_chi2)} / {p.shape_dof} / {_fmt(p.shape_p, 3)}",
                f"{_fmt(p.mix_p, 3)}" if p.mix_dof else "n/a",
            ]
        )
    head = [
        "class",
        "arrivals",
        "mean per hour",
        "peak per hour",
        "within-slot chi2 / dof / p",
        "mix constant p",
    ]
    return [
        "## Arrivals",
        "Rate per slot = arrivals in the slot / minutes of the window in the slot (Poisson "
        "maximum likelihood). *Within-slot* tests finer bins against the slot rate (small p: "
        "the rate changes inside slots, use a shorter slot). *Mix constant* tests whether the "
        "market mix changes over the period (small p: it does; the scenario's market_mix is "
        "the average).",
        "",
        *_table(head, rows),
        "",
        "Figure: `figures/arrival_profile.png`; table: `arrival_profile.csv`.",
        "",
    ]


def _clock(minute: float, period: float) -> str:
    day, rest = divmod(int(minute), 1440)
    hh, mm = divmod(rest, 60)
    prefix = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day] + " " if period > 1440 else ""
    return f"{prefix}{hh:02d}:{mm:02d}"


def _handling_section(cal: Calibration) -> list[str]:
    crit = "AIC" if cal.spec.criterion == "aic" else "KS statistic"
    rows = []
    for s in [*cal.handling.classes.values(), *cal.handling.groups]:
        by = {f.family: f for f in s.fits}
        rows.append(
            [
                s.cls,
                s.group,
                str(s.n),
                _fmt(s.mean),
                _fmt(s.cv, 3),
                _fmt(s.speed, 4),
                *[
                    f"{_fmt(by[f].aic, 6)} / {_fmt(by[f].ks, 3)}" if f in by else "n/a"
                    for f in ("exponential", "lognormal", "gamma")
                ],
                "n/a"
                if s.chosen is None
                else f"{s.chosen.family} (mean {_fmt(s.chosen.mean)}, cv {_fmt(s.chosen.cv, 3)})",
            ]
        )
    head = [
        "class",
        "group",
        "n",
        "mean",
        "cv",
        "speed",
        "exponential AIC / KS",
        "lognormal AIC / KS",
        "gamma AIC / KS",
        "chosen",
    ]
    return [
        "## Handling times",
        f"Families fitted by maximum likelihood; chosen by the lowest {crit}. Rows with group "
        f"`{ALL}` pool every group's times scaled by the group's speed (the reference group "
        f"of a class has speed 1): they give the scenario's class distribution.",
        "",
        *_table(head, rows),
        "",
        "Figure: `figures/handling_times.png`; table: `handling_fit.csv`.",
        "",
    ]


def _outcome_section(cal: Calibration) -> list[str]:
    lines = []
    if cal.patience:
        rows = [
            [p.cls, str(p.tasks), str(p.expired), _fmt(p.mean), f"{_fmt(p.low)} to {_fmt(p.high)}"]
            for p in cal.patience.values()
        ]
        lines += [
            "## Patience",
            "Exponential patience, censored maximum likelihood: total time at risk / expiries.",
            "",
            *_table(["class", "tasks", "expired", "mean (min)", "95% interval"], rows),
            "",
        ]
    if cal.accuracy:
        rows = []
        for f in cal.accuracy:
            s_lo, s_hi = f.sensitivity.interval
            p_lo, p_hi = f.specificity.interval
            rows.append(
                [
                    f.group,
                    f.cls,
                    f"{_fmt(f.sensitivity.estimate, 3)} ({_fmt(s_lo, 3)}-{_fmt(s_hi, 3)}, n {f.sensitivity.n})",
                    f"{_fmt(f.specificity.estimate, 3)} ({_fmt(p_lo, 3)}-{_fmt(p_hi, 3)}, n {f.specificity.n})",
                ]
            )
        lines += [
            "## Accuracy",
            "From tasks with a known truth; Jeffreys estimates with 95% intervals.",
            "",
            *_table(["group", "class", "sensitivity", "specificity"], rows),
            "",
        ]
    return lines
