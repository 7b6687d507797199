"""The trained model an export starts from: located and loaded pickle-free, checked against
the environment it was trained in (rebuilt from the run's ``env.json`` / ``config.yaml``, or
from the ``scenario`` and ``env_kwargs`` given for a model file outside a run folder).
"""

from __future__ import annotations

import inspect
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dispatch.artifacts import LoadedModel, NormStats, TrainedRun, load_model, locate
from dispatch.errors import ConfigError

__all__ = ["TrainedModel", "load_trained", "make_env"]


@dataclass
class TrainedModel:
    """A loaded training run: the policy and what the export needs to describe it."""

    loaded: LoadedModel
    env_kwargs: dict[str, Any]  # constructor arguments of the env, incl. "scenario"
    env: Any = None  # the training environment (names, spaces, scenario)
    run_id: str | None = None

    @property
    def run(self) -> TrainedRun:
        return self.loaded.run

    @property
    def policy(self) -> Any:
        return self.loaded.policy

    @property
    def algorithm(self) -> str:
        return self.loaded.algorithm

    @property
    def kind(self) -> str:
        return self.loaded.kind

    @property
    def model_path(self) -> Path:
        return self.run.model

    @property
    def run_dir(self) -> Path | None:
        return self.run.run_dir

    @property
    def obs_norm(self) -> NormStats | None:
        return self.loaded.obs_norm

    @property
    def vecnormalize_path(self) -> Path | None:
        return self.loaded.norm_path

    @property
    def env_info(self) -> dict[str, Any]:
        return self.run.env


def _env_class(kind: str):
    if kind == "pull":
        from envs.audit_dispatch import AuditDispatchEnv as cls
    else:
        from envs.batch_dispatch import BatchDispatchEnv as cls
    return cls


def make_env(kind: str, kwargs: dict[str, Any], model_path: Path):
    """The training environment, built only to read its names, spaces and scenario."""
    cls = _env_class(kind)
    if kwargs.get("scenario") is None:
        raise ConfigError(
            "the training scenario is unknown (no env.json or config.yaml of a `dispatch "
            "train` run next to the model); pass --scenario (the scenario file it was "
            "trained on)",
            source=str(model_path),
        )
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "render_mode"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"unknown environment argument(s) {', '.join(unknown)} for the {kind} env",
            source=str(model_path),
        )
    return cls(**kwargs)


def _declared_kind(run: TrainedRun) -> str:
    """pull or batch from the zip's readable action-space type (a model without a run)."""
    entry = run.data.get("action_space")
    kind = str(entry.get(":type:", "")) if isinstance(entry, dict) else ""
    return "batch" if "Box" in kind else "pull"


def load_trained(
    source: str | Path,
    *,
    vecnormalize: str | Path | None = None,
    scenario: Any = None,
    env_kwargs: dict[str, Any] | None = None,
    trust: bool = False,
) -> TrainedModel:
    """Load a ``dispatch train`` run folder (its ``model.zip``) or one of its model files
    (``model.zip``, ``best_model.zip``, a checkpoint), without unpickling, with its training
    environment (``env``: built to read names, spaces and the scenario).

    For a model file outside a run folder give ``scenario`` (path or
    :class:`~dispatch.scenario.Scenario`) and ``env_kwargs`` (``horizon``,
    ``scenario_overrides``, ``interval``, ...); they also override the run's own values.
    The statistics saved next to the model are used unless ``vecnormalize`` names another
    file. ``trust`` allows models that need unpickling (see :mod:`dispatch.artifacts`).
    """
    run = locate(source)
    kwargs = run.env_kwargs()
    kwargs.update(env_kwargs or {})
    if scenario is not None:
        kwargs["scenario"] = scenario
    kind = run.kind or _declared_kind(run)
    env = make_env(kind, kwargs, run.model)
    loaded = load_model(
        run,
        trust=trust,
        spaces=(env.observation_space, env.action_space),
        norm_path=vecnormalize,
        trust_flag="--trust-model",
    )
    run_id = run.run_dir.resolve().name if run.run_dir is not None else None
    if loaded.kind != kind:
        env = make_env(loaded.kind, kwargs, run.model)
    tm = TrainedModel(loaded=loaded, env_kwargs=kwargs, env=env, run_id=run_id)
    check_spaces(tm, env)
    return tm


def check_spaces(tm: TrainedModel, env: Any) -> None:
    from gymnasium import spaces

    mo, eo = tm.loaded.observation_space, env.observation_space
    if mo.shape != eo.shape:
        raise ConfigError(
            f"the model expects observations of shape {mo.shape} but the scenario gives "
            f"{eo.shape}: wrong scenario or overrides for this model",
            source=str(tm.model_path),
        )
    ma, ea = tm.loaded.action_space, env.action_space
    same = (
        isinstance(ma, spaces.Discrete) and isinstance(ea, spaces.Discrete) and ma.n == ea.n
    ) or (isinstance(ma, spaces.Box) and isinstance(ea, spaces.Box) and ma.shape == ea.shape)
    if not same:
        raise ConfigError(
            f"the model's action space {ma} does not match the environment's {ea}",
            source=str(tm.model_path),
        )
    if tm.obs_norm is not None and tm.obs_norm.mean.shape != mo.shape:
        raise ConfigError(
            f"the VecNormalize statistics have shape {tm.obs_norm.mean.shape}, the model "
            f"expects {mo.shape}",
            source=str(tm.model_path),
        )
    info = tm.env_info
    for key, now in (
        ("observation_names", env.observation_names()),
        ("action_names", env.action_names()),
    ):
        then = info.get(key)
        if then is not None and list(then) != now:
            raise ConfigError(
                f"the scenario's {key.replace('_', ' ')} differ from the ones recorded at "
                "training (env.json): the scenario file changed since; restore it or pass "
                "--scenario with the original",
                source=str(tm.model_path),
            )
    from dispatch.observation import layout_digest

    then = info.get("scenario_digest")
    if then is not None and then != layout_digest(env.scenario):
        warnings.warn(
            f"the scenario {env.scenario.name!r} differs from the one recorded at training "
            "(same layout, other parameters): the sidecar records the current file's digest",
            stacklevel=3,
        )
