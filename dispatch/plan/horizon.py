"""The planning horizon as a scenario: a day, or a week of daily profiles with day factors.

The plan is evaluated by simulating the scenario it names over the plan's horizon. A week
is expressed with the existing schema: every class's daily profile becomes one week-long
``profile`` (7 x the daily slots, each day scaled by its day factor or replaced by its own
daily profile), Poisson classes become a profile with one slot per day, and bursts (a flash
sale at 19:00) recur every day. Nothing new is needed in the scenario format.

``lead_days`` simulated days come before the measured horizon (the scenario's ``warmup``
covers them), so the first measured interval starts from a loaded system, as it does in
operation: for a day plan the day before is the same day; for a week it is weekday 6 (the
week repeats). Sim day ``d`` is weekday ``(d - lead_days) % 7``.
"""

from __future__ import annotations

import copy
from typing import Any

from dispatch.errors import ConfigError
from dispatch.plan.config import DAY, PlanConfig


def weekday_of(sim_day: int, lead_days: int) -> int:
    return (sim_day - lead_days) % 7


def expand_scenario(raw: dict[str, Any], cfg: PlanConfig, lead_days: int) -> dict[str, Any]:
    """A raw scenario mapping covering ``lead_days`` + the plan's days, warm-up = lead days."""
    out = copy.deepcopy(raw)
    n_days = lead_days + cfg.horizon.days
    out["horizon"] = float(n_days * DAY)
    out["warmup"] = float(lead_days * DAY)
    for c in out.get("classes", []):
        arr = c.get("arrivals") or {"kind": "none"}
        kind = arr.get("kind", "none")
        if kind in ("profile", "poisson"):
            c["arrivals"] = _expand_arrivals(arr, c["name"], cfg, n_days, lead_days)
    return out


def _factors(cfg: PlanConfig, n_days: int, lead_days: int) -> list[float]:
    f = cfg.horizon.day_factors or [1.0] * 7
    return [f[weekday_of(d, lead_days)] for d in range(n_days)]


def _expand_arrivals(
    arr: dict[str, Any], name: str, cfg: PlanConfig, n_days: int, lead_days: int
) -> dict[str, Any]:
    factors = _factors(cfg, n_days, lead_days)
    bursts = _daily_bursts(arr.get("bursts") or [], n_days, name)
    if arr.get("kind") == "poisson":
        rate = float(arr["rate"])
        if all(f == 1.0 for f in factors) and name not in cfg.horizon.daily_profiles:
            return {"kind": "poisson", "rate": rate, "bursts": bursts}
        daily = cfg.horizon.daily_profiles.get(name)
        rates = [
            (sum(daily[weekday_of(d, lead_days)]) / len(daily[0]) if daily else rate) * factors[d]
            for d in range(n_days)
        ]
        return {"kind": "profile", "slot": float(DAY), "rates": rates, "bursts": bursts}
    slot = float(arr.get("slot", 60.0))
    rates = [float(r) for r in arr["rates"]]
    if abs(slot * len(rates) - DAY) > 1e-9:
        if cfg.horizon.days == 7 or name in cfg.horizon.daily_profiles:
            raise ConfigError(
                f"class {name}: its profile spans {slot * len(rates):g} minutes, not a day; "
                "a week plan needs daily profiles (slot x number of rates = 1440)",
                field="horizon",
            )
        return {"kind": "profile", "slot": slot, "rates": rates, "bursts": bursts}
    daily = cfg.horizon.daily_profiles.get(name)
    if daily is not None and any(len(p) != len(rates) for p in daily):
        raise ConfigError(
            f"each daily profile of {name} needs {len(rates)} rates (one per {slot:g}-minute slot)",
            field=f"horizon.daily_profiles.{name}",
        )
    week: list[float] = []
    for d in range(n_days):
        base = daily[weekday_of(d, lead_days)] if daily is not None else rates
        week += [r * factors[d] for r in base]
    return {"kind": "profile", "slot": slot, "rates": week, "bursts": bursts}


def _daily_bursts(bursts: list[dict[str, Any]], n_days: int, name: str) -> list[dict[str, Any]]:
    out = []
    for b in bursts:
        start, end = float(b["start"]), float(b["end"])
        if start >= DAY:
            raise ConfigError(
                f"class {name}: a burst starting at minute {start:g} is past the first day; "
                "a plan repeats the day's bursts every day, so give bursts within the day",
                field=f"classes.{name}.arrivals.bursts",
            )
        for d in range(n_days):
            out.append({**b, "start": start + d * DAY, "end": end + d * DAY})
    return out
