"""``dispatch train``: PPO / MaskablePPO dispatchers on the Gymnasium environments.

:func:`train` reads a :mod:`dispatch.train_config` file, builds the vectorised environments
(``envs.AuditDispatchEnv`` or ``envs.BatchDispatchEnv``), trains with stable-baselines3 or
sb3-contrib, and writes one self-describing run folder:

==========================  ==================================================================
file                        content
==========================  ==================================================================
``config.yaml``             the resolved config (defaults filled in, absolute scenario path)
``versions.json``           python, torch, stable-baselines3, sb3-contrib, gymnasium, numpy,
                            dispatch, git revision (and whether the tree was dirty)
``env.json``                how to rebuild the observation: env kind and arguments, algo,
                            observation and action names, scenario digest (ignoring horizon
                            and warm-up; export sidecar)
``model.zip``               the final model (``PPO`` / ``MaskablePPO`` ``.save``)
``vecnormalize.pkl``        VecNormalize statistics (only with ``normalize.obs/reward``)
``best_model.zip``          the best model on the evaluation seeds (with evaluation on),
``best_vecnormalize.pkl``   and its normalisation statistics
``eval.csv``                evaluation history: timesteps, mean/std reward, mean/std cost
``evaluations.npz``         the same, as EvalCallback records it (per-episode rewards)
``summary.json``            status, timesteps, wall time, final and best evaluation, files
``checkpoints/``, ``tb/``   CheckpointCallback snapshots, TensorBoard logs (when enabled)
==========================  ==================================================================

Files are written to a temporary name and renamed, so a crash never leaves a half-written
model behind. ``vecnormalize.pkl`` is a pickle: load it only from run folders you wrote
(the ``learned`` policy does exactly that).

torch and stable-baselines3 are imported inside the functions that need them; the training
process sets ``torch.set_num_threads(torch_threads)`` (1 by default) before building any
model.
"""

from __future__ import annotations

import csv
import io
import json
import time
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym
import yaml

from dispatch.errors import ConfigError
from dispatch.io import atomic_path, atomic_write_bytes, atomic_write_text
from dispatch.observation import layout_digest
from dispatch.provenance import LEARNING_PACKAGES, versions
from dispatch.train_config import ACTIVATIONS, TrainConfig, load_train_config

__all__ = ["SeedCycle", "env_class", "make_env", "train"]

