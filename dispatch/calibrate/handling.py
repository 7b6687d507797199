"""Handling-time distributions per class and reviewer group, with a goodness-of-fit table.

Three families, the ones a scenario file writes by mean and cv, are fitted by maximum
likelihood to each sample of handling times:

=========== ===================================== ======================================
family      maximum-likelihood fit                mean, cv written to the scenario
=========== ===================================== ======================================
exponential mean = sample mean                    mean (cv is 1)
lognormal   mu, sigma = mean, sd of log(x)        exp(mu + sigma^2 / 2), sqrt(e^sigma^2 - 1)
gamma       shape k, scale s (scipy, loc = 0)     k s, 1 / sqrt(k)
=========== ===================================== ======================================

Each fit is scored by AIC (2 x parameters - 2 x log-likelihood; lower is better) and by the
Kolmogorov-Smirnov statistic (the largest gap between the fitted and the empirical CDF);
the stated criterion (``aic`` by default, or ``ks``) picks the family. Zero or negative
times cannot come from the lognormal or gamma families and are left out (counted).

Groups differ in speed, not in shape: the scenario gives each class one distribution for
a speed-1.0 reviewer and each group a speed factor per class. The reference group of a class
(speed 1.0) is the group that handled most of its tasks; another group's speed is the
reference mean divided by its mean (groups with fewer than ``min_samples`` tasks keep 1.0).
The class's distribution is then fitted to every task's time multiplied by its group's
speed -- the time the reference group would have needed. Per-group fits are in the table
too, to show whether the shapes really agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

FAMILIES = ("exponential", "lognormal", "gamma")
ALL = "(all)"


@dataclass(frozen=True)
class FamilyFit:
    """One family fitted to one sample."""

    family: str
    mean: float
    cv: float
    loglik: float
    aic: float
    ks: float
    dist: object = field(repr=False, compare=False, default=None)  # the frozen scipy dist

    def scenario_dict(self) -> dict[str, float | str]:
        """As a scenario file writes it."""
        out: dict[str, float | str] = {"kind": self.family, "mean": _sig(self.mean)}
        if self.family != "exponential":
            out["cv"] = _sig(self.cv)
        return out


@dataclass
class SampleFit:
    """Every family on one sample (a class, or a class within a group)."""

    cls: str
    group: str
    n: int
    mean: float
    cv: float
    dropped: int
    fits: list[FamilyFit]
    chosen: FamilyFit | None
    speed: float = 1.0
    sample: np.ndarray = field(default_factory=lambda: np.zeros(0), repr=False)


def _sig(x: float, digits: int = 6) -> float:
    return float(f"{x:.{digits}g}")


def fit_families(x: np.ndarray) -> list[FamilyFit]:
    """Maximum-likelihood fits of the three families to positive values ``x`` (n >= 2)."""
    x = np.asarray(x, dtype=float)
    n = len(x)
    out = []
    mean = float(x.mean())
    d = stats.expon(scale=mean)
    out.append(_scored("exponential", mean, 1.0, d, x, 1))
    logs = np.log(x)
    mu, sigma = float(logs.mean()), float(logs.std())
    if sigma > 0:
        d = stats.lognorm(s=sigma, scale=math.exp(mu))
        out.append(
            _scored(
                "lognormal", math.exp(mu + sigma**2 / 2), math.sqrt(math.expm1(sigma**2)), d, x, 2
            )
        )
    if n >= 2 and float(x.std()) > 0:
        k, _, scale = stats.gamma.fit(x, floc=0.0)
        d = stats.gamma(k, scale=scale)
        out.append(_scored("gamma", k * scale, 1.0 / math.sqrt(k), d, x, 2))
    return out


def _scored(family: str, mean: float, cv: float, dist, x: np.ndarray, k: int) -> FamilyFit:
    loglik = float(np.sum(dist.logpdf(x)))
    ks = float(stats.kstest(x, dist.cdf).statistic)
    return FamilyFit(family, mean, cv, loglik, 2 * k - 2 * loglik, ks, dist)


def choose(fits: list[FamilyFit], criterion: str) -> FamilyFit | None:
    """The best fit by ``criterion`` (``aic`` or ``ks``); ties keep the simpler family."""
    if not fits:
        return None
    key = (lambda f: f.aic) if criterion == "aic" else (lambda f: f.ks)
    return min(fits, key=lambda f: (key(f), FAMILIES.index(f.family)))


def fit_sample(cls: str, group: str, x: np.ndarray, criterion: str) -> SampleFit:
    x = np.asarray(x, dtype=float)
    x = x[np.isfinite(x)]
    pos = x[x > 0]
    fits = fit_families(pos) if len(pos) >= 2 else []
    mean = float(pos.mean()) if len(pos) else math.nan
    cv = float(pos.std() / pos.mean()) if len(pos) >= 2 and pos.mean() > 0 else math.nan
    return SampleFit(
        cls, group, len(pos), mean, cv, len(x) - len(pos), fits, choose(fits, criterion), sample=pos
    )


@dataclass
class HandlingFit:
    """Per class: the pooled (speed-normalised) fit, the per-group fits and group speeds."""

    classes: dict[str, SampleFit]
    groups: list[SampleFit]
    speeds: dict[str, dict[str, float]]  # group -> class -> speed
    reference: dict[str, str]  # class -> reference group
    notes: list[str]

    def frame(self) -> pd.DataFrame:
        """The goodness-of-fit table: one row per sample and family."""
        rows = []
        for s in [*self.classes.values(), *self.groups]:
            for f in s.fits:
                rows.append(
                    {
                        "class": s.cls,
                        "group": s.group,
                        "n": s.n,
                        "sample_mean": s.mean,
                        "sample_cv": s.cv,
                        "speed": s.speed,
                        "family": f.family,
                        "fit_mean": f.mean,
                        "fit_cv": f.cv,
                        "loglik": f.loglik,
                        "aic": f.aic,
                        "ks": f.ks,
                        "chosen": s.chosen is not None and f.family == s.chosen.family,
                    }
                )
        return pd.DataFrame(rows)


def fit_handling(
    frame: pd.DataFrame, classes: list[str], criterion: str, min_samples: int
) -> HandlingFit:
    """Fit handling times of reviewed tasks (``handling`` known, not expired)."""
    done = frame[frame["handling"].notna() & ~frame["expired"]]
    has_groups = done["group"].notna().any()
    out = HandlingFit({}, [], {}, {}, [])
    for c in classes:
        rows = done[done["cls"] == c]
        if rows.empty:
            out.notes.append(
                f"class {c}: no handling times in the log; the scenario keeps a placeholder"
            )
            continue
        if not has_groups:
            out.classes[c] = fit_sample(c, ALL, rows["handling"].to_numpy(), criterion)
            continue
        out.classes[c] = _fit_with_groups(c, rows, criterion, min_samples, out)
    for s in out.classes.values():
        if s.dropped:
            out.notes.append(f"class {s.cls}: {s.dropped} zero or negative handling times left out")
    return out


def _fit_with_groups(
    c: str, rows: pd.DataFrame, criterion: str, min_samples: int, out: HandlingFit
) -> SampleFit:
    by_group = {
        str(g): sub["handling"].to_numpy(dtype=float) for g, sub in rows.groupby("group", sort=True)
    }
    ref = max(sorted(by_group), key=lambda g: len(by_group[g]))
    ref_mean = float(np.mean(by_group[ref][by_group[ref] > 0]))
    out.reference[c] = ref
    scaled = []
    for g, x in by_group.items():
        fit = fit_sample(c, g, x, criterion)
        enough = fit.n >= min_samples and fit.mean > 0
        fit.speed = ref_mean / fit.mean if enough else 1.0
        if not enough and g != ref:
            out.notes.append(
                f"class {c}, group {g}: {fit.n} handling times (< {min_samples}); speed left at 1.0"
            )
        out.groups.append(fit)
        out.speeds.setdefault(g, {})[c] = fit.speed
        scaled.append(x * fit.speed)
    unnamed = rows["group"].isna()
    if unnamed.any():
        out.notes.append(
            f"class {c}: {int(unnamed.sum())} handling times without a group left out of the fit"
        )
    pooled = fit_sample(c, ALL, np.concatenate(scaled), criterion)
    return pooled
