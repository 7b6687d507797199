"""Shift calendars: turn daily shifts with breaks into on-duty intervals over a horizon."""

from __future__ import annotations

from dispatch.scenario import Shift

DAY = 1440.0


def duty_intervals(shifts: list[Shift], horizon: float) -> list[tuple[float, float]]:
    """Sorted, merged [start, end) minutes on duty within [0, horizon), breaks removed.

    Shifts repeat daily (on their ``days`` of the week only, when given; day ``d`` of the
    horizon is weekday ``d % 7``, and day -1, whose night shift may run into the horizon, is
    weekday 6); a shift whose end is before its start runs past midnight.
    """
    raw: list[tuple[float, float]] = []
    days = int(horizon // DAY) + 2
    for d in range(-1, days):
        base = d * DAY
        for s in shifts:
            if s.days is not None and d % 7 not in s.days:
                continue
            start = base + s.start
            end = base + (s.end if s.end > s.start else s.end + DAY)
            pieces = [(start, end)]
            for br in s.breaks:
                b0 = base + br.start if br.start >= s.start else base + br.start + DAY
                b1 = b0 + br.duration
                nxt = []
                for a, b in pieces:
                    if b0 >= b or b1 <= a:
                        nxt.append((a, b))
                    else:
                        if a < b0:
                            nxt.append((a, b0))
                        if b1 < b:
                            nxt.append((b1, b))
                pieces = nxt
            raw.extend(pieces)
    raw = [(max(0.0, a), min(horizon, b)) for a, b in raw if b > 0 and a < horizon]
    raw.sort()
    merged: list[tuple[float, float]] = []
    for a, b in raw:
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        elif b > a:
            merged.append((a, b))
    return merged


def duty_minutes(shifts: list[Shift], start: float, end: float, horizon: float) -> float:
    """Minutes on duty within [start, end)."""
    if not shifts:
        return max(0.0, end - start)
    total = 0.0
    for a, b in duty_intervals(shifts, horizon):
        total += max(0.0, min(b, end) - max(a, start))
    return total
