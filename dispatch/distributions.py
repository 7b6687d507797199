"""Probability distributions used in scenario files.

Every distribution is a small pydantic model with a ``kind`` tag and a vectorised
``sample(rng, n)``. Handling times, patience, reach and severity are all described this way,
so a scenario file reads the same everywhere::

    handling: {kind: lognormal, mean: 1.5, cv: 0.8}
    patience: {kind: exponential, mean: 20}
    severity: {kind: discrete, values: [1, 3, 10], probs: [0.7, 0.25, 0.05]}

``mean`` and ``cv`` (coefficient of variation) parameterise the skewed families because that
is what operations teams know about their handling times; the natural parameters are derived.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Exponential(BaseModel):
    """Exponential with the given mean (memoryless: the textbook M in M/M/c)."""

    model_config = _STRICT
    kind: Literal["exponential"] = Field(default="exponential", description="Selects this kind.")
    mean: float = Field(gt=0, description="Mean (minutes, or the unit of the quantity).")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.exponential(self.mean, n)

    @property
    def expected(self) -> float:
        return self.mean

    @property
    def second_moment(self) -> float:
        return 2.0 * self.mean**2


class LogNormal(BaseModel):
    """Log-normal by mean and coefficient of variation (skewed handling times)."""

    model_config = _STRICT
    kind: Literal["lognormal"] = Field(default="lognormal", description="Selects this kind.")
    mean: float = Field(gt=0, description="Mean (minutes, or the unit of the quantity).")
    cv: float = Field(gt=0, description="Coefficient of variation (std / mean).")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        s2 = math.log1p(self.cv**2)
        mu = math.log(self.mean) - s2 / 2.0
        return rng.lognormal(mu, math.sqrt(s2), n)

    @property
    def expected(self) -> float:
        return self.mean

    @property
    def second_moment(self) -> float:
        return self.mean**2 * (1.0 + self.cv**2)


class Gamma(BaseModel):
    """Gamma by mean and coefficient of variation."""

    model_config = _STRICT
    kind: Literal["gamma"] = Field(default="gamma", description="Selects this kind.")
    mean: float = Field(gt=0, description="Mean (minutes, or the unit of the quantity).")
    cv: float = Field(gt=0, description="Coefficient of variation (std / mean).")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        shape = 1.0 / self.cv**2
        return rng.gamma(shape, self.mean / shape, n)

    @property
    def expected(self) -> float:
        return self.mean

    @property
    def second_moment(self) -> float:
        return self.mean**2 * (1.0 + self.cv**2)


class Deterministic(BaseModel):
    """Always the same value."""

    model_config = _STRICT
    kind: Literal["deterministic"] = Field(
        default="deterministic", description="Selects this kind."
    )
    value: float = Field(ge=0, description="The value every draw takes.")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        # Consume the stream anyway, so switching a distribution to deterministic does not
        # shift the draws of anything else sharing the stream.
        rng.random(n)
        return np.full(n, self.value)

    @property
    def expected(self) -> float:
        return self.value

    @property
    def second_moment(self) -> float:
        return self.value**2


class Uniform(BaseModel):
    """Uniform on [low, high]."""

    model_config = _STRICT
    kind: Literal["uniform"] = Field(default="uniform", description="Selects this kind.")
    low: float = Field(description="Lower bound.")
    high: float = Field(description="Upper bound (>= low).")

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError("high must be >= low")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.uniform(self.low, self.high, n)

    @property
    def expected(self) -> float:
        return 0.5 * (self.low + self.high)

    @property
    def second_moment(self) -> float:
        return (self.low**2 + self.low * self.high + self.high**2) / 3.0


class Beta(BaseModel):
    """Beta(a, b): the usual model of a calibrated risk score in [0, 1]."""

    model_config = _STRICT
    kind: Literal["beta"] = Field(default="beta", description="Selects this kind.")
    a: float = Field(gt=0, description="First shape parameter (mean = a / (a + b)).")
    b: float = Field(gt=0, description="Second shape parameter.")

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return rng.beta(self.a, self.b, n)

    @property
    def expected(self) -> float:
        return self.a / (self.a + self.b)

    @property
    def second_moment(self) -> float:
        m = self.expected
        var = self.a * self.b / ((self.a + self.b) ** 2 * (self.a + self.b + 1))
        return var + m * m


class Empirical(BaseModel):
    """Resample (with replacement) from observed values, e.g. measured handling times."""

    model_config = _STRICT
    kind: Literal["empirical"] = Field(default="empirical", description="Selects this kind.")
    samples: list[float] = Field(min_length=1, description="Observed values (>= 0) to resample.")

    @model_validator(mode="after")
    def _non_negative(self) -> Empirical:
        if min(self.samples) < 0:
            raise ValueError("empirical samples must be >= 0")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        arr = np.asarray(self.samples, dtype=float)
        return arr[rng.integers(0, arr.size, n)]

    @property
    def expected(self) -> float:
        return float(np.mean(self.samples))

    @property
    def second_moment(self) -> float:
        return float(np.mean(np.square(self.samples)))


class Discrete(BaseModel):
    """A finite set of values with probabilities (e.g. severity levels)."""

    model_config = _STRICT
    kind: Literal["discrete"] = Field(default="discrete", description="Selects this kind.")
    values: list[float] = Field(min_length=1, description="The possible values.")
    probs: list[float] = Field(min_length=1, description="Their probabilities (sum to 1).")

    @model_validator(mode="after")
    def _check(self) -> Discrete:
        if len(self.values) != len(self.probs):
            raise ValueError("values and probs must have the same length")
        if min(self.probs) < 0 or abs(sum(self.probs) - 1.0) > 1e-6:
            raise ValueError("probs must be non-negative and sum to 1")
        return self

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        cdf = np.cumsum(self.probs)
        cdf[-1] = 1.0
        return np.asarray(self.values, dtype=float)[np.searchsorted(cdf, rng.random(n), "right")]

    @property
    def expected(self) -> float:
        return float(np.dot(self.values, self.probs))

    @property
    def second_moment(self) -> float:
        return float(np.dot(np.square(self.values), self.probs))


Distribution = Annotated[
    Exponential | LogNormal | Gamma | Deterministic | Uniform | Beta | Empirical | Discrete,
    Field(discriminator="kind"),
]
