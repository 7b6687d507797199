"""Reviewers coming on and going off duty, from their groups' daily shifts and breaks.

A reviewer busy when its group goes off duty finishes its review and then leaves
(``leaving``); one coming on duty while still finishing stays. A group without shifts is
always on duty.
"""

from __future__ import annotations

from dispatch.schedule import duty_intervals


class Shifts:
    """Shift changes (mixin of :class:`~dispatch.simulator.Simulation`)."""

    def _start_shifts(self) -> None:
        for g in self.groups:
            if not g.spec.shifts:
                for r in g.members:
                    r.in_idle = True
                    g.idle.append(r)
                continue
            intervals = duty_intervals(g.spec.shifts, self.horizon)
            on_now = any(a <= 0.0 < b for a, b in intervals)
            g.on_duty = on_now
            for r in g.members:
                r.on_duty = on_now
                if on_now:
                    r.in_idle = True
                    g.idle.append(r)
            for a, b in intervals:
                if a > 0.0:
                    self._at(a, self._on_duty_event, (g, True))
                if b < self.horizon:
                    self._at(b, self._on_duty_event, (g, False))

    def _on_duty_event(self, ev) -> None:
        g, on = ev._value
        now = self.env._now
        if on == g.on_duty:
            return
        g.on_duty = on
        self.collector.on_duty_change(g, on, now)
        if not on:
            for r in g.members:
                if r.busy:
                    r.leaving = True
                else:
                    r.on_duty = False
                r.in_idle = False
            g.idle.clear()
            return
        for r in g.members:
            if r.busy:
                r.leaving = False
                r.on_duty = True
                continue
            r.on_duty = True
            if g.fatigue is not None:
                r.fatigue = r.current_fatigue(now)
                r.fatigue_t = now
            r.in_idle = True
            g.idle.append(r)
        if not self._batch:
            self._offer_free(g, now)

    def _offer_free(self, g, now: float) -> None:
        """Pull policies: the reviewers who just came on duty look for work."""
        for r in list(g.idle):
            if r.in_idle and self.candidates(r, now):
                g.idle.remove(r)
                r.in_idle = False
                if not self._pull(r, now):
                    g.idle.append(r)
                    r.in_idle = True
