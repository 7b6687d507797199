"""A solved roster as scenario reviewer groups, and ``roster.yaml`` files read back.

People of one pool who work the same shift (start, length, days, break times) form one
scenario group named ``<pool>@<start>-<length>`` (``us_day@0600-8h``; a week adds the days,
``us_day@0600-8h-d01234``; break variants add ``.v2``...). Every group keeps its pool's
qualifications, accuracy, speed and fatigue, so a ``roster.yaml`` ``reviewers:`` section
drops into any scenario with the same classes and markets, and people of a pool on staggered
breaks are separate groups whose breaks really are staggered in simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dispatch.errors import ConfigError
from dispatch.plan.config import DAY
from dispatch.plan.roster import Person
from dispatch.scenario import ReviewerGroup, format_validation_error, read_yaml


def roster_groups(
    people: list[Person],
    pool_specs: list[ReviewerGroup],
    *,
    week: bool,
    day_offset: int = 0,
    wellbeing_cap: int | None = None,
) -> list[dict[str, Any]]:
    """Scenario ``reviewers:`` entries for the rostered people.

    ``day_offset`` shifts weekdays for a simulation that starts ``day_offset`` days before
    the plan's first day (sim day ``d`` is plan weekday ``(d - day_offset) % 7``).
    """
    groups: dict[tuple, list[Person]] = {}
    for p in people:
        key = (p.pool, p.template.start, p.template.length, p.days)
        groups.setdefault(key, []).append(p)
    out: list[dict[str, Any]] = []
    for (pool, start, length, days), members in sorted(groups.items(), key=lambda kv: kv[0]):
        variants: dict[tuple, int] = {}
        for p in members:
            sig = tuple(p.break_offsets[d] for d in days)
            variants[sig] = variants.get(sig, 0) + 1
        base = _base_name(pool_specs[pool].name, start, length, days if week else None)
        for v, (sig, count) in enumerate(sorted(variants.items())):
            spec = pool_specs[pool].model_dump(mode="json", exclude_none=True)
            spec["name"] = base if v == 0 else f"{base}.v{v + 1}"
            spec["count"] = count
            spec["shifts"] = [
                _shift(start, length, members[0].template.durations, offs, d, week, day_offset)
                for d, offs in zip(days, sig, strict=True)
            ]
            if not week:
                spec["shifts"] = spec["shifts"][:1]
            if wellbeing_cap is not None and spec.get("wellbeing_cap") is not None:
                spec["wellbeing_cap"] = wellbeing_cap
            out.append(spec)
    return out


def _base_name(pool: str, start: int, length: int, days: tuple[int, ...] | None) -> str:
    hours = f"{length / 60:g}".replace(".", "_")
    name = f"{pool}@{start // 60:02d}{start % 60:02d}-{hours}h"
    return name + (f"-d{''.join(str(d) for d in days)}" if days is not None else "")


def _shift(
    start: int,
    length: int,
    durations: tuple[int, ...],
    offsets: tuple[int, ...],
    day: int,
    week: bool,
    day_offset: int,
) -> dict[str, Any]:
    end = start + length
    end = DAY if end == DAY else end % DAY if end > DAY else end
    shift: dict[str, Any] = {
        "start": float(start),
        "end": float(end),
        "breaks": [
            {"start": float((start + off) % DAY), "duration": float(dur)}
            for off, dur in zip(offsets, durations, strict=True)
        ],
    }
    if week:
        shift["days"] = [(day + day_offset) % 7]
    return shift


def roster_yaml(groups: list[dict[str, Any]], header: str) -> str:
    body = yaml.safe_dump({"reviewers": groups}, sort_keys=False, width=100)
    lines = "".join(f"# {line}\n" for line in header.splitlines())
    return lines + body


def read_roster(path: str | Path, base: Path | None = None) -> list[dict[str, Any]]:
    """The ``reviewers:`` of a roster file (or of the ``roster.yaml`` in a plan folder),
    each validated as a reviewer group."""
    from dispatch.io import find_file

    found = find_file(str(path), base)
    if found is None:
        raise ConfigError(f"roster '{path}' not found; give a roster.yaml or a plan folder")
    if found.is_dir():
        found = found / "roster.yaml"
    data = read_yaml(found)
    groups = data.get("reviewers")
    if not isinstance(groups, list) or not groups:
        raise ConfigError("expected a non-empty 'reviewers:' list", source=str(found))
    for i, g in enumerate(groups):
        try:
            ReviewerGroup.model_validate(g)
        except ValidationError as err:
            exc = format_validation_error(err, str(found))
            raise ConfigError(
                str(exc).split(": ", 2)[-1], source=str(found), field=f"reviewers.{i}.{exc.field}"
            ) from None
    return groups
