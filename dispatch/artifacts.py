"""The files of a trained run, and loading a model from them without running code from them.

``dispatch train`` writes a run folder; the ``learned`` policy, ``dispatch export`` and
experiments read it. This module is the one place that knows its files:

==================================  ==============================================================
file                                content
==================================  ==============================================================
``config.yaml``                     the resolved training config (``TrainConfig``)
``env.json``                        env kind and arguments, algo, observation and action names
                                    and spaces, scenario digest
``versions.json``, ``summary.json``  provenance and the training's outcome
``model.zip``                       the final model (stable-baselines3 ``save``)
``best_model.zip``                  the best model on the evaluation seeds (``checkpoint=best``)
``checkpoints/model_N_steps.zip``   periodic snapshots (``checkpoint_freq``)
``<model>.vecnormalize.json``       the ``VecNormalize`` statistics of that model file
                                    (``model.vecnormalize.json``, ...)
==================================  ==============================================================

One naming rule: the statistics of ``path/NAME.zip`` are ``path/NAME.vecnormalize.json``
(:func:`norm_file`); a checkpoint's run folder is the parent of ``checkpoints/``.

Loading never unpickles
-----------------------
A stable-baselines3 ``.zip`` stores the model's class parameters as JSON, except objects
JSON cannot hold (policy class, spaces, schedules, ``policy_kwargs`` with an activation
class, buffers), which it stores as cloudpickle payloads under ``:serialized:`` keys; its
weights are torch ``.pth`` files. SB3's own ``load`` unpickles all of it, and so would run
whatever code a tampered file carries. :func:`load_model` instead

* reads the ``data`` JSON as plain JSON and never decodes a ``:serialized:`` entry;
* names the policy class from the readable part of that entry and accepts only
  ``ActorCriticPolicy`` (PPO) and ``MaskableActorCriticPolicy`` (MaskablePPO);
* rebuilds the spaces from ``env.json`` (or the environment the run's arguments build, or
  the spaces the caller passes, e.g. ``dispatch export --scenario``) and ``policy_kwargs``
  from ``config.yaml`` when the zip holds them pickled (checked against their readable
  description); no schedule is needed for inference;
* constructs the policy as SB3 does and loads ``policy.pth`` with
  ``torch.load(..., weights_only=True)`` (tensors only; the optimizer state and
  ``pytorch_variables.pth`` are not read);
* reads the normalisation statistics from JSON (:class:`NormStats`).

A model that cannot be rebuilt that way (a zip from elsewhere without its run folder's
``env.json``, ``policy_kwargs`` pickled without a ``config.yaml``, an unknown policy class,
statistics only as an older ``vecnormalize.pkl``) is refused with one line, unless the
caller passes ``trust=True`` (``-p trust=true`` for the ``learned`` policy,
``dispatch export --trust-model``): then, and only then, SB3's ``load`` and ``pickle`` are
used. Pass it only for files whose source you trust.

Importing this module imports neither torch nor stable-baselines3.
"""

from __future__ import annotations

import io
import json
import math
import re
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dispatch.errors import ConfigError
from dispatch.io import atomic_write_text

__all__ = [
    "BEST_MODEL_FILE",
    "CHECKPOINT_DIR",
    "CONFIG_FILE",
    "ENV_FILE",
    "MODEL_FILE",
    "SUMMARY_FILE",
    "VERSIONS_FILE",
    "LoadedModel",
    "NormStats",
    "TrainedRun",
    "checkpoint_file",
    "load_model",
    "locate",
    "norm_file",
    "space_from_json",
    "space_to_json",
]

MODEL_FILE = "model.zip"
BEST_MODEL_FILE = "best_model.zip"
CHECKPOINT_DIR = "checkpoints"
ENV_FILE = "env.json"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
VERSIONS_FILE = "versions.json"
NORM_SUFFIX = ".vecnormalize.json"
CHECKPOINTS = {"final": MODEL_FILE, "best": BEST_MODEL_FILE}
NORM_FORMAT = "dispatch-vecnormalize"

#: Policy classes a model may name: (module, class) -> algorithm.
POLICIES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): "PPO",
    ("sb3_contrib.common.maskable.policies", "MaskableActorCriticPolicy"): "MaskablePPO",
}
ALGOS = {"ppo": "PPO", "maskable_ppo": "MaskablePPO"}


