"""The guard price: the option value of perishable work, charged per reviewer-minute.

A one-epoch matching cannot see the live streams that will arrive while a live-capable
reviewer is busy on a short video; without a price on that reviewer's time it spends
specialists on work generalists could do, then lets streams expire in the evening peak.
The price (the ``guard`` term of :mod:`dispatch.policies.batch.value`)::

    price(g, c) = guard x A(g, c) x sum over guarded classes c' != c that g serves of
                  V(g, c') x arrivals of c' per minute in g's markets x busy share of c''s pool

``V(g, c')`` is the value model on a class-average task of ``c'`` (fresh, not per minute),
``A(g, c)`` the share of the on-duty reviewers eligible for ``c`` outside ``g`` (work only
``g`` can do is not penalised). Everything static is computed once per run from the
:class:`~dispatch.layout.Layout`; the price itself once per simulated instant.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from dispatch.arrivals import rate_function
from dispatch.errors import ConfigError
from dispatch.policies.batch.params import ValueModel
from dispatch.policies.batch.value import task_value
from dispatch.scenario import PoissonArrivals, ProfileArrivals

if TYPE_CHECKING:
    from dispatch.layout import Layout
    from dispatch.simulator import Simulation

__all__ = ["GuardPrice"]


class GuardPrice:
    """``(G, C)`` guard price per reviewer-minute of a run (see the module docstring)."""

    def __init__(self, layout: Layout, value: ValueModel):
        self.layout = layout
        self.value = value
        sc = layout.scenario
        names = list(layout.class_names)
        if value.guard_classes is not None:
            bad = set(value.guard_classes) - set(names)
            if bad:
                raise ConfigError(f"unknown classes {sorted(bad)}", field="guard_classes")
            guarded = sorted(names.index(c) for c in value.guard_classes)
        else:
            guarded = [i for i, c in enumerate(sc.classes) if c.patience is not None]
        self._rates = {}
        for ci in guarded:
            arr = sc.classes[ci].arrivals
            if isinstance(arr, PoissonArrivals | ProfileArrivals):
                self._rates[ci] = rate_function(arr)
        self.guarded = (
            np.array(sorted(self._rates), dtype=np.int64)
            if value.guard > 0
            else np.zeros(0, np.int64)
        )
        n_groups, n_cls = layout.speed.shape
        self._price_t = math.nan
        self._price = np.zeros((n_groups, n_cls))
        if self.guarded.size:
            self._share = self._arrival_share()
            self._typical = self._typical_values()

    def _arrival_share(self) -> np.ndarray:
        """``(G, C)``: share of class c's arrivals in group g's markets (guarded classes)."""
        lay = self.layout
        n_groups, n_cls = lay.speed.shape
        n_mk = len(lay.market_names)
        covers = np.zeros((n_groups, n_mk), dtype=bool)
        for gi in range(n_groups):
            covers[gi, lay.b_market[lay.group_mask[gi]]] = True
        share = np.zeros((n_groups, n_cls))
        for ci in self.guarded:
            c = lay.scenario.classes[ci]
            if c.market_mix:
                mix = np.zeros(n_mk)
                for m, x in c.market_mix.items():
                    mix[lay.market_index[m]] = x
                mix /= mix.sum()
            else:
                mix = np.full(n_mk, 1.0 / n_mk)
            share[:, ci] = covers @ mix
        return share

    def _typical_values(self) -> np.ndarray:
        """``(G, C)``: V(g, c), the value model on a class-average task, fresh, not per minute."""
        lay = self.layout
        flat = self.value.model_copy(update={"per_minute": False})
        typical = np.zeros(lay.speed.shape)
        for ci in self.guarded:
            c = lay.scenario.classes[ci]
            h = c.harm
            risk = h.risk.expected if h.risk is not None else h.prevalence
            patience = c.patience.expected if c.patience is not None else math.inf
            life = h.lifetime if h.lifetime is not None else patience
            for gi in range(lay.speed.shape[0]):
                if lay.speed[gi, ci] <= 0:
                    continue
                v = task_value(
                    now=0.0,
                    risk=risk,
                    harm_rate=h.severity.expected * h.reach.expected,
                    end_of_life=life,
                    deadline=c.sla,
                    expires_at=patience,
                    sla=c.sla,
                    handling=lay.mean_work[ci] / lay.speed[gi, ci],
                    sensitivity=lay.sensitivity[gi, ci],
                    specificity=lay.specificity[gi, ci],
                    params=flat,
                )
                typical[gi, ci] = max(v, 0.0)
        return typical

    def __call__(self, sim: Simulation, now: float) -> np.ndarray:
        """The price now. Recomputed once per instant: on-duty and free counts per group."""
        if now == self._price_t:
            return self._price
        self._price_t = now
        groups = sim.groups
        lay = self.layout
        # On duty, a reviewer is either busy or free.
        on = np.array(
            [g.headcount if sg.on_duty else 0 for g, sg in zip(lay.groups, groups, strict=True)],
            dtype=float,
        )
        free = np.array([sim.free_count(g) for g in groups], dtype=float)
        busy = np.maximum(on - free, 0.0)
        elig = lay.speed > 0
        pool = on @ elig  # (C,) on-duty reviewers eligible per class
        busy_share = np.divide(busy @ elig, pool, out=np.zeros_like(pool), where=pool > 0)
        # A(g, c): share of c's on-duty pool outside g.
        outside = np.divide(
            pool[None, :] - on[:, None] * elig,
            pool[None, :],
            out=np.zeros_like(self._price),
            where=pool[None, :] > 0,
        )
        price = np.zeros_like(self._price)
        for ci in self.guarded:
            lam = self._rates[ci](now)
            per_group = self._typical[:, ci] * self._share[:, ci] * lam * busy_share[ci]
            term = np.repeat(per_group[:, None], price.shape[1], axis=1)
            term[:, ci] = 0.0  # guarded work itself is not charged for its own class
            price += term
        self._price = self.value.guard * outside * price
        return self._price