EVAL_FIELDS = [
    "timesteps",
    "mean_reward",
    "std_reward",
    "mean_cost",
    "std_cost",
    "mean_length",
    "episodes",
    "wall_seconds",
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


# -- small helpers ----------------------------------------------------------------------------
def _save_model(model, path: Path) -> None:
    """``model.save`` into memory, then one atomic write (never half a model.zip)."""
    buf = io.BytesIO()
    model.save(buf)
    atomic_write_bytes(path, buf.getvalue())


def _save_vecnormalize(vecnorm, path: Path) -> None:
    with atomic_path(path) as tmp:
        vecnorm.save(str(tmp))


def _lr_schedule(cfg: TrainConfig):
    lr = cfg.hyperparameters.learning_rate
    if isinstance(lr, float):
        return lr
    from stable_baselines3.common.utils import LinearSchedule

    return LinearSchedule(lr.initial, lr.final, 1.0)


def _policy_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    import torch.nn as nn

    pk = cfg.policy_kwargs
    arch = pk.net_arch if isinstance(pk.net_arch, list) else pk.net_arch.model_dump()
    out = {
        "net_arch": arch,
        "activation_fn": getattr(nn, ACTIVATIONS[pk.activation_fn]),
        "ortho_init": pk.ortho_init,
    }
    if cfg.env == "batch":
        out["log_std_init"] = pk.log_std_init
    return out


def _default_out(config_name: str) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return Path("runs") / f"{config_name}-{stamp}"


# -- evaluation callback ----------------------------------------------------------------------
def _eval_callback(maskable: bool, **kwargs):
    """EvalCallback (or MaskableEvalCallback) that replays fixed seeds and records history."""
    if maskable:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as Base
    else:
        from stable_baselines3.common.callbacks import EvalCallback as Base

    class RecordingEval(Base):
        def __init__(self, *args, run_dir: Path, reward_scale: float, **kw):
            super().__init__(*args, **kw)
            self.run_dir = run_dir
            self.reward_scale = reward_scale
            self.history: list[dict[str, float]] = []
            self.best_row: dict[str, float] | None = None
            self._costs: list[float] = []
            self._t0 = time.perf_counter()

        def _log_success_callback(self, locals_, globals_) -> None:
            super()._log_success_callback(locals_, globals_)
            info = locals_.get("info") or {}
            if locals_.get("done") and "episode_cost" in info:
                self._costs.append(float(info["episode_cost"]))

        def _on_step(self) -> bool:
            due = self.eval_freq > 0 and self.n_calls % self.eval_freq == 0
            if not due:
                return super()._on_step()
            import numpy as np

            self.eval_env.env_method("restart_seeds")
            self._costs = []
            best_before = self.best_mean_reward
            n_before = len(self.evaluations_timesteps)
            cont = super()._on_step()
            if len(self.evaluations_timesteps) > n_before:
                rewards = np.asarray(self.evaluations_results[-1], dtype=float)
                lengths = np.asarray(self.evaluations_length[-1], dtype=float)
                costs = np.asarray(self._costs[: len(rewards)], dtype=float)
                row = {
                    "timesteps": float(self.num_timesteps),
                    "mean_reward": float(rewards.mean()),
                    "std_reward": float(rewards.std()),
                    "mean_cost": float(costs.mean()) if costs.size else float("nan"),
                    "std_cost": float(costs.std()) if costs.size else float("nan"),
                    "mean_length": float(lengths.mean()),
                    "episodes": float(len(rewards)),
                    "wall_seconds": time.perf_counter() - self._t0,
                }
                self.history.append(row)
                _write_history(self.run_dir / "eval.csv", self.history)
                if self.best_mean_reward > best_before:
                    self.best_row = row
                    _save_model(self.model, self.run_dir / "best_model.zip")
                    vn = self.model.get_vec_normalize_env()
                    if vn is not None:
                        _save_vecnormalize(vn, self.run_dir / "best_vecnormalize.pkl")
            return cont

    return RecordingEval(**kwargs)


def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EVAL_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if k != "timesteps" else int(r[k])) for k in EVAL_FIELDS})
    atomic_write_text(path, buf.getvalue())


