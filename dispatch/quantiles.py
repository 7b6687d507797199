"""Streaming quantiles in constant memory: a log-spaced histogram.

Percentiles of waiting times (p50, p95, p99) must not cost memory per task: a day of a
million tasks would otherwise keep a million floats per metric. Values fall into bins whose
edges grow by 1% (plus an exact bin for zero, since many tasks never wait), so any reported
quantile is within 0.5% of the exact order statistic; means are kept exactly.
"""

from __future__ import annotations

import math

import numpy as np

_LO = 1e-4  # minutes (6 ms): anything below is reported as this bin
_RATIO = 1.01
_NBINS = int(math.ceil(math.log(1e6 / _LO) / math.log(_RATIO))) + 1
_INV_LOG = 1.0 / math.log(_RATIO)
_LOG_LO = math.log(_LO)


class LogHistogram:
    """Counts of non-negative values in log-spaced bins, with exact count, sum and zeros."""

    __slots__ = ("counts", "zeros", "n", "total", "maximum")

    def __init__(self) -> None:
        self.counts = [0] * _NBINS
        self.zeros = 0
        self.n = 0
        self.total = 0.0
        self.maximum = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        if x <= 0.0:
            self.zeros += 1
            return
        if x > self.maximum:
            self.maximum = x
        i = int((math.log(x) - _LOG_LO) * _INV_LOG) if x > _LO else 0
        self.counts[i if i < _NBINS else _NBINS - 1] += 1

    @property
    def mean(self) -> float:
        return self.total / self.n if self.n else float("nan")

    def quantile(self, q: float) -> float:
        if self.n == 0:
            return float("nan")
        rank = q * self.n
        if rank <= self.zeros:
            return 0.0
        cum = np.cumsum(self.counts) + self.zeros
        i = int(np.searchsorted(cum, rank, side="left"))
        i = min(i, _NBINS - 1)
        mid = math.exp(_LOG_LO + (i + 0.5) / _INV_LOG)
        return min(mid, self.maximum)

    def share_above(self, x: float) -> float:
        """Fraction of values strictly above ``x`` (bin resolution)."""
        if self.n == 0:
            return float("nan")
        if x <= 0.0:
            return (self.n - self.zeros) / self.n
        i = int((math.log(x) - _LOG_LO) * _INV_LOG) if x > _LO else 0
        return float(sum(self.counts[i + 1 :])) / self.n

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, cumulative share) at the upper edge of every non-empty bin, for plots."""
        counts = np.asarray(self.counts, dtype=float)
        nz = np.nonzero(counts)[0]
        if self.n == 0:
            return np.zeros(0), np.zeros(0)
        edges = np.exp(_LOG_LO + (nz + 1) / _INV_LOG)
        cum = (np.cumsum(counts)[nz] + self.zeros) / self.n
        return np.concatenate([[0.0], edges]), np.concatenate([[self.zeros / self.n], cum])
