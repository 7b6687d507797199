"""``dispatch train``: PPO / MaskablePPO dispatchers on the Gymnasium environments.

:func:`train` reads a :mod:`dispatch.train_config` file and runs three steps: :func:`build`
(the run folder's metadata, the vectorised environments ``envs.AuditDispatchEnv`` or
``envs.BatchDispatchEnv``, the stable-baselines3 / sb3-contrib model and its callbacks),
:func:`learn` and :func:`write` (the final model and summary). One self-describing run
folder comes out (names: :mod:`dispatch.artifacts`):

================================  ============================================================
file                              content
================================  ============================================================
``config.yaml``                   the resolved config (defaults filled in, absolute scenario
                                  path)
``versions.json``                 python, torch, stable-baselines3, sb3-contrib, gymnasium,
                                  numpy, dispatch, git revision (and whether it was dirty)
``env.json``                      how to rebuild the observation and the model: env kind and
                                  arguments, algo, observation and action names and spaces,
                                  scenario digest (ignoring horizon and warm-up)
``model.zip``                     the final model (``PPO`` / ``MaskablePPO`` ``.save``)
``model.vecnormalize.json``       its VecNormalize statistics (with ``normalize.obs/reward``)
``best_model.zip``                the best model on the evaluation seeds (evaluation on) ...
``best_model.vecnormalize.json``  ... and its statistics
``eval.csv``                      evaluation history: timesteps, mean/std reward and cost
``evaluations.npz``               the same, as EvalCallback records it (per-episode rewards)
``summary.json``                  status (running, completed, failed with the error),
                                  timesteps, wall time, final and best evaluation, files
``checkpoints/``, ``tb/``         snapshots ``model_N_steps.zip`` (+ statistics), TensorBoard
================================  ============================================================

Files are written to a temporary name and renamed (:mod:`dispatch.io`), so a crash never
leaves a half-written model behind. Nothing in the folder needs unpickling to be used:
:func:`dispatch.artifacts.load_model` rebuilds the policy from ``env.json`` and
``config.yaml`` and reads only the weights (tensors) from ``model.zip``. To continue
training with stable-baselines3, ``NormStats.load(...).restore(vec_normalize)``.

A training that raises (or is interrupted) after the folder was created leaves
``summary.json`` with ``status: failed`` and the error, never ``running``.

torch and stable-baselines3 are imported inside the functions that need them; the training
process sets ``torch.set_num_threads(torch_threads)`` (1 by default) before building any
model.
"""

from __future__ import annotations

import contextlib
import json
import time
import traceback
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from dispatch.artifacts import (
    BEST_MODEL_FILE,
    CHECKPOINT_DIR,
    CONFIG_FILE,
    ENV_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    VERSIONS_FILE,
    norm_file,
    space_to_json,
)
from dispatch.errors import ConfigError
from dispatch.io import atomic_write_text
from dispatch.observation import layout_digest
from dispatch.provenance import LEARNING_PACKAGES, versions
from dispatch.train_callbacks import checkpoint_callback, eval_callback, save_model
from dispatch.train_config import TrainConfig, load_train_config, sb3_policy_kwargs

__all__ = [
    "SeedCycle",
    "TrainingSession",
    "build",
    "env_class",
    "learn",
    "make_env",
    "train",
    "write",
]


# -- environments -----------------------------------------------------------------------------
class SeedCycle(gym.Wrapper):
    """Runs episodes on a fixed list of simulation seeds, in order, cycling.

    ``restart_seeds()`` goes back to the first seed, so every evaluation replays the same
    simulated days (``options={"sim_seed": s}`` of the dispatch environments).
    """

    def __init__(self, env: gym.Env, seeds: list[int]):
        super().__init__(env)
        self.seeds = [int(s) for s in seeds]
        self._i = 0

    def restart_seeds(self) -> None:
        self._i = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        opts = dict(options or {})
        opts.setdefault("sim_seed", self.seeds[self._i % len(self.seeds)])
        self._i += 1
        return self.env.reset(seed=seed, options=opts)


def env_class(kind: str) -> type[gym.Env]:
    """The environment class of an ``env:`` kind (``pull`` or ``batch``)."""
    if kind == "pull":
        from envs.audit_dispatch import AuditDispatchEnv

        return AuditDispatchEnv
    if kind == "batch":
        from envs.batch_dispatch import BatchDispatchEnv

        return BatchDispatchEnv
    raise ConfigError(f"unknown env kind {kind!r}; use pull or batch", field="env")


def make_env(kind: str, kwargs: dict[str, Any], sim_seeds: list[int] | None = None) -> gym.Env:
    """One monitored dispatch environment (``kind`` ``pull`` or ``batch``).

    Top-level and argument-only, so ``partial(make_env, ...)`` pickles for SubprocVecEnv.
    """
    from stable_baselines3.common.monitor import Monitor

    env: gym.Env = env_class(kind)(**kwargs)
    if sim_seeds:
        env = SeedCycle(env, sim_seeds)
    return Monitor(env, info_keywords=("episode_cost",))


