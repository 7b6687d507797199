"""Honest statistics for comparing simulation replications.

A single simulation run is one random draw; its average waiting time is an
estimate with sampling error.  To compare dispatch policies fairly we:

* run **independent replications** (different seeds) and report the mean of
  the per-replication averages with a Student-t confidence interval
  (:func:`mean_ci`, :func:`summarise`);
* use **common random numbers** (CRN): policy A and policy B are run with
  the same seed, so they see the same arrivals and task sizes.  The paired
  differences ``x[i] - y[i]`` then have much smaller variance than the two
  arms separately, and a paired t-interval on the differences is the right
  test (:func:`paired_difference`, :func:`paired_summary`);
* for one long run, whose successive observations are autocorrelated, use
  **batch means**: averages of long contiguous batches are nearly
  independent and nearly normal (:func:`batch_means_ci`).

The t-interval assumes the replication averages are roughly normal, which
the central limit theorem makes reasonable for averages over many tasks.
Warm-up deletion is the caller's job: pass only post-warm-up data.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats as sps

__all__ = [
    "batch_means_ci",
    "mean_ci",
    "paired_difference",
    "paired_summary",
    "summarise",
]


def _as_1d(x: ArrayLike, name: str = "x") -> np.ndarray:
    """Convert to a 1-D float array, rejecting other shapes."""
    arr = np.asarray(x, dtype=float)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_confidence(confidence: float) -> None:
    """Confidence levels must lie strictly between 0 and 1."""
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _t_half_width(sd: float, n: int, confidence: float) -> float:
    """Student-t half-width ``t_{(1+conf)/2, n-1} * sd / sqrt(n)``."""
    return float(sps.t.ppf(0.5 + confidence / 2.0, n - 1)) * sd / math.sqrt(n)


def mean_ci(x: ArrayLike, confidence: float = 0.95) -> tuple[float, float, float]:
    """Sample mean with a Student-t confidence interval.

    For ``n`` independent replications with sample mean ``m`` and sample
    standard deviation ``s`` (denominator ``n - 1``), the interval is
    ``m +/- t_{(1+confidence)/2, n-1} * s / sqrt(n)``.

    Parameters
    ----------
    x : array_like
        One value per independent replication.  NaNs are *not* dropped: they
        propagate to the result, so missing data cannot go unnoticed.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    tuple of float
        ``(mean, lower, upper)``.  With one observation the interval is
        undefined and ``(x[0], nan, nan)`` is returned; with none, all NaN.
    """
    _check_confidence(confidence)
    arr = _as_1d(x)
    n = arr.size
    if n == 0:
        return (math.nan, math.nan, math.nan)
    mean = float(arr.mean())
    if n == 1:
        return (mean, math.nan, math.nan)
    half = _t_half_width(float(arr.std(ddof=1)), n, confidence)
    return (mean, mean - half, mean + half)


def paired_difference(x: ArrayLike, y: ArrayLike, confidence: float = 0.95) -> dict[str, float]:
    """Paired comparison of two policies run under common random numbers.

    ``x[i]`` and ``y[i]`` must come from the same seed (same arrivals and
    task sizes).  Inference is on the differences ``d_i = x_i - y_i``: a
    Student-t interval for their mean and a two-sided paired t-test of
    ``E[d] = 0``.

    Parameters
    ----------
    x, y : array_like
        Equal-length per-seed results of the candidate (``x``) and the
        baseline (``y``).
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    dict
        ``mean_diff`` (mean of ``x - y``), ``lower``, ``upper``, ``n``,
        ``p_value`` (NaN if ``n < 2``; if all differences are equal it is
        1 when they are zero and 0 otherwise) and ``relative``
        (``mean_diff / mean(y)``, NaN if ``mean(y) == 0``).
    """
    xa, ya = _as_1d(x, "x"), _as_1d(y, "y")
    if xa.shape != ya.shape:
        raise ValueError(f"x and y must have equal length, got {xa.size} and {ya.size}")
    d = xa - ya
    mean, lower, upper = mean_ci(d, confidence)
    n = d.size
    p_value = math.nan
    if n >= 2:
        sd = float(d.std(ddof=1))
        if sd > 0:
            t_stat = mean / (sd / math.sqrt(n))
            p_value = float(2.0 * sps.t.sf(abs(t_stat), n - 1))
        elif not math.isnan(sd):
            p_value = 1.0 if mean == 0 else 0.0
    y_mean = float(ya.mean()) if n else math.nan
    relative = mean / y_mean if y_mean != 0 else math.nan
    return {
        "mean_diff": mean,
        "lower": lower,
        "upper": upper,
        "n": n,
        "p_value": p_value,
        "relative": relative,
    }


def batch_means_ci(
    samples: ArrayLike, n_batches: int = 20, confidence: float = 0.95
) -> tuple[float, float, float]:
    """Confidence interval for a steady-state mean from one long run.

    Successive waiting times in a queue are strongly positively correlated,
    so the naive ``s / sqrt(N)`` badly understates the error.  Batch means
    splits the (post-warm-up) sequence into ``n_batches`` contiguous batches
    of equal size; if batches are long compared with the correlation time,
    their means are approximately i.i.d. normal and :func:`mean_ci` applies
    to them with ``n_batches - 1`` degrees of freedom.

    Parameters
    ----------
    samples : array_like
        Observations in time order, warm-up already removed.
    n_batches : int, default 20
        Number of batches (10-30 is the usual advice).  When ``len(samples)``
        is not a multiple of it, the *first* ``len(samples) % n_batches``
        observations (those nearest the initial transient) are discarded.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    tuple of float
        ``(mean, lower, upper)``, the mean being that of the samples used.
    """
    arr = _as_1d(samples, "samples")
    if n_batches < 2:
        raise ValueError(f"n_batches must be >= 2, got {n_batches}")
    size = arr.size // n_batches
    if size < 1:
        raise ValueError(f"need at least n_batches={n_batches} samples, got {arr.size}")
    used = arr[arr.size - size * n_batches :]
    return mean_ci(used.reshape(n_batches, size).mean(axis=1), confidence)


def _iter_groups(
    df: pd.DataFrame, group_cols: Sequence[str]
) -> Iterator[tuple[tuple[object, ...], pd.DataFrame]]:
    """Yield ``(key tuple, sub-frame)`` pairs; one group if ``group_cols`` is empty."""
    if not group_cols:
        yield (), df
        return
    for key, sub in df.groupby(list(group_cols), sort=True, dropna=False):
        yield (key if isinstance(key, tuple) else (key,)), sub


def summarise(
    df: pd.DataFrame,
    group_cols: Sequence[str],
    metric_cols: Sequence[str],
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per-group means and t-intervals of several metrics, in long format.

    Each row of ``df`` is one replication (e.g. one seed of one policy in
    one scenario).  NaN values of a metric (e.g. "mean wait of abandoned
    tasks" in a run without abandonments) are dropped for that metric only,
    and ``n`` reports how many replications were actually used.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per replication.
    group_cols : sequence of str
        Columns identifying a configuration (e.g. ``['scenario', 'policy']``).
        May be empty to summarise the whole frame.
    metric_cols : sequence of str
        Numeric columns to summarise.
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns ``group_cols + ['metric', 'mean', 'ci_low', 'ci_high',
        'half_width', 'n']``, one row per group and metric.
    """
    rows = []
    for key, sub in _iter_groups(df, group_cols):
        for metric in metric_cols:
            values = sub[metric].dropna().to_numpy(dtype=float)
            mean, low, high = mean_ci(values, confidence)
            rows.append((*key, metric, mean, low, high, (high - low) / 2.0, int(values.size)))
    columns = [*group_cols, "metric", "mean", "ci_low", "ci_high", "half_width", "n"]
    return pd.DataFrame(rows, columns=columns)