# -- names ------------------------------------------------------------------------------------
def norm_file(model_zip: str | Path) -> Path:
    """The normalisation statistics of a model file: ``NAME.zip`` -> ``NAME.vecnormalize.json``."""
    p = Path(model_zip)
    return p.with_name(p.name.removesuffix(".zip") + NORM_SUFFIX)


def checkpoint_file(run_dir: str | Path, num_timesteps: int) -> Path:
    """A periodic snapshot's model file (the naming of SB3's ``CheckpointCallback``)."""
    return Path(run_dir) / CHECKPOINT_DIR / f"model_{int(num_timesteps)}_steps.zip"


def _legacy_norm_pickle(model_zip: Path) -> Path:
    """Where run folders written before the JSON statistics kept them (a pickle)."""
    stem = model_zip.name.removesuffix(".zip")
    if stem.startswith("model_") and stem.endswith("_steps"):
        return model_zip.with_name(f"model_vecnormalize_{stem.removeprefix('model_')}.pkl")
    if stem == "model":
        return model_zip.with_name("vecnormalize.pkl")
    return model_zip.with_name(f"{stem.removesuffix('_model')}_vecnormalize.pkl")


def read_json(path: Path, *, field: str | None = None) -> dict[str, Any]:
    """A JSON object from ``path``; ``{}`` if there is no such file."""
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ConfigError(
            f"cannot read it as JSON ({exc})", source=str(path), field=field
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a JSON object", source=str(path), field=field)
    return data


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


# -- locating a model ---------------------------------------------------------------------------
@dataclass
class TrainedRun:
    """A model file and what its run folder (if any) says about it. Reading it runs nothing."""

    model: Path
    data: dict[str, Any]  # the zip's ``data`` entry as plain JSON (never deserialized)
    run_dir: Path | None  # None: a model file outside a `dispatch train` run folder
    env: dict[str, Any] = field(default_factory=dict)  # env.json
    config: dict[str, Any] | None = None  # config.yaml
    field: str | None = None  # the parameter that named it (for error messages)

    @property
    def kind(self) -> str | None:
        """``pull`` or ``batch``, as the run recorded it (``None`` outside a run)."""
        if self.env.get("env") is not None:
            return str(self.env["env"])
        return None if self.config is None else str(self.config.get("env", "pull"))

    @property
    def algo(self) -> str | None:
        algo = self.env.get("algo") or (self.config or {}).get("algo")
        return ALGOS.get(algo) if algo else None

    def env_kwargs(self) -> dict[str, Any]:
        """The environment's constructor arguments (``{}`` outside a run folder)."""
        if self.env:
            return dict(self.env.get("env_kwargs") or {})
        if self.config is not None:
            return self.train_config().env_kwargs()
        return {}

    def train_config(self):
        from dispatch.train_config import TrainConfig

        return TrainConfig.model_validate(self.config)

    def summary(self) -> dict[str, Any]:
        return read_json(self.run_dir / SUMMARY_FILE) if self.run_dir is not None else {}

    def versions(self) -> dict[str, Any]:
        return read_json(self.run_dir / VERSIONS_FILE) if self.run_dir is not None else {}

    def error(self, message: str) -> ConfigError:
        return ConfigError(message, source=str(self.model), field=self.field)


def _read_model_data(model: Path, field: str | None) -> dict[str, Any]:
    try:
        with zipfile.ZipFile(model) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ConfigError(
            f"not a stable-baselines3 model archive ({type(exc).__name__}: {exc}); expected "
            f"the {MODEL_FILE} written by `dispatch train`",
            source=str(model),
            field=field,
        ) from None
    if not isinstance(data, dict):
        raise ConfigError("not a stable-baselines3 model archive", source=str(model), field=field)
    return data


def _run_folder(folder: Path) -> Path | None:
    for cand in (folder, folder.parent) if folder.name == CHECKPOINT_DIR else (folder,):
        if (cand / ENV_FILE).is_file() or (cand / CONFIG_FILE).is_file():
            return cand
    return None


def locate(
    source: str | Path,
    checkpoint: Literal["final", "best"] = "final",
    *,
    field: str | None = None,
) -> TrainedRun:
    """The model of a run folder (``checkpoint`` final or best) or a model ``.zip``.

    Reads only JSON and YAML (the run's ``env.json`` and ``config.yaml``, the zip's
    ``data``), so it is cheap, needs no torch and is safe on any file.
    """
    import yaml

    p = Path(source).expanduser()
    if p.is_dir():
        model = p / CHECKPOINTS[checkpoint]
        if not model.is_file():
            raise ConfigError(
                f"no {model.name} in {p}; is it a run folder written by `dispatch train`"
                + (" with evaluation on?" if checkpoint == "best" else "?"),
                source=str(p),
                field=field,
            )
    elif p.is_file():
        model = p
    else:
        raise ConfigError(
            f"no run folder or model file at '{source}'", source=str(source), field=field
        )
    data = _read_model_data(model, field)
    run_dir = _run_folder(model.parent)
    env: dict[str, Any] = {}
    config = None
    if run_dir is not None:
        env = read_json(run_dir / ENV_FILE, field=field)
        if (run_dir / CONFIG_FILE).is_file():
            try:
                config = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise ConfigError(
                    f"cannot read the run's config ({exc})",
                    source=str(run_dir / CONFIG_FILE),
                    field=field,
                ) from None
            config = config if isinstance(config, dict) else None
    return TrainedRun(model=model, data=data, run_dir=run_dir, env=env, config=config, field=field)


# -- loading --------------------------------------------------------------------------------------
@dataclass
class LoadedModel:
    """A trained policy ready for inference, and where it came from."""

    policy: Any  # torch module: ActorCriticPolicy or MaskableActorCriticPolicy, eval mode
    algorithm: str  # "PPO" | "MaskablePPO"
    kind: str  # "pull" (Discrete actions) | "batch" (Box actions)
    observation_space: Any
    action_space: Any
    num_timesteps: int
    norm: NormStats | None  # None: no statistics (raw observations)
    norm_path: Path | None
    run: TrainedRun
    pickle_free: bool = True  # False only when loaded through the trust path

    @property
    def obs_norm(self) -> NormStats | None:
        """The statistics if the model was trained on normalised observations."""
        return self.norm if self.norm is not None and self.norm.norm_obs else None


class _NeedsUnpickling(Exception):
    """The pickle-free loader cannot rebuild this model; the message says what is missing."""


def load_model(
    source: str | Path | TrainedRun,
    checkpoint: Literal["final", "best"] = "final",
    *,
    trust: bool = False,
    spaces: tuple[Any, Any] | None = None,
    norm_path: str | Path | None = None,
    field: str | None = None,
    trust_flag: str = "trust=True",
) -> LoadedModel:
    """Load a trained model for inference without unpickling (see the module docstring).

    ``spaces`` (observation, action) stand in for the run's when the model file has no run
    folder (``dispatch export --scenario``); ``norm_path`` names statistics saved elsewhere.
    ``trust`` allows SB3's pickle-based loading for models that need it; the refusal
    message names ``trust_flag`` as the way to allow it.
    """
    run = source if isinstance(source, TrainedRun) else locate(source, checkpoint, field=field)
    stats_path = Path(norm_path) if norm_path is not None else norm_file(run.model)
    explicit = norm_path is not None
    pickle_free = True

    def refuse(why: _NeedsUnpickling) -> ConfigError:
        return run.error(
            f"loading this model needs unpickling ({why}), which runs code stored in the "
            "file; refusing. Keep models in the run folders `dispatch train` writes, or "
            f"pass {trust_flag} if you trust the file's source"
        )

    try:
        norm = _load_norm(run, stats_path, explicit)
    except _NeedsUnpickling as why:
        if not trust:
            raise refuse(why) from None
        norm, stats_path = _load_norm_trusted(run, stats_path)
        pickle_free = False
    try:
        policy, algorithm, obs_space, act_space = _load_pickle_free(run, spaces)
    except _NeedsUnpickling as why:
        if not trust:
            raise refuse(why) from None
        policy, algorithm, obs_space, act_space = _load_sb3_trusted(run)
        pickle_free = False
    return _finish(run, policy, algorithm, obs_space, act_space, norm, stats_path, pickle_free)


def _finish(run, policy, algorithm, obs_space, act_space, norm, stats_path, pickle_free):
    from gymnasium import spaces as gs

    if isinstance(act_space, gs.Discrete):
        kind = "pull"
    elif isinstance(act_space, gs.Box):
        kind = "batch"
    else:
        raise run.error(f"unsupported action space {act_space}")
    if run.kind not in (None, kind):
        raise run.error(f"the run says env {run.kind!r} but the model's actions are {kind!r}")
    if run.env.get("normalize_obs") and (norm is None or not norm.norm_obs):
        raise run.error(
            f"the run normalised observations but {norm_file(run.model).name} is missing "
            "next to the model"
        )
    if norm is not None and norm.norm_obs and norm.mean.shape != tuple(obs_space.shape):
        raise run.error(
            f"the normalisation statistics have shape {norm.mean.shape}, the model expects "
            f"{tuple(obs_space.shape)}"
        )
    policy.set_training_mode(False)
    return LoadedModel(
        policy=policy,
        algorithm=algorithm,
        kind=kind,
        observation_space=obs_space,
        action_space=act_space,
        num_timesteps=int(run.data.get("num_timesteps") or 0),
        norm=norm,
        norm_path=stats_path if norm is not None else None,
        run=run,
        pickle_free=pickle_free,
    )


def _load_norm(run: TrainedRun, path: Path, explicit: bool) -> NormStats | None:
    if path.suffix == ".pkl":
        raise _NeedsUnpickling(f"the statistics {path.name} are a pickle")
    if path.is_file():
        return NormStats.load(path)
    if explicit:
        raise ConfigError("no such normalisation statistics file", source=str(path))
    legacy = _legacy_norm_pickle(run.model)
    if legacy.is_file():
        raise _NeedsUnpickling(f"its statistics exist only as the pickle {legacy.name}")
    return None


def _policy_class(run: TrainedRun) -> tuple[type, str]:
    """The policy class and algorithm named by the zip's readable JSON (allow-listed)."""
    entry = run.data.get("policy_class")
    if not isinstance(entry, dict):
        raise _NeedsUnpickling("no readable policy class")
    module = str(entry.get("__module__", ""))
    m = re.match(r"<function (\w+)\.__init__ at ", str(entry.get("__init__", "")))
    name = m.group(1) if m else ""
    algorithm = POLICIES.get((module, name))
    if algorithm is None:
        raise _NeedsUnpickling(f"policy class {module}.{name or '?'} is not PPO/MaskablePPO's")
    if run.algo not in (None, algorithm):
        raise run.error(f"the run says algo {run.algo} but the model is a {algorithm} model")
    if algorithm == "MaskablePPO":
        from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy as cls
    else:
        from stable_baselines3.common.policies import ActorCriticPolicy as cls
    return cls, algorithm


def _run_spaces(run: TrainedRun, given: tuple[Any, Any] | None) -> tuple[Any, Any]:
    """(observation, action) space: env.json's, the caller's, or the run's rebuilt env."""
    if "observation_space" in run.env and "action_space" in run.env:
        src = str(run.run_dir / ENV_FILE) if run.run_dir else None
        return (
            space_from_json(run.env["observation_space"], src),
            space_from_json(run.env["action_space"], src),
        )
    if given is not None:
        return given
    if run.kind is not None and run.env_kwargs().get("scenario"):
        from dispatch.training import env_class

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            env = env_class(run.kind)(**run.env_kwargs())
        return env.observation_space, env.action_space
    raise _NeedsUnpickling(
        "no env.json of a `dispatch train` run next to it says its observation and action spaces"
    )


def _readable(entry: Any) -> dict[str, Any]:
    return (
        {k: v for k, v in entry.items() if not k.startswith(":")} if isinstance(entry, dict) else {}
    )


def _policy_kwargs(run: TrainedRun) -> dict[str, Any]:
    """``policy_kwargs``: plain JSON in the zip, else rebuilt from the run's config.yaml."""
    entry = run.data.get("policy_kwargs", {})
    if not (isinstance(entry, dict) and ":serialized:" in entry):
        return dict(entry or {})
    if run.config is None:
        raise _NeedsUnpickling("its policy_kwargs are pickled and no config.yaml rebuilds them")
    from dispatch.train_config import sb3_policy_kwargs

    kwargs = sb3_policy_kwargs(run.train_config())
    described = _readable(entry)
    rebuilt = {k: _as_described(v) for k, v in kwargs.items()}
    if rebuilt != described:
        raise run.error(
            f"the model's policy_kwargs {described} differ from the ones config.yaml gives "
            f"{rebuilt}: the model does not belong to this run folder"
        )
    return kwargs


def _as_described(value: Any) -> Any:
    """How SB3's ``data_to_json`` describes an item of a pickled dict: JSON, else ``str``."""
    try:
        return json.loads(json.dumps(value))
    except TypeError:
        return str(value)


def _declared_shape(entry: Any) -> tuple[int, ...] | None:
    shape = _readable(entry).get("_shape")
    try:
        return tuple(int(n) for n in (json.loads(shape) if isinstance(shape, str) else shape))
    except (TypeError, ValueError):
        return None


def _check_declared(run: TrainedRun, obs_space: Any, act_space: Any) -> None:
    """The zip's readable shapes must match the spaces the model is rebuilt with."""
    obs_shape = _declared_shape(run.data.get("observation_space"))
    if obs_shape is not None and obs_shape != tuple(obs_space.shape):
        raise run.error(
            f"the model expects observations of shape {obs_shape} but the scenario gives "
            f"{tuple(obs_space.shape)}: wrong scenario or overrides for this model"
        )
    n = _readable(run.data.get("action_space")).get("n")
    if n is not None and hasattr(act_space, "n") and str(n) != str(int(act_space.n)):
        raise run.error(
            f"the model has {n} actions but the scenario gives {int(act_space.n)}: wrong "
            "scenario for this model"
        )


def _load_pickle_free(run: TrainedRun, given: tuple[Any, Any] | None):
    """Construct the policy as SB3 does and load its weights (tensors only)."""
    cls, algorithm = _policy_class(run)
    obs_space, act_space = _run_spaces(run, given)
    _check_declared(run, obs_space, act_space)
    kwargs = _policy_kwargs(run)
    import torch

    extra = {"use_sde": bool(run.data.get("use_sde", False))} if algorithm == "PPO" else {}
    try:
        policy = cls(obs_space, act_space, lambda _: 0.0, **extra, **kwargs)
    except (TypeError, ValueError, AssertionError) as exc:
        raise run.error(f"cannot rebuild the policy ({type(exc).__name__}: {exc})") from None
    try:
        with zipfile.ZipFile(run.model) as z:
            raw = z.read("policy.pth")
        # Tensors only: the restricted unpickler refuses any other object.
        state = torch.load(io.BytesIO(raw), map_location="cpu", weights_only=True)
        policy.load_state_dict(state)
    except Exception as exc:  # noqa: BLE001 - refused unpickling, damaged file, shape mismatch
        text = " ".join(str(exc).split())[:300]
        raise run.error(
            f"cannot load the policy weights ({type(exc).__name__}: {text}); is the model "
            "damaged, or trained on another scenario (observation/action shape)?"
        ) from None
    return policy, algorithm, obs_space, act_space


# -- the trust path -------------------------------------------------------------------------------
# TRUSTED FILES ONLY (``trust=True``): SB3's ``load`` and ``pickle`` run code the files hold.
def _load_sb3_trusted(run: TrainedRun):
    """The model through stable-baselines3's own (unpickling) ``load``."""
    algorithm = run.algo
    if algorithm is None:
        module = str(_readable(run.data.get("policy_class")).get("__module__", ""))
        algorithm = "MaskablePPO" if module.startswith("sb3_contrib") else "PPO"
    if algorithm == "MaskablePPO":
        from sb3_contrib import MaskablePPO as Algo
    else:
        from stable_baselines3 import PPO as Algo
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = Algo.load(str(run.model), device="cpu")  # TRUST PATH: unpickles
    except Exception as exc:  # noqa: BLE001 - report any load failure as one line
        raise run.error(
            f"cannot load the {algorithm} model ({type(exc).__name__}: {exc})"
        ) from None
    return model.policy, algorithm, model.observation_space, model.action_space


def _load_norm_trusted(run: TrainedRun, stats_path: Path) -> tuple[NormStats | None, Path]:
    """Statistics from a ``VecNormalize`` pickle (older run folders, or named explicitly)."""
    import pickle

    pkl = stats_path if stats_path.suffix == ".pkl" else _legacy_norm_pickle(run.model)
    if not pkl.is_file():
        raise ConfigError("no such normalisation statistics file", source=str(pkl))
    try:
        with open(pkl, "rb") as fh:
            vn = pickle.load(fh)  # TRUST PATH ONLY: runs code stored in the file
        return NormStats.from_vecnormalize(vn), pkl
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ConfigError(
            f"cannot load the VecNormalize statistics ({type(exc).__name__}: {exc})",
            source=str(pkl),
        ) from None