def _lr_schedule(cfg: TrainConfig):
    lr = cfg.hyperparameters.learning_rate
    if isinstance(lr, float):
        return lr
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(lr.initial, lr.final, 1.0)


def _default_out(config_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config_name}-{stamp}"


# -- the three steps -----------------------------------------------------------------------------
@dataclass
class TrainingSession:
    """Everything :func:`build` set up for :func:`learn` and :func:`write`."""

    cfg: TrainConfig
    name: str
    run_dir: Path
    env_kwargs: dict[str, Any]
    probe: Any  # one environment, built up front (names, spaces, scenario)
    summary: dict[str, Any]
    venv: Any = None
    model: Any = None
    callbacks: list[Any] = field(default_factory=list)
    eval_cb: Any = None
    wall_seconds: float = 0.0

    def write_summary(self) -> None:
        atomic_write_text(
            self.run_dir / SUMMARY_FILE, json.dumps(self.summary, indent=2, default=str) + "\n"
        )


def resolve_config(
    config: str | Path | TrainConfig,
    overrides: dict[str, Any] | None = None,
    timesteps: int | None = None,
    seed: int | None = None,
) -> tuple[TrainConfig, str]:
    """(validated config with the overrides applied, run name)."""
    if isinstance(config, TrainConfig):
        cfg, name = config, "train"
        if overrides:
            cfg = load_train_config(cfg.model_dump(mode="json"), overrides)
    else:
        cfg, name = load_train_config(config, overrides), Path(config).stem
    upd: dict[str, Any] = {}
    if timesteps is not None:
        if timesteps < 1:
            raise ConfigError(f"must be >= 1, got {timesteps}", field="--timesteps")
        upd["n_timesteps"] = int(timesteps)
    if seed is not None:
        if seed < 0:
            raise ConfigError(f"must be >= 0, got {seed}", field="--seed")
        upd["seed"] = int(seed)
    return (cfg.model_copy(update=upd) if upd else cfg), name


def _write_metadata(session: TrainingSession) -> None:
    """config.yaml, versions.json, env.json and a "running" summary.json."""
    cfg, probe, run_dir = session.cfg, session.probe, session.run_dir
    atomic_write_text(run_dir / CONFIG_FILE, yaml.safe_dump(cfg.model_dump(mode="json")))
    atomic_write_text(
        run_dir / VERSIONS_FILE, json.dumps(versions(LEARNING_PACKAGES), indent=2) + "\n"
    )
    info = {
        "env": cfg.env,
        "algo": cfg.algo,
        "env_kwargs": {**session.env_kwargs, "reward_scale": probe.reward_scale},
        "scenario_name": probe.scenario.name,
        "scenario_digest": layout_digest(probe.scenario),
        "observation_names": probe.observation_names(),
        "action_names": probe.action_names(),
        "normalize_obs": cfg.normalize.obs,
        "observation_space": space_to_json(probe.observation_space),
        "action_space": space_to_json(probe.action_space),
    }
    atomic_write_text(run_dir / ENV_FILE, json.dumps(info, indent=2) + "\n")
    session.write_summary()


def build(session: TrainingSession, quiet: bool = True) -> None:
    """The vectorised environments (with VecNormalize), the model and its callbacks."""
    import torch

    cfg = session.cfg
    torch.set_num_threads(cfg.torch_threads)
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    fns = [partial(make_env, cfg.env, session.env_kwargs) for _ in range(cfg.n_envs)]
    venv = SubprocVecEnv(fns) if cfg.vec_env == "subproc" else DummyVecEnv(fns)
    session.venv = venv  # closed by train() whatever happens next
    hp, norm = cfg.hyperparameters, cfg.normalize
    if norm.obs or norm.reward:
        venv = session.venv = VecNormalize(
            venv,
            norm_obs=norm.obs,
            norm_reward=norm.reward,
            clip_obs=norm.clip_obs,
            clip_reward=norm.clip_reward,
            gamma=hp.gamma,
        )
    if cfg.algo == "maskable_ppo":
        from sb3_contrib import MaskablePPO as Algo
    else:
        from stable_baselines3 import PPO as Algo
    session.model = Algo(
        "MlpPolicy",
        venv,
        learning_rate=_lr_schedule(cfg),
        n_steps=hp.n_steps,
        batch_size=hp.batch_size,
        n_epochs=hp.n_epochs,
        gamma=hp.gamma,
        gae_lambda=hp.gae_lambda,
        clip_range=hp.clip_range,
        ent_coef=hp.ent_coef,
        vf_coef=hp.vf_coef,
        max_grad_norm=hp.max_grad_norm,
        target_kl=hp.target_kl,
        policy_kwargs=sb3_policy_kwargs(cfg),
        tensorboard_log=str(session.run_dir / "tb") if cfg.tensorboard else None,
        seed=cfg.seed,
        device="cpu",
        verbose=cfg.verbose if not quiet else 0,
    )
    _add_callbacks(session)


