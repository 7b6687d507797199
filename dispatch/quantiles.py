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
    """Counts of non-negative values in log-spaced bins, with exact count, sum and zeros.

    Values are buffered and binned in batches with numpy, so adding one costs a list append.
    """

    __slots__ = ("_counts", "_zeros", "_n", "_total", "_max", "_buf")

    _BATCH = 4096

    def __init__(self) -> None:
        self._counts = np.zeros(_NBINS, dtype=np.int64)
        self._zeros = 0
        self._n = 0
        self._total = 0.0
        self._max = 0.0
        self._buf: list[float] = []

    def add(self, x: float) -> None:
        buf = self._buf
        buf.append(x)
        if len(buf) >= 4096:
            self._flush()

    def _flush(self) -> None:
        if not self._buf:
            return
        arr = np.asarray(self._buf, dtype=float)
        self._buf = []
        self._n += arr.size
        self._total += float(arr.sum())
        pos = arr[arr > 0.0]
        self._zeros += arr.size - pos.size
        if pos.size:
            self._max = max(self._max, float(pos.max()))
            idx = ((np.log(np.maximum(pos, _LO)) - _LOG_LO) * _INV_LOG).astype(np.int64)
            np.clip(idx, 0, _NBINS - 1, out=idx)
            self._counts += np.bincount(idx, minlength=_NBINS)

    def merge(self, other: LogHistogram) -> None:
        self._flush()
        other._flush()
        self._counts = self._counts + other._counts
        self._zeros += other._zeros
        self._n += other._n
        self._total += other._total
        self._max = max(self._max, other._max)

    @property
    def n(self) -> int:
        self._flush()
        return self._n

    @property
    def zeros(self) -> int:
        self._flush()
        return self._zeros

    @property
    def counts(self) -> np.ndarray:
        self._flush()
        return self._counts

    @property
    def maximum(self) -> float:
        self._flush()
        return self._max

    @property
    def mean(self) -> float:
        self._flush()
        return self._total / self._n if self._n else float("nan")

    def quantile(self, q: float) -> float:
        self._flush()
        if self._n == 0:
            return float("nan")
        rank = q * self._n
        if rank <= self._zeros:
            return 0.0
        cum = np.cumsum(self._counts) + self._zeros
        i = int(np.searchsorted(cum, rank, side="left"))
        i = min(i, _NBINS - 1)
        mid = math.exp(_LOG_LO + (i + 0.5) / _INV_LOG)
        return min(mid, self._max)

    def share_above(self, x: float) -> float:
        """Fraction of values strictly above ``x`` (bin resolution)."""
        self._flush()
        if self._n == 0:
            return float("nan")
        if x <= 0.0:
            return (self._n - self._zeros) / self._n
        i = int((math.log(x) - _LOG_LO) * _INV_LOG) if x > _LO else 0
        return float(self._counts[i + 1 :].sum()) / self._n

    def cdf(self) -> tuple[np.ndarray, np.ndarray]:
        """(values, cumulative share) at the upper edge of every non-empty bin, for plots."""
        self._flush()
        if self._n == 0:
            return np.zeros(0), np.zeros(0)
        counts = self._counts.astype(float)
        nz = np.nonzero(counts)[0]
        edges = np.exp(_LOG_LO + (nz + 1) / _INV_LOG)
        cum = (np.cumsum(counts)[nz] + self._zeros) / self._n
        return np.concatenate([[0.0], edges]), np.concatenate([[self._zeros / self._n], cum])
