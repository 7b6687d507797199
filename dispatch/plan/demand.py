"""Demand per planning interval x class x market (step 1 of the plan).

Demand is the arrival rate (tasks per minute) averaged over each interval, split over markets
by the class's ``market_mix``. It comes from the same place the simulator takes arrivals:

* ``profile`` and ``poisson`` classes: the rate function (bursts included) of the horizon's
  scenario (:mod:`dispatch.plan.horizon` has already applied day factors), averaged minute by
  minute over the interval (exact for profiles on a minute grid);
* ``replay`` classes: the imported task log's arrivals counted per interval;
* classes fed only by routing (QA re-reviews, appeals, escalations): the expected rate of the
  follow-ups their sources generate, shifted by the mean routing delay. The chance that a
  decision triggers a rule (a positive, a false positive, ...) uses the class's mean risk and
  the mean accuracy of the groups eligible for the source class. It is an estimate; the
  simulation-based correction measures what really arrives.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dispatch.arrivals import rate_function
from dispatch.plan.config import DAY
from dispatch.scenario import (
    NoArrivals,
    PoissonArrivals,
    ProfileArrivals,
    ReplayArrivals,
    Scenario,
)


@dataclass
class Demand:
    """Arrival rates ``rate[i, k, m]`` per minute in interval ``i`` for class ``k``, market
    ``m``, and the per-class facts the staffing formulas need."""

    interval: int
    days: int
    classes: list[str]
    markets: list[str]
    rate: np.ndarray
    mean_handling: np.ndarray
    patience_mean: np.ndarray  # NaN: the class never expires
    sla: np.ndarray
    severe_share: np.ndarray
    source: dict[str, str]

    @property
    def n_intervals(self) -> int:
        return self.rate.shape[0]

    def label(self, i: int) -> str:
        """'Tue 10:00-10:30' (a week) or '10:00-10:30' (a day)."""
        return interval_label(i, self.interval, self.days)

    def frame(self):
        import pandas as pd

        i, k, m = np.nonzero(self.rate >= 0)
        return pd.DataFrame(
            {
                "interval": i,
                "label": [self.label(x) for x in i],
                "class": [self.classes[x] for x in k],
                "market": [self.markets[x] for x in m],
                "rate_per_min": self.rate[i, k, m],
                "load": self.rate[i, k, m] * self.mean_handling[k],
            }
        )


DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def interval_label(i: int, interval: int, days: int) -> str:
    t0 = i * interval
    d, m0 = divmod(t0, DAY)
    m1 = m0 + interval
    text = f"{m0 // 60:02d}:{m0 % 60:02d}-{m1 // 60:02d}:{m1 % 60:02d}"
    return f"{DAYS[d % 7]} {text}" if days > 1 else text


def build_demand(scen: Scenario, interval: int, days: int, imported=None) -> Demand:
    """Demand of the horizon scenario (built with ``lead_days=0``) on the plan's intervals.

    ``imported`` is the :class:`~dispatch.importers.records.ImportedData` of scenarios that
    replay a task log (from :func:`dispatch.importers.resolve.resolve_data`).
    """
    n_int = days * DAY // interval
    names = [c.name for c in scen.classes]
    markets = list(scen.markets)
    rate = np.zeros((n_int, len(names), len(markets)))
    source: dict[str, str] = {}
    for k, c in enumerate(scen.classes):
        mix = _market_mix(c.market_mix, markets)
        a = c.arrivals
        if isinstance(a, PoissonArrivals | ProfileArrivals):
            per = _interval_means(rate_function(a), n_int, interval)
            source[c.name] = a.kind
        elif isinstance(a, ReplayArrivals):
            times = np.asarray(imported.replay_times(a.log, c.name) if imported else [])
            counts = np.bincount((times // interval).astype(int), minlength=n_int)[:n_int]
            per = counts / interval
            source[c.name] = "replay"
        else:
            per = np.zeros(n_int)
            source[c.name] = "routing" if isinstance(a, NoArrivals) else a.kind
        rate[:, k, :] = per[:, None] * mix[None, :]
    _add_routed(scen, rate, interval)
    return Demand(
        interval=interval,
        days=days,
        classes=names,
        markets=markets,
        rate=rate,
        mean_handling=np.array([c.handling.expected for c in scen.classes]),
        patience_mean=np.array(
            [c.patience.expected if c.patience is not None else np.nan for c in scen.classes]
        ),
        sla=np.array([c.sla for c in scen.classes]),
        severe_share=np.array([severe_share(c) for c in scen.classes]),
        source=source,
    )


def _market_mix(mix: dict[str, float] | None, markets: list[str]) -> np.ndarray:
    if mix is None:
        return np.full(len(markets), 1.0 / len(markets))
    return np.array([mix.get(m, 0.0) for m in markets])


def _interval_means(rate, n_int: int, interval: int) -> np.ndarray:
    minutes = np.arange(n_int * interval) + 0.5
    r = np.fromiter((rate(t) for t in minutes), dtype=float, count=minutes.size)
    return r.reshape(n_int, interval).mean(axis=1)


def _mean_risk(c) -> float:
    return c.harm.risk.expected if c.harm.risk is not None else c.harm.prevalence


def severe_share(c) -> float:
    """Share of a class's tasks that count against wellbeing caps (risk >= threshold)."""
    thr = c.severe_risk_threshold
    if thr is None:
        return 0.0
    if thr <= 0 or c.harm.risk is None:
        return 1.0 if thr <= 0 or c.harm.prevalence >= thr else 0.0
    draws = c.harm.risk.sample(np.random.default_rng(20081), 20_000)
    return float(np.mean(draws >= thr))


def _trigger_prob(scen: Scenario, src: int, when: str) -> float:
    c = scen.classes[src]
    risk = _mean_risk(c)
    groups = [g for g in scen.reviewers if c.name in g.classes] or scen.reviewers
    sens = spec = 0.0
    for g in groups:
        acc = g.accuracy.get(c.name, g.default_accuracy)
        sens += acc.sensitivity / len(groups)
        spec += acc.specificity / len(groups)
    return {
        "any": 1.0,
        "positive": risk * sens + (1 - risk) * (1 - spec),
        "negative": risk * (1 - sens) + (1 - risk) * spec,
        "false_positive": (1 - risk) * (1 - spec),
        "true_positive": risk * sens,
    }[when]


def _add_routed(scen: Scenario, rate: np.ndarray, interval: int) -> None:
    """Add follow-up arrivals (QA samples, appeals, escalations), in place.

    Follow-ups of follow-ups (a report escalated to merchant risk, then appealed) settle in a
    few fixed-point passes; the delay shift wraps around (the day or week repeats).
    """
    rules = scen.all_routing()
    idx = {c.name: k for k, c in enumerate(scen.classes)}
    external = rate.copy()
    total = rate.copy()
    for _ in range(6):
        routed = np.zeros_like(rate)
        for r in rules:
            s, t = idx[r.source], idx[r.target]
            p = r.prob * _trigger_prob(scen, s, r.when)
            lag = int(round((r.delay.expected if r.delay is not None else 0.0) / interval))
            routed[:, t, :] += p * np.roll(total[:, s, :], lag, axis=0)
        new = external + routed
        done = np.allclose(new, total, rtol=1e-9, atol=1e-12)
        total = new
        if done:
            break
    rate[:] = total