def _add_callbacks(session: TrainingSession) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    cfg, run_dir = session.cfg, session.run_dir
    if cfg.eval.freq > 0:
        ekw = dict(session.env_kwargs)
        if cfg.eval.horizon is not None:
            ekw["horizon"] = cfg.eval.horizon
        eval_venv = DummyVecEnv([partial(make_env, cfg.env, ekw, cfg.eval.seeds)])
        if isinstance(session.venv, VecNormalize):
            eval_venv = VecNormalize(
                eval_venv,
                training=False,
                norm_obs=cfg.normalize.obs,
                norm_reward=False,
                clip_obs=cfg.normalize.clip_obs,
            )
        session.eval_cb = eval_callback(
            cfg.algo == "maskable_ppo",
            eval_env=eval_venv,
            n_eval_episodes=cfg.eval.episodes,
            eval_freq=max(cfg.eval.freq // cfg.n_envs, 1),
            deterministic=cfg.eval.deterministic,
            verbose=0,
            warn=False,
            run_dir=run_dir,  # evaluations.npz there: SB3's own record of the history
            reward_scale=session.probe.reward_scale,
        )
        session.callbacks.append(session.eval_cb)
    if cfg.checkpoint_freq > 0:
        freq = max(cfg.checkpoint_freq // cfg.n_envs, 1)
        session.callbacks.append(checkpoint_callback(freq, run_dir))


def learn(session: TrainingSession) -> None:
    """Train for ``n_timesteps`` (wall time in ``session.wall_seconds``)."""
    t0 = time.perf_counter()
    try:
        session.model.learn(
            total_timesteps=session.cfg.n_timesteps,
            callback=session.callbacks or None,
            progress_bar=session.cfg.progress_bar,
            tb_log_name="run",
        )
    finally:
        session.wall_seconds = time.perf_counter() - t0


def write(session: TrainingSession) -> None:
    """The final model (and statistics) and the completed summary."""
    cfg, run_dir, model, eval_cb = session.cfg, session.run_dir, session.model, session.eval_cb
    written = save_model(model, run_dir / MODEL_FILE)
    files = [CONFIG_FILE, VERSIONS_FILE, ENV_FILE] + [p.name for p in written]
    if eval_cb is not None and eval_cb.history:
        files += ["eval.csv", "evaluations.npz"]
        best = run_dir / BEST_MODEL_FILE
        files += [p.name for p in (best, norm_file(best)) if p.exists()]
    files += [d + "/" for d in (CHECKPOINT_DIR, "tb") if (run_dir / d).is_dir()]
    wall = session.wall_seconds
    session.summary.update(
        status="completed",
        finished=_now_iso(),
        algo=cfg.algo,
        env=cfg.env,
        scenario=session.probe.scenario.name,
        n_timesteps=int(model.num_timesteps),
        wall_seconds=wall,
        steps_per_second=model.num_timesteps / wall if wall > 0 else None,
        reward=cfg.reward,
        reward_scale=session.probe.reward_scale,
        final_eval=eval_cb.history[-1] if eval_cb is not None and eval_cb.history else None,
        best_eval=eval_cb.best_row if eval_cb is not None else None,
        files=files + [SUMMARY_FILE],
    )
    session.write_summary()


def train(
    config: str | Path | TrainConfig,
    out: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    timesteps: int | None = None,
    seed: int | None = None,
    quiet: bool = True,
) -> Path:
    """Train one model and write its run folder; returns the folder.

    ``overrides`` are dotted-path overrides of the config (``{"algo": "ppo",
    "hyperparameters.n_steps": 64}``); ``timesteps`` and ``seed`` override ``n_timesteps``
    and ``seed``. ``out`` defaults to ``runs/<config name>-<timestamp>``; a folder that
    already holds a ``model.zip`` is refused. Any error after the folder exists is recorded
    in its ``summary.json`` (``status: failed``) and raised again.
    """
    cfg, name = resolve_config(config, overrides, timesteps, seed)
    run_dir = Path(out) if out is not None else _default_out(name)
    if (run_dir / MODEL_FILE).exists():
        raise ConfigError(
            f"{run_dir} already holds a trained model; choose another --out", field="--out"
        )
    env_kwargs = cfg.env_kwargs()
    # Build one environment up front: scenario errors surface as ConfigError before any
    # folder is written or torch is imported.
    probe = env_class(cfg.env)(**env_kwargs)
    summary: dict[str, Any] = {"status": "running", "config": name, "started": _now_iso()}
    session = TrainingSession(cfg, name, run_dir, env_kwargs, probe, summary)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        _write_metadata(session)
        build(session, quiet=quiet)
        learn(session)
        write(session)
    except BaseException as exc:
        _record_failure(session, exc)
        raise
    finally:
        if session.venv is not None:
            session.venv.close()
    return run_dir


def _record_failure(session: TrainingSession, exc: BaseException) -> None:
    """summary.json says the training failed, and why (the exception's one-line form)."""
    session.summary.update(
        status="failed",
        finished=_now_iso(),
        error=traceback.format_exception_only(exc)[-1].strip(),  # e.g. "KeyboardInterrupt"
        wall_seconds=session.wall_seconds,
    )
    with contextlib.suppress(OSError):  # the folder itself is gone: nothing to record in
        session.write_summary()


def _now_iso() -> str:
    return datetime.now().isoformat(timespec="seconds")
