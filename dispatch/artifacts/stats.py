"""Normalisation statistics and spaces as JSON: what a trained policy needs besides weights."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.artifacts.files import read_json
from dispatch.errors import ConfigError
from dispatch.io import atomic_write_text

__all__ = ["NORM_FORMAT", "NormStats", "space_from_json", "space_to_json"]

NORM_FORMAT = "dispatch-vecnormalize"


# -- normalisation statistics ----------------------------------------------------------------
def _floats(values: Any, name: str, source: str) -> np.ndarray:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise ConfigError(f"'{name}' is not a list of numbers", source=source) from None
    if arr.ndim != 1 or not np.all(np.isfinite(arr)):
        raise ConfigError(f"'{name}' must be a flat list of finite numbers", source=source)
    return arr


@dataclass(frozen=True)
class NormStats:
    """``VecNormalize``'s running statistics, as JSON (written by ``dispatch train``).

    ``normalize`` applies them to raw observations exactly as
    ``VecNormalize.normalize_obs`` does; :meth:`restore` puts them into a ``VecNormalize``
    (to continue training with stable-baselines3 without its pickle).
    """

    norm_obs: bool
    mean: np.ndarray
    var: np.ndarray
    count: float
    epsilon: float
    clip_obs: float
    norm_reward: bool = False
    ret_mean: float = 0.0
    ret_var: float = 1.0
    ret_count: float = 1e-4
    clip_reward: float = 10.0
    gamma: float = 0.99

    @classmethod
    def from_vecnormalize(cls, vn: Any) -> NormStats:
        rms = vn.obs_rms
        if isinstance(rms, dict):
            raise ConfigError("only Box observations are supported (dict statistics)")
        ret = vn.ret_rms
        return cls(
            norm_obs=bool(vn.norm_obs),
            mean=np.asarray(rms.mean, dtype=np.float64).copy(),
            var=np.asarray(rms.var, dtype=np.float64).copy(),
            count=float(rms.count),
            epsilon=float(vn.epsilon),
            clip_obs=float(vn.clip_obs),
            norm_reward=bool(vn.norm_reward),
            ret_mean=float(np.asarray(ret.mean).reshape(-1)[0]),
            ret_var=float(np.asarray(ret.var).reshape(-1)[0]),
            ret_count=float(ret.count),
            clip_reward=float(vn.clip_reward),
            gamma=float(vn.gamma),
        )

    def restore(self, vn: Any) -> Any:
        """Copy the statistics into a ``VecNormalize`` wrapper (same observation shape)."""
        vn.norm_obs, vn.norm_reward = self.norm_obs, self.norm_reward
        vn.obs_rms.mean, vn.obs_rms.var = self.mean.copy(), self.var.copy()
        vn.obs_rms.count = self.count
        vn.ret_rms.mean, vn.ret_rms.var = np.float64(self.ret_mean), np.float64(self.ret_var)
        vn.ret_rms.count = self.ret_count
        vn.epsilon, vn.clip_obs, vn.clip_reward = self.epsilon, self.clip_obs, self.clip_reward
        vn.gamma = self.gamma
        return vn

    def normalize(self, obs: np.ndarray) -> np.ndarray:
        """Raw observation(s) -> what the network saw (float32), as ``normalize_obs``."""
        if not self.norm_obs:
            return np.asarray(obs)
        x = (obs - self.mean) / np.sqrt(self.var + self.epsilon)
        return np.clip(x, -self.clip_obs, self.clip_obs).astype(np.float32)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": NORM_FORMAT,
            "format_version": 1,
            "norm_obs": self.norm_obs,
            "obs_rms": {"mean": self.mean.tolist(), "var": self.var.tolist(), "count": self.count},
            "epsilon": self.epsilon,
            "clip_obs": self.clip_obs,
            "norm_reward": self.norm_reward,
            "ret_rms": {"mean": self.ret_mean, "var": self.ret_var, "count": self.ret_count},
            "clip_reward": self.clip_reward,
            "gamma": self.gamma,
        }

    def save(self, path: str | Path) -> None:
        atomic_write_text(Path(path), json.dumps(self.to_json(), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        """Read statistics written by :meth:`save`; a damaged file is one clear line."""
        src = str(path)
        data = read_json(Path(path))
        if data.get("format") != NORM_FORMAT:
            raise ConfigError(
                "not a normalisation statistics file written by `dispatch train` (damaged or "
                "replaced); retrain, or restore the file from the run folder",
                source=src,
            )
        try:
            obs, ret = data["obs_rms"], data["ret_rms"]
            mean = _floats(obs["mean"], "obs_rms.mean", src)
            var = _floats(obs["var"], "obs_rms.var", src)
            scalars = [
                float(x)
                for x in (
                    obs["count"],
                    data["epsilon"],
                    data["clip_obs"],
                    ret["mean"],
                    ret["var"],
                    ret["count"],
                    data["clip_reward"],
                    data["gamma"],
                )
            ]
            flags = bool(data["norm_obs"]), bool(data["norm_reward"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"damaged normalisation statistics (missing or bad field {exc}); retrain, or "
                "restore the file from the run folder",
                source=src,
            ) from None
        if mean.shape != var.shape or np.any(var < 0) or not all(map(math.isfinite, scalars)):
            raise ConfigError(
                "damaged normalisation statistics (mean/var shapes differ, a negative "
                "variance or a non-finite number); retrain, or restore the file",
                source=src,
            )
        count, eps, clip_obs, ret_mean, ret_var, ret_count, clip_reward, gamma = scalars
        return cls(
            flags[0], mean, var, count, eps, clip_obs, flags[1], ret_mean, ret_var, ret_count,
            clip_reward, gamma,
        )  # fmt: skip


# -- spaces -----------------------------------------------------------------------------------
def _bound(x: float) -> float | str:
    return float(x) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def space_to_json(space: Any) -> dict[str, Any]:
    """A ``Box`` or ``Discrete`` space as JSON (bounds exact; infinities as strings)."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return {"type": "Discrete", "n": int(space.n), "start": int(space.start)}
    if isinstance(space, spaces.Box):
        return {
            "type": "Box",
            "shape": list(space.shape),
            "dtype": str(space.dtype),
            "low": [_bound(x) for x in np.asarray(space.low, dtype=np.float64).ravel()],
            "high": [_bound(x) for x in np.asarray(space.high, dtype=np.float64).ravel()],
        }
    raise ConfigError(f"unsupported space {space} (only Box and Discrete)")


def space_from_json(data: dict[str, Any], source: str | None = None) -> Any:
    """The space :func:`space_to_json` described."""
    from gymnasium import spaces

    try:
        if data["type"] == "Discrete":
            return spaces.Discrete(int(data["n"]), start=int(data.get("start", 0)))
        if data["type"] == "Box":
            shape = tuple(int(n) for n in data["shape"])
            dtype = np.dtype(data["dtype"])
            low = np.asarray([float(x) for x in data["low"]], dtype=dtype).reshape(shape)
            high = np.asarray([float(x) for x in data["high"]], dtype=dtype).reshape(shape)
            return spaces.Box(low=low, high=high, shape=shape, dtype=dtype)
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"malformed space description ({exc})", source=source) from None
    raise ConfigError(f"unsupported space type {data.get('type')!r}", source=source)
