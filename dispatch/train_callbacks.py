"""Callbacks of ``dispatch train``: evaluation history, best model, checkpoints, saving.

Every model file is written with :func:`save_model`: the model through one atomic write
and, when the run normalises, its ``VecNormalize`` statistics as JSON next to it
(:func:`dispatch.artifacts.norm_file`), so a model file never lacks its statistics and
nothing a reader needs is a pickle.
"""

from __future__ import annotations

import csv
import io
import os
import time
from pathlib import Path
from typing import Any

from dispatch.artifacts import BEST_MODEL_FILE, NormStats, checkpoint_file, norm_file
from dispatch.io import atomic_write_bytes, atomic_write_text, publish

__all__ = ["EVAL_FIELDS", "checkpoint_callback", "eval_callback", "save_model"]

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


def save_model(model: Any, path: Path) -> list[Path]:
    """Write ``model`` to ``path`` (and its normalisation statistics); the files written."""
    buf = io.BytesIO()
    model.save(buf)  # into memory, then one atomic write: never half a model file
    atomic_write_bytes(path, buf.getvalue())
    vn = model.get_vec_normalize_env()
    if vn is None:
        return [path]
    NormStats.from_vecnormalize(vn).save(norm_file(path))
    return [path, norm_file(path)]


def checkpoint_callback(save_freq: int, run_dir: Path):
    """Save ``checkpoints/model_N_steps.zip`` (and its statistics) every ``save_freq`` calls."""
    from stable_baselines3.common.callbacks import BaseCallback

    class Checkpoints(BaseCallback):
        def _on_step(self) -> bool:
            if self.n_calls % save_freq == 0:
                save_model(self.model, checkpoint_file(run_dir, self.num_timesteps))
            return True

    return Checkpoints()


# -- evaluation callback ----------------------------------------------------------------------
def eval_callback(maskable: bool, **kwargs):
    """EvalCallback (or MaskableEvalCallback) that replays fixed seeds and records history."""
    if maskable:
        from sb3_contrib.common.maskable.callbacks import MaskableEvalCallback as Base
    else:
        from stable_baselines3.common.callbacks import EvalCallback as Base

    class RecordingEval(Base):
        def __init__(self, *args, run_dir: Path, reward_scale: float, **kw):
            super().__init__(*args, log_path=str(run_dir), **kw)
            # SB3 writes its history with np.savez in place; write it under a name of this
            # process and publish it atomically as evaluations.npz (see _on_step).
            self.log_path = str(run_dir / f".evaluations.{os.getpid()}")
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
                publish(self.log_path + ".npz", self.run_dir / "evaluations.npz")
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
                    save_model(self.model, self.run_dir / BEST_MODEL_FILE)
            return cont

    return RecordingEval(**kwargs)


def _write_history(path: Path, rows: list[dict[str, float]]) -> None:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=EVAL_FIELDS, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: (f"{r[k]:.6g}" if k != "timesteps" else int(r[k])) for k in EVAL_FIELDS})
    atomic_write_text(path, buf.getvalue())
