"""Transforms of imported columns: a small, documented set instead of free code.

An export rarely holds the field the simulator needs in the form it needs: a count of past
punishments instead of a risk probability, accuracy in percent instead of a share, a score on
its own scale. A column mapping can name a transform (or a list of them, applied in order)::

    risk: {column: punish_num, transform: {kind: logistic, center: 2, scale: 0.7}}
    accuracy: {column: qa_pct, transform: {kind: scale, factor: 0.01}}
    risk: {column: model_score, transform: [{kind: minmax}, {kind: clip, low: 0.01}]}

=========== =========================================== =====================================
kind        parameters                                  result for a value x
=========== =========================================== =====================================
logistic    center (0), scale (1, > 0)                  1 / (1 + exp(-(x - center) / scale))
minmax      low, high (default: the column's min, max)  (x - low) / (high - low), clipped to
                                                        [0, 1]
rank        --                                          x's percentile rank among the
                                                        column's values, (rank - 0.5) / n
threshold   at; above (1), below (0)                    ``above`` where x >= at, else
                                                        ``below``
clip        low, high (at least one)                    x limited to [low, high]
scale       factor (1), offset (0)                      x * factor + offset
=========== =========================================== =====================================

Blank cells stay blank (a default is applied later and reported); transforms never see them.
Nothing here evaluates text from a config file: each kind is a class with fixed arithmetic.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _g(x: float) -> str:
    return f"{x:.6g}"


class Logistic(BaseModel):
    """An S-curve from any real number to a probability: a count or score becomes a risk."""

    model_config = _STRICT
    kind: Literal["logistic"] = Field(default="logistic", description="Transform kind.")
    center: float = Field(default=0.0, description="Value mapped to 0.5.")
    scale: float = Field(
        default=1.0, gt=0, description="Steepness: x = center + scale maps to 0.73."
    )

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        with np.errstate(over="ignore"):
            y = 1.0 / (1.0 + np.exp(-(x - self.center) / self.scale))
        return y, f"logistic(center={_g(self.center)}, scale={_g(self.scale)})"


class MinMax(BaseModel):
    """Rescale linearly so ``low`` becomes 0 and ``high`` becomes 1 (clipped to [0, 1])."""

    model_config = _STRICT
    kind: Literal["minmax"] = Field(default="minmax", description="Transform kind.")
    low: float | None = Field(default=None, description="Value mapped to 0; default column min.")
    high: float | None = Field(default=None, description="Value mapped to 1; default column max.")

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        known = x[~np.isnan(x)]
        lo = self.low if self.low is not None else (float(known.min()) if known.size else 0.0)
        hi = self.high if self.high is not None else (float(known.max()) if known.size else 1.0)
        if not hi > lo:
            raise ValueError(
                f"minmax needs high > low, got low {_g(lo)} and high {_g(hi)}"
                + (" (the column has a single value)" if self.low is None else "")
                + "; set low and high explicitly"
            )
        y = np.clip((x - lo) / (hi - lo), 0.0, 1.0)
        return y, f"minmax(low={_g(lo)}, high={_g(hi)})"


class Rank(BaseModel):
    """Percentile rank among the column's values: ties share their mean rank."""

    model_config = _STRICT
    kind: Literal["rank"] = Field(default="rank", description="Transform kind.")

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        from scipy.stats import rankdata

        y = np.full(len(x), np.nan)
        known = ~np.isnan(x)
        n = int(known.sum())
        if n:
            y[known] = (rankdata(x[known], method="average") - 0.5) / n
        return y, "rank (percentile, (rank - 0.5) / n)"


class Threshold(BaseModel):
    """Two levels: ``above`` where the value reaches ``at``, ``below`` elsewhere."""

    model_config = _STRICT
    kind: Literal["threshold"] = Field(default="threshold", description="Transform kind.")
    at: float = Field(description="Values >= at get `above`, smaller values get `below`.")
    above: float = Field(default=1.0, description="Result for values >= at.")
    below: float = Field(default=0.0, description="Result for values < at.")

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        y = np.where(x >= self.at, self.above, self.below).astype(float)
        y[np.isnan(x)] = np.nan
        return y, f"threshold(at={_g(self.at)}: {_g(self.above)} else {_g(self.below)})"


class Clip(BaseModel):
    """Limit values to [low, high]."""

    model_config = _STRICT
    kind: Literal["clip"] = Field(default="clip", description="Transform kind.")
    low: float | None = Field(default=None, description="Smallest value kept.")
    high: float | None = Field(default=None, description="Largest value kept.")

    @model_validator(mode="after")
    def _some_bound(self) -> Clip:
        if self.low is None and self.high is None:
            raise ValueError("clip needs low, high or both")
        if self.low is not None and self.high is not None and self.high < self.low:
            raise ValueError("clip needs high >= low")
        return self

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        lo = -math.inf if self.low is None else self.low
        hi = math.inf if self.high is None else self.high
        return np.clip(x, lo, hi), f"clip(low={_g(lo)}, high={_g(hi)})"


class Scale(BaseModel):
    """Linear change of unit: ``x * factor + offset`` (percent to share: factor 0.01)."""

    model_config = _STRICT
    kind: Literal["scale"] = Field(default="scale", description="Transform kind.")
    factor: float = Field(default=1.0, description="Multiplier.")
    offset: float = Field(default=0.0, description="Added after multiplying.")

    def apply(self, x: np.ndarray) -> tuple[np.ndarray, str]:
        return x * self.factor + self.offset, (
            f"scale(factor={_g(self.factor)}, offset={_g(self.offset)})"
        )


Transform = Annotated[
    Logistic | MinMax | Rank | Threshold | Clip | Scale, Field(discriminator="kind")
]

#: The kinds, for messages and documentation.
KINDS = ("logistic", "minmax", "rank", "threshold", "clip", "scale")


def apply_transforms(
    steps: list[Logistic | MinMax | Rank | Threshold | Clip | Scale], x: np.ndarray
) -> tuple[np.ndarray, str]:
    """Apply ``steps`` in order to ``x`` (nan = blank, kept); returns values and a description.

    Raises ``ValueError`` with a one-line reason when a step cannot apply (e.g. minmax on a
    constant column) or produces a non-finite value.
    """
    y = np.asarray(x, dtype=float)
    texts = []
    for step in steps:
        blank = np.isnan(y)
        y, text = step.apply(y)
        y = np.asarray(y, dtype=float)
        y[blank] = np.nan
        texts.append(text)
        if np.isinf(y).any():
            raise ValueError(f"{text} gives an infinite value; check its parameters")
    return y, " then ".join(texts)
