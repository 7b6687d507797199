"""Patience, reviewer accuracy and risk scores from the outcomes in a task log.

**Patience** (how long a task waits before it expires unreviewed -- a live stream ends) is
*censored*: a reviewed task shows only that its patience was longer than its wait. With an
exponential patience the maximum-likelihood mean is the total time at risk divided by the
number of expiries (the Erlang-A estimator): every task contributes its wait (reviewed) or its
time to expiry (expired). The 95% interval uses the chi-square distribution of the sum.
Tasks still waiting when the log ends are not in a log of finished tasks; their absence
biases the mean down a little when many are left.

**Accuracy** comes from tasks whose truth is known (a QA outcome, or the simulator's hidden
truth): sensitivity = P(enforce | violating), specificity = P(clear | not violating), per
reviewer group (and per class where both counts reach ``min_samples``). Estimates are
Jeffreys posterior means (k + 0.5) / (n + 1) with 95% Jeffreys intervals, so a small sample
never claims a perfect reviewer.

**Risk**: a beta distribution per class by the method of moments from the risk column.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats


@dataclass
class PatienceFit:
    cls: str
    tasks: int
    expired: int
    time_at_risk: float
    mean: float
    low: float
    high: float


def fit_patience(frame: pd.DataFrame, classes: list[str]) -> dict[str, PatienceFit]:
    """Exponential patience of classes with expiries (reviewed tasks: censored)."""
    out = {}
    for c in classes:
        rows = frame[frame["cls"] == c]
        expired = rows[rows["expired"] & rows["end"].notna()]
        if expired.empty:
            continue
        served = rows[~rows["expired"] & rows["start"].notna()]
        at_risk = float(
            (expired["end"] - expired["arrival"]).clip(lower=0).sum()
            + (served["start"] - served["arrival"]).clip(lower=0).sum()
        )
        k = len(expired)
        out[c] = PatienceFit(
            c,
            len(expired) + len(served),
            k,
            at_risk,
            at_risk / k,
            2 * at_risk / stats.chi2.ppf(0.975, 2 * k),
            2 * at_risk / stats.chi2.ppf(0.025, 2 * k),
        )
    return out


@dataclass
class Rate:
    """A proportion with its Jeffreys estimate and 95% interval."""

    k: int
    n: int

    @property
    def estimate(self) -> float:
        return (self.k + 0.5) / (self.n + 1.0) if self.n else math.nan

    @property
    def interval(self) -> tuple[float, float]:
        if not self.n:
            return (math.nan, math.nan)
        b = stats.beta(self.k + 0.5, self.n - self.k + 0.5)
        return (float(b.ppf(0.025)), float(b.ppf(0.975)))


@dataclass
class AccuracyFit:
    group: str  # "(all)" for everyone; a reviewer id in the per-reviewer table
    cls: str  # "(all)" for every class
    sensitivity: Rate
    specificity: Rate


def fit_accuracy(frame: pd.DataFrame, by: str, min_samples: int) -> list[AccuracyFit]:
    """Sensitivity and specificity per ``by`` (``group`` or ``reviewer``), overall and per
    class where both counts reach ``min_samples``; ``(all)`` rows pool everyone."""
    known = frame[frame["decision"].notna() & frame["truth"].notna() & ~frame["expired"]]
    if known.empty:
        return []
    out = [_rates("(all)", "(all)", known)]
    keyed = known[known[by].notna()]
    for key, rows in keyed.groupby(by, sort=True):
        out.append(_rates(str(key), "(all)", rows))
        for c, sub in rows.groupby("cls", sort=True):
            fit = _rates(str(key), str(c), sub)
            if fit.sensitivity.n >= min_samples and fit.specificity.n >= min_samples:
                out.append(fit)
    return out


def _rates(group: str, cls: str, rows: pd.DataFrame) -> AccuracyFit:
    viol = rows[rows["truth"] == 1.0]
    clean = rows[rows["truth"] == 0.0]
    return AccuracyFit(
        group,
        cls,
        Rate(int((viol["decision"] == 1.0).sum()), len(viol)),
        Rate(int((clean["decision"] == 0.0).sum()), len(clean)),
    )


def accuracy_frame(fits: list[AccuracyFit], by: str) -> pd.DataFrame:
    rows = []
    for f in fits:
        s_lo, s_hi = f.sensitivity.interval
        p_lo, p_hi = f.specificity.interval
        rows.append(
            {
                by: f.group,
                "class": f.cls,
                "n_violating": f.sensitivity.n,
                "sensitivity": f.sensitivity.estimate,
                "sensitivity_low": s_lo,
                "sensitivity_high": s_hi,
                "n_clean": f.specificity.n,
                "specificity": f.specificity.estimate,
                "specificity_low": p_lo,
                "specificity_high": p_hi,
            }
        )
    return pd.DataFrame(rows)


def fit_risk(frame: pd.DataFrame, classes: list[str]) -> dict[str, dict[str, float]]:
    """Beta(a, b) per class by moments of the risk column (classes with >= 2 values)."""
    out = {}
    for c in classes:
        x = frame.loc[frame["cls"] == c, "risk"].dropna().to_numpy(dtype=float)
        if len(x) < 2:
            continue
        m, v = float(x.mean()), float(x.var())
        if not 0 < m < 1 or v <= 0 or v >= m * (1 - m):
            continue
        common = m * (1 - m) / v - 1
        out[c] = {"a": m * common, "b": (1 - m) * common, "n": float(len(x))}
    return out


def prevalence(frame: pd.DataFrame, classes: list[str]) -> dict[str, float]:
    """Share of violating tasks among those with a known truth, per class."""
    out = {}
    for c in classes:
        t = frame.loc[frame["cls"] == c, "truth"].dropna()
        if len(t):
            out[c] = float(t.mean())
    return out


def peak_in_service(frame: pd.DataFrame) -> int:
    """Most tasks in review at once (a lower bound on headcount without reviewer ids)."""
    rows = frame[frame["start"].notna() & frame["end"].notna() & ~frame["expired"]]
    if rows.empty:
        return 0
    events = np.concatenate([rows["start"].to_numpy(), rows["end"].to_numpy()])
    delta = np.concatenate([np.ones(len(rows)), -np.ones(len(rows))])
    order = np.lexsort((delta, events))  # ends before starts at the same minute
    return int(np.max(np.cumsum(delta[order])))
