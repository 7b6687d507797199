"""Training configuration files for ``dispatch train`` (validated, no code in strings).

In the spirit of rl-baselines3-zoo's hyperparameter files, but a strict schema: unknown
keys are rejected, activation functions come from a fixed name map, and learning-rate
schedules are data (``{schedule: linear, initial: 3e-4, final: 1e-5}``), never ``eval``-ed
strings. Every field is documented below (CleanRL style). A minimal file::

    algo: maskable_ppo
    env: pull
    scenario: ../scenarios/ecommerce_day.yaml     # relative to this file (or the cwd)
    n_timesteps: 200000
    hyperparameters: {n_steps: 1024, batch_size: 256}

Relative paths are looked up next to the config file first, then in the current directory.
Load with :func:`load_train_config`; every problem is one :class:`~dispatch.errors.ConfigError`
line naming the file and the field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from dispatch.errors import ConfigError
from dispatch.io import find_file
from dispatch.objective import Objective
from dispatch.scenario import apply_overrides, format_validation_error, read_yaml

__all__ = [
    "ACTIVATIONS",
    "EvalConfig",
    "Hyperparameters",
    "LinearSchedule",
    "NormalizeConfig",
    "PolicyKwargs",
    "TrainConfig",
    "load_train_config",
    "sb3_policy_kwargs",
]

_CFG = ConfigDict(extra="forbid", use_attribute_docstrings=True)

#: Names accepted for ``policy_kwargs.activation_fn`` -> attribute of ``torch.nn``.
ACTIVATIONS = {
    "tanh": "Tanh",
    "relu": "ReLU",
    "elu": "ELU",
    "leaky_relu": "LeakyReLU",
    "gelu": "GELU",
    "silu": "SiLU",
}


class LinearSchedule(BaseModel):
    """A value annealed linearly from ``initial`` (start of training) to ``final`` (end)."""

    model_config = _CFG
    schedule: Literal["linear"]
    """The schedule's kind; only ``linear`` is supported."""
    initial: float = Field(gt=0)
    """Value at the start of training."""
    final: float = Field(ge=0)
    """Value at the end of training."""


class Hyperparameters(BaseModel):
    """PPO hyperparameters (stable-baselines3 names and defaults)."""

    model_config = _CFG
    learning_rate: Annotated[float, Field(gt=0)] | LinearSchedule = 3e-4
    """Adam learning rate: a constant, or ``{schedule: linear, initial, final}``."""
    n_steps: int = Field(default=2048, ge=1)
    """Steps collected per environment between updates (rollout length)."""
    batch_size: int = Field(default=64, ge=2)
    """Minibatch size of the PPO update; at most ``n_steps x n_envs``."""
    n_epochs: int = Field(default=10, ge=1)
    """Passes over each rollout."""
    gamma: float = Field(default=0.99, gt=0, le=1)
    """Discount factor."""
    gae_lambda: float = Field(default=0.95, ge=0, le=1)
    """GAE bias/variance trade-off."""
    clip_range: float = Field(default=0.2, gt=0)
    """PPO clipping of the policy ratio."""
    ent_coef: float = Field(default=0.0, ge=0)
    """Entropy bonus weight."""
    vf_coef: float = Field(default=0.5, ge=0)
    """Value-loss weight."""
    max_grad_norm: float = Field(default=0.5, gt=0)
    """Gradient clipping norm."""
    target_kl: float | None = Field(default=None, gt=0)
    """Stop an update early when the approximate KL exceeds this (off by default)."""


Layer = Annotated[int, Field(ge=1)]


class NetArch(BaseModel):
    """Separate hidden layers for the policy (``pi``) and value (``vf``) networks."""

    model_config = _CFG
    pi: list[Layer] = Field(min_length=1)
    """Hidden layer sizes of the policy network."""
    vf: list[Layer] = Field(min_length=1)
    """Hidden layer sizes of the value network."""


class PolicyKwargs(BaseModel):
    """Network shape (``MlpPolicy``)."""

    model_config = _CFG
    net_arch: list[Layer] | NetArch = Field(default_factory=lambda: [64, 64])
    """Hidden layers shared by policy and value (a list) or ``{pi: [...], vf: [...]}``."""
    activation_fn: Literal["tanh", "relu", "elu", "leaky_relu", "gelu", "silu"] = "tanh"
    """Activation between hidden layers (a fixed name map, see ``ACTIVATIONS``)."""
    ortho_init: bool = True
    """Orthogonal initialisation of the weights."""
    log_std_init: float = 0.0
    """Batch env (Gaussian actions): initial log standard deviation of the action noise."""


