"""Loading a trained model for inference without unpickling (see :mod:`dispatch.artifacts`)."""

from __future__ import annotations

import io
import json
import re
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from dispatch.artifacts.files import (
    ENV_FILE,
    TrainedRun,
    _legacy_norm_pickle,
    locate,
    norm_file,
)
from dispatch.artifacts.stats import NormStats, space_from_json
from dispatch.errors import ConfigError

__all__ = ["POLICIES", "LoadedModel", "load_model"]

#: Policy classes a model may name: (module, class) -> algorithm.
POLICIES = {
    ("stable_baselines3.common.policies", "ActorCriticPolicy"): "PPO",
    ("sb3_contrib.common.maskable.policies", "MaskableActorCriticPolicy"): "MaskablePPO",
}


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