# -- training ---------------------------------------------------------------------------------
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
    already holds a ``model.zip`` is refused.
    """
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
    if upd:
        cfg = cfg.model_copy(update=upd)
    run_dir = Path(out) if out is not None else _default_out(name)
    if (run_dir / "model.zip").exists():
        raise ConfigError(
            f"{run_dir} already holds a trained model; choose another --out", field="--out"
        )
    env_kwargs = cfg.env_kwargs()
    # Build one environment up front: scenario errors surface as ConfigError before any
    # folder is written or torch is imported.
    probe = env_class(cfg.env)(**env_kwargs)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(cfg.model_dump(mode="json")))
    atomic_write_text(
        run_dir / "versions.json", json.dumps(versions(LEARNING_PACKAGES), indent=2) + "\n"
    )
    sidecar = {
        "env": cfg.env,
        "algo": cfg.algo,
        "env_kwargs": {**env_kwargs, "reward_scale": probe.reward_scale},
        "scenario_name": probe.scenario.name,
        "scenario_digest": layout_digest(probe.scenario),
        "observation_names": probe.observation_names(),
        "action_names": probe.action_names(),
        "normalize_obs": cfg.normalize.obs,
    }
    atomic_write_text(run_dir / "env.json", json.dumps(sidecar, indent=2) + "\n")
    summary: dict[str, Any] = {"status": "running", "config": name, "started": _now_iso()}
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")

    import torch

    torch.set_num_threads(cfg.torch_threads)
    from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

    fns = [partial(make_env, cfg.env, env_kwargs) for _ in range(cfg.n_envs)]
    venv = SubprocVecEnv(fns) if cfg.vec_env == "subproc" else DummyVecEnv(fns)
    hp = cfg.hyperparameters
    norm = cfg.normalize
    if norm.obs or norm.reward:
        venv = VecNormalize(
            venv,
            norm_obs=norm.obs,
            norm_reward=norm.reward,
            clip_obs=norm.clip_obs,
            clip_reward=norm.clip_reward,
            gamma=hp.gamma,
        )
    maskable = cfg.algo == "maskable_ppo"
    if maskable:
        from sb3_contrib import MaskablePPO as Algo
    else:
        from stable_baselines3 import PPO as Algo
    model = Algo(
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
        policy_kwargs=_policy_kwargs(cfg),
        tensorboard_log=str(run_dir / "tb") if cfg.tensorboard else None,
        seed=cfg.seed,
        device="cpu",
        verbose=cfg.verbose if not quiet else 0,
    )
    callbacks = []
    eval_cb = None
    if cfg.eval.freq > 0:
        ekw = dict(env_kwargs)
        if cfg.eval.horizon is not None:
            ekw["horizon"] = cfg.eval.horizon
        eval_venv = DummyVecEnv([partial(make_env, cfg.env, ekw, cfg.eval.seeds)])
        if isinstance(venv, VecNormalize):
            eval_venv = VecNormalize(
                eval_venv,
                training=False,
                norm_obs=norm.obs,
                norm_reward=False,
                clip_obs=norm.clip_obs,
            )
        eval_cb = _eval_callback(
            maskable,
            eval_env=eval_venv,
            n_eval_episodes=cfg.eval.episodes,
            eval_freq=max(cfg.eval.freq // cfg.n_envs, 1),
            deterministic=cfg.eval.deterministic,
            verbose=0,
            warn=False,
            log_path=str(run_dir),  # evaluations.npz, SB3's own record of the history
            run_dir=run_dir,
            reward_scale=probe.reward_scale,
        )
        callbacks.append(eval_cb)
    if cfg.checkpoint_freq > 0:
        from stable_baselines3.common.callbacks import CheckpointCallback

        callbacks.append(
            CheckpointCallback(
                save_freq=max(cfg.checkpoint_freq // cfg.n_envs, 1),
                save_path=str(run_dir / "checkpoints"),
                name_prefix="model",
                save_vecnormalize=isinstance(venv, VecNormalize),
            )
        )
    t0 = time.perf_counter()
    try:
        model.learn(
            total_timesteps=cfg.n_timesteps,
            callback=callbacks or None,
            progress_bar=cfg.progress_bar,
            tb_log_name="run",
        )
    except BaseException:
        summary.update(status="failed", wall_seconds=time.perf_counter() - t0)
        atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
        venv.close()
        raise
    wall = time.perf_counter() - t0
    _save_model(model, run_dir / "model.zip")
    files = ["config.yaml", "versions.json", "env.json", "model.zip"]
    if isinstance(venv, VecNormalize):
        _save_vecnormalize(venv, run_dir / "vecnormalize.pkl")
        files.append("vecnormalize.pkl")
    if eval_cb is not None and eval_cb.history:
        files += ["eval.csv", "evaluations.npz"]
        if (run_dir / "best_model.zip").exists():
            files.append("best_model.zip")
        if (run_dir / "best_vecnormalize.pkl").exists():
            files.append("best_vecnormalize.pkl")
    files += [d + "/" for d in ("checkpoints", "tb") if (run_dir / d).is_dir()]
    summary.update(
        status="completed",
        finished=_now_iso(),
        algo=cfg.algo,
        env=cfg.env,
        scenario=probe.scenario.name,
        n_timesteps=int(model.num_timesteps),
        wall_seconds=wall,
        steps_per_second=model.num_timesteps / wall if wall > 0 else None,
        reward=cfg.reward,
        reward_scale=probe.reward_scale,
        final_eval=eval_cb.history[-1] if eval_cb is not None and eval_cb.history else None,
        best_eval=eval_cb.best_row if eval_cb is not None else None,
        files=files + ["summary.json"],
    )
    atomic_write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    venv.close()
    return run_dir


def _now_iso() -> str:
    return datetime.now().isoformat(timespec="seconds")