class NormalizeConfig(BaseModel):
    """Running normalisation of observations and rewards (``VecNormalize``)."""

    model_config = _CFG
    obs: bool = False
    """Normalise observations with running mean/variance (saved as model.vecnormalize.json)."""
    reward: bool = False
    """Scale rewards by a running estimate of the discounted return's std."""
    clip_obs: float = Field(default=10.0, gt=0)
    """Clip normalised observations to +-clip_obs."""
    clip_reward: float = Field(default=10.0, gt=0)
    """Clip normalised rewards to +-clip_reward."""


class EvalConfig(BaseModel):
    """Periodic evaluation on fixed simulation seeds (EvalCallback / MaskableEvalCallback)."""

    model_config = _CFG
    freq: int = Field(default=0, ge=0)
    """Evaluate every this many environment steps (summed over envs); 0 = never."""
    seeds: list[int] = Field(default_factory=lambda: [10_000, 10_001], min_length=1)
    """Simulation seeds of the evaluation episodes (as ``dispatch simulate --seed``); the
    same days are replayed at every evaluation, so the history is comparable."""
    n_episodes: int | None = Field(default=None, ge=1)
    """Episodes per evaluation; default one per seed (seeds are cycled if larger)."""
    deterministic: bool = True
    """Evaluate the greedy (most likely) action rather than sampling."""
    horizon: float | None = Field(default=None, gt=0)
    """Minutes per evaluation episode; default the training ``horizon``."""

    @property
    def episodes(self) -> int:
        return self.n_episodes if self.n_episodes is not None else len(self.seeds)


class TrainConfig(BaseModel):
    """One training run: environment, algorithm, hyperparameters, logging."""

    model_config = _CFG
    algo: Literal["ppo", "maskable_ppo"] = "maskable_ppo"
    """``ppo`` (stable-baselines3; invalid pull actions fall back to FIFO) or
    ``maskable_ppo`` (sb3-contrib; invalid actions masked, pull env only)."""
    env: Literal["pull", "batch"] = "pull"
    """``pull`` (dispatch/AuditDispatch-v0: a free reviewer picks a bucket) or ``batch``
    (dispatch/BatchDispatch-v0: per-bucket weights for a batch assignment)."""
    scenario: str
    """Scenario YAML file (relative to this config file, or the current directory)."""
    scenario_overrides: dict[str, Any] = Field(default_factory=dict)
    """Dotted-path scenario overrides, as ``dispatch simulate --set``."""
    horizon: float | None = Field(default=None, gt=0)
    """Minutes per training episode; default the scenario's horizon."""
    reward: Literal["objective", "holding_cost"] = "objective"
    """Reward: change of the comparison objective, or the holding-cost integral (c-mu)."""
    reward_scale: float | None = Field(default=None, gt=0)
    """Multiplier of every reward; default the environment's (pull 1.0, batch 0.05)."""
    objective: Objective = Field(default_factory=Objective)
    """Weights of the comparison objective (``dispatch.objective.Objective``)."""
    interval: float = Field(default=5.0, gt=0)
    """Batch env only: minutes between the agent's decisions."""
    on_demand: bool = True
    """Batch env only: also assign when work or a reviewer becomes free."""
    assigner: Literal["weighted", "flow"] = "weighted"
    """Batch env only: ``weighted`` (WeightedAssigner) or ``flow`` (the flow policy's
    min-cost flow with the weights as per-bucket value bonuses)."""
    assigner_params: dict[str, Any] | None = None
    """Batch env, ``assigner: flow`` only: flow policy parameters (default its defaults)."""
    weight_scale: float = Field(default=1.0, gt=0)
    """Batch env, ``assigner: flow`` only: value bonus (objective units) per unit weight."""
    n_envs: int = Field(default=1, ge=1)
    """Parallel environments."""
    vec_env: Literal["dummy", "subproc"] = "dummy"
    """``dummy`` (all envs in this process) or ``subproc`` (one process per env)."""
    n_timesteps: int = Field(ge=1)
    """Environment steps to train for (summed over envs)."""
    seed: int = Field(default=0, ge=0)
    """Seed of the model, the environments' seed sequence and torch."""
    policy_kwargs: PolicyKwargs = Field(default_factory=PolicyKwargs)
    """Network architecture."""
    hyperparameters: Hyperparameters = Field(default_factory=Hyperparameters)
    """PPO hyperparameters."""
    normalize: NormalizeConfig = Field(default_factory=NormalizeConfig)
    """Observation / reward normalisation."""
    eval: EvalConfig = Field(default_factory=EvalConfig)
    """Periodic evaluation."""
    checkpoint_freq: int = Field(default=0, ge=0)
    """Save a checkpoint every this many environment steps (summed over envs); 0 = never."""
    tensorboard: bool = False
    """Write TensorBoard logs to ``tb/`` in the run folder."""
    progress_bar: bool = False
    """Show a progress bar (needs tqdm and rich)."""
    torch_threads: int = Field(default=1, ge=1)
    """torch.set_num_threads in the training process (1 is fastest for small MLPs)."""
    verbose: int = Field(default=0, ge=0, le=2)
    """stable-baselines3 verbosity (0 quiet, 1 progress tables)."""

    def env_kwargs(self) -> dict[str, Any]:
        """Constructor arguments of the environment (the scenario path must be resolved)."""
        kw: dict[str, Any] = {
            "scenario": self.scenario,
            "objective": self.objective.model_dump(),
            "horizon": self.horizon,
            "scenario_overrides": dict(self.scenario_overrides) or None,
            "reward": self.reward,
        }
        if self.reward_scale is not None:
            kw["reward_scale"] = self.reward_scale
        if self.env == "batch":
            kw["interval"] = self.interval
            kw["on_demand"] = self.on_demand
            if self.assigner != "weighted":  # default runs keep their env.json unchanged
                kw["assigner"] = self.assigner
                kw["assigner_params"] = self.assigner_params
                kw["weight_scale"] = self.weight_scale
        return kw