def paired_summary(
    df: pd.DataFrame,
    by: str,
    baseline: str,
    seed_col: str,
    metric_cols: Sequence[str],
    group_cols: Sequence[str] = (),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Paired (common-random-numbers) comparison of every arm against a baseline.

    For each value ``v != baseline`` of column ``by`` (typically the
    policy), rows of ``v`` are matched to baseline rows with the same
    ``seed_col`` (and the same ``group_cols``, e.g. scenario), and
    :func:`paired_difference` is applied per metric to ``v - baseline``.
    Seeds present in only one arm are left out, as are pairs where either
    side of a metric is NaN; ``n`` is the number of pairs used.

    Parameters
    ----------
    df : pandas.DataFrame
        One row per replication.
    by : str
        Column distinguishing the arms being compared.
    baseline : str
        Value of ``by`` that every other arm is compared against.
    seed_col : str
        Column holding the random seed shared by paired runs.
    metric_cols : sequence of str
        Numeric columns to compare.
    group_cols : sequence of str, default ()
        Further columns that must match within a pair (e.g. ``['scenario']``).
    confidence : float, default 0.95
        Two-sided confidence level.

    Returns
    -------
    pandas.DataFrame
        Columns ``group_cols + [by, 'metric', 'mean_diff', 'ci_low',
        'ci_high', 'relative', 'p_value', 'n']``.  ``relative`` is
        ``mean_diff`` divided by the baseline mean over the pairs used.

    Raises
    ------
    ValueError
        If ``baseline`` does not occur, a (group, arm, seed) combination is
        duplicated (pairing would be ambiguous), or some group of an arm has
        no seed in common with the baseline.
    """
    group_cols = list(group_cols)
    keys = [*group_cols, seed_col]
    if not (df[by] == baseline).any():
        raise ValueError(f"baseline {baseline!r} not found in column {by!r}")
    if df.duplicated([*group_cols, by, seed_col]).any():
        raise ValueError(f"duplicate rows for the same {[*group_cols, by, seed_col]}")
    cols = [*keys, *metric_cols]
    base = df.loc[df[by] == baseline, cols]
    rows = []
    for arm in pd.unique(df.loc[df[by] != baseline, by]):
        merged = df.loc[df[by] == arm, cols].merge(
            base, on=keys, how="inner", suffixes=("", "__base")
        )
        n_arm_groups = sum(1 for _ in _iter_groups(df.loc[df[by] == arm], group_cols))
        matched = list(_iter_groups(merged, group_cols))
        if len(matched) < n_arm_groups:
            raise ValueError(f"{by}={arm!r}: some groups share no seed with the baseline")
        for key, sub in matched:
            for metric in metric_cols:
                pair = sub[[metric, f"{metric}__base"]].dropna().to_numpy(dtype=float)
                res = paired_difference(pair[:, 0], pair[:, 1], confidence)
                rows.append(
                    (*key, arm, metric, res["mean_diff"], res["lower"], res["upper"])
                    + (res["relative"], res["p_value"], res["n"])
                )
    columns = [*group_cols, by, "metric", "mean_diff", "ci_low", "ci_high", "relative"]
    return pd.DataFrame(rows, columns=[*columns, "p_value", "n"])
