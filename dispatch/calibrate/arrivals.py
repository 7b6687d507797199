"""Arrival profiles: the rate of each class by time of day (and day of week).

Arrivals of a class in slot ``k`` of the period (a day, or a week) are counted over the
observation window, and the rate is the count divided by the *exposure*: the minutes of the
window that fall in slot ``k`` (a log from 06:00 on Monday to 18:00 on Wednesday sees the
06:00 slot three times and the 20:00 slot twice). That is the maximum-likelihood rate of a
Poisson process that is piecewise constant over the slots and repeats every period. A slot
the window never covers has no estimate; it gets the class's mean rate and a note.

Two checks go with the fit:

* **Within-slot shape**: counts in finer bins (a quarter of a slot, at least 5 minutes) are
  compared with the fitted rate by a Pearson chi-square test. A small p-value says the rate
  changes within slots: use a shorter slot.
* **Market mix over the day**: the scenario format has one profile per class and a constant
  market mix; a chi-square test of independence between slot and market says whether the
  mix really is constant (a small p-value: it is not, and the scenario averages it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from dispatch.calibrate.load import Observations


@dataclass
class ClassProfile:
    """The fitted profile of one class (rates per minute, one per slot)."""

    cls: str
    rates: np.ndarray
    counts: np.ndarray
    by_market: dict[str, np.ndarray]  # counts per slot per market
    market_mix: dict[str, float]
    shape_chi2: float
    shape_dof: int
    shape_p: float
    mix_chi2: float = math.nan
    mix_dof: int = 0
    mix_p: float = math.nan

    @property
    def total(self) -> int:
        return int(self.counts.sum())


@dataclass
class ProfileFit:
    """Profiles of every class over one period."""

    slot: float
    period: float
    window: tuple[float, float]
    exposure: np.ndarray  # minutes of the window in each slot
    classes: dict[str, ClassProfile]
    fine: float  # width of the bins of the shape test, minutes
    fine_exposure: np.ndarray
    fine_counts: dict[str, np.ndarray]
    notes: list[str] = field(default_factory=list)

    @property
    def n_slots(self) -> int:
        return len(self.exposure)

    def frame(self) -> pd.DataFrame:
        """Tidy table: class, market (all = the class), slot, start minute, count, exposure,
        rate per minute (fitted), observed rate."""
        rows = []
        for c, prof in self.classes.items():
            for market, counts in [("(all)", prof.counts), *prof.by_market.items()]:
                share = 1.0 if market == "(all)" else prof.market_mix.get(market, 0.0)
                for k in range(self.n_slots):
                    exp = self.exposure[k]
                    rows.append(
                        {
                            "class": c,
                            "market": market,
                            "slot": k,
                            "start_minute": k * self.slot,
                            "count": int(counts[k]),
                            "exposure_min": exp,
                            "observed_rate": counts[k] / exp if exp > 0 else math.nan,
                            "fitted_rate": prof.rates[k] * share,
                        }
                    )
        return pd.DataFrame(rows)


def exposure(window: tuple[float, float], width: float, period: float) -> np.ndarray:
    """Minutes of ``window`` falling in each ``width``-minute bin of the repeating period."""
    n = int(round(period / width))
    out = np.zeros(n)
    lo, hi = window
    first_cycle = math.floor(lo / period)
    last_cycle = math.floor((hi - 1e-9) / period)
    edges = np.arange(n) * width
    for j in range(first_cycle, last_cycle + 1):
        a = np.maximum(edges + j * period, lo)
        b = np.minimum(edges + width + j * period, hi)
        out += np.clip(b - a, 0.0, None)
    return out


def _bin_counts(minutes: np.ndarray, width: float, period: float) -> np.ndarray:
    n = int(round(period / width))
    idx = np.floor(np.mod(minutes, period) / width).astype(int)
    return np.bincount(np.clip(idx, 0, n - 1), minlength=n).astype(float)


def fit_profiles(obs: Observations, slot: float) -> ProfileFit:
    """Fit a profile per class from the arrivals inside the observation window."""
    period, window = obs.period, obs.window
    df = obs.frame
    inside = df[(df["arrival"] >= window[0]) & (df["arrival"] < window[1])]
    expo = exposure(window, slot, period)
    fine = max(slot / 4.0, 5.0) if slot >= 10 else slot
    fine_expo = exposure(window, fine, period)
    notes: list[str] = []
    if (expo == 0).any():
        notes.append(
            f"{int((expo == 0).sum())} of {len(expo)} slots are outside the log's window: they "
            f"get each class's mean rate (a longer log fills them)"
        )
    classes: dict[str, ClassProfile] = {}
    fine_counts: dict[str, np.ndarray] = {}
    for c in obs.classes:
        minutes = inside.loc[inside["cls"] == c, "arrival"].to_numpy(dtype=float)
        counts = _bin_counts(minutes, slot, period)
        rates = np.divide(counts, expo, out=np.zeros_like(counts), where=expo > 0)
        if (expo == 0).any():
            rates[expo == 0] = counts.sum() / expo.sum() if expo.sum() > 0 else 0.0
        fc = _bin_counts(minutes, fine, period)
        fine_counts[c] = fc
        chi2, dof, p = _shape_test(fc, fine_expo, rates, slot, fine)
        prof = ClassProfile(c, rates, counts, {}, {}, chi2, dof, p)
        _market_mix(prof, inside[inside["cls"] == c], obs.markets, slot, period)
        classes[c] = prof
    return ProfileFit(slot, period, window, expo, classes, fine, fine_expo, fine_counts, notes)


def _shape_test(
    fine_counts: np.ndarray, fine_expo: np.ndarray, rates: np.ndarray, slot: float, fine: float
) -> tuple[float, int, float]:
    """Pearson chi-square of fine-bin counts against the slot rates (expected >= 1 bins)."""
    per = int(round(slot / fine))
    expected = np.repeat(rates, per) * fine_expo
    use = expected >= 1.0
    if per <= 1 or use.sum() <= 1:
        return math.nan, 0, math.nan
    chi2 = float(np.sum((fine_counts[use] - expected[use]) ** 2 / expected[use]))
    slots_used = len(np.unique(np.flatnonzero(use) // per))
    dof = int(use.sum()) - slots_used
    if dof <= 0:
        return chi2, 0, math.nan
    return chi2, dof, float(stats.chi2.sf(chi2, dof))


def _market_mix(
    prof: ClassProfile, rows: pd.DataFrame, markets: list[str] | None, slot: float, period: float
) -> None:
    """Market shares of the class, its counts per market and slot, and the constancy test."""
    if not markets:
        return
    known = rows[rows["market"].notna()]
    total = len(known)
    if total == 0:
        return
    for m in markets:
        mins = known.loc[known["market"] == m, "arrival"].to_numpy(dtype=float)
        if len(mins):
            prof.by_market[m] = _bin_counts(mins, slot, period)
            prof.market_mix[m] = len(mins) / total
    table = np.array(list(prof.by_market.values()))
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[0] > 1 and table.shape[1] > 1:
        chi2, p, dof, _ = stats.chi2_contingency(table)
        prof.mix_chi2, prof.mix_p, prof.mix_dof = float(chi2), float(p), int(dof)