def sb3_policy_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """The ``policy_kwargs`` stable-baselines3 gets for ``cfg`` (imports ``torch.nn``).

    Training builds its model with them, and :mod:`dispatch.artifacts` rebuilds a trained
    policy with them, so the two never disagree.
    """
    import torch.nn as nn

    pk = cfg.policy_kwargs
    arch = pk.net_arch if isinstance(pk.net_arch, list) else pk.net_arch.model_dump()
    out: dict[str, Any] = {
        "net_arch": arch,
        "activation_fn": getattr(nn, ACTIVATIONS[pk.activation_fn]),
        "ortho_init": pk.ortho_init,
    }
    if cfg.env == "batch":
        out["log_std_init"] = pk.log_std_init
    return out


def load_train_config(
    source: str | Path | dict[str, Any], overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """Read, override (dotted paths) and validate a training config; resolve the scenario.

    ``source`` is a YAML path or an already-parsed mapping (relative paths then resolve
    against the current directory). Raises :class:`ConfigError` naming the field.
    """
    if isinstance(source, dict):
        data, where, base = dict(source), None, None
    else:
        p = Path(source)
        data, where, base = read_yaml(p), str(p), p.parent.resolve()
    data = apply_overrides(data, overrides)
    try:
        cfg = TrainConfig.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, source=where) from None
    _cross_check(cfg, where)
    found = find_file(cfg.scenario, base)
    if found is None:
        raise ConfigError(
            f"scenario file '{cfg.scenario}' not found (looked next to the config file and in "
            "the current directory)",
            source=where,
            field="scenario",
        )
    return cfg.model_copy(update={"scenario": str(found)})


def _cross_check(cfg: TrainConfig, where: str | None) -> None:
    if cfg.algo == "maskable_ppo" and cfg.env != "pull":
        raise ConfigError(
            "maskable_ppo needs env: pull (the batch env's actions are continuous weights, "
            "nothing to mask); use algo: ppo",
            source=where,
            field="algo",
        )
    hp = cfg.hyperparameters
    rollout = hp.n_steps * cfg.n_envs
    if rollout < 2:
        raise ConfigError(
            "n_steps x n_envs must be at least 2", source=where, field="hyperparameters.n_steps"
        )
    if hp.batch_size > rollout:
        raise ConfigError(
            f"{hp.batch_size} exceeds the rollout size n_steps x n_envs = {rollout}; lower it "
            "or raise n_steps",
            source=where,
            field="hyperparameters.batch_size",
        )
