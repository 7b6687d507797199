"""The ``learned`` policy: a model trained by ``dispatch train``, run like any rule.

``dispatch simulate SCENARIO --policy learned -p model=runs/RUN`` (or ``model=.../model.zip``)
loads the stable-baselines3 / sb3-contrib model, rebuilds exactly the observation the
training environment produced (:class:`dispatch.observation.ObservationBuilder`, shared with
the environments), applies the saved ``VecNormalize`` observation statistics by hand (mean,
variance, epsilon, clip from ``vecnormalize.pkl`` in the same run folder) and answers:

* pull models (``env: pull``): :meth:`LearnedPolicy.select` scores the candidate buckets
  with the policy network and takes the best valid one (invalid buckets are masked, as
  MaskablePPO does; a plain PPO model therefore never needs the FIFO fallback here);
* batch models (``env: batch``): every ``interval`` minutes the network's weights re-tilt
  the same min-cost-flow assignment the batch environment uses
  (:class:`dispatch.policies.weighted.WeightedAssigner`), on demand in between if the model was
  trained that way.

With ``deterministic: false`` actions are sampled from the policy's distribution using the
policy's own random stream (``self.rng``), so runs stay reproducible for a seed.

Importing this module does not import torch: the model is loaded when the policy is bound
to a simulation (and cached per file, so comparisons over many seeds load it once). Binding
sets ``torch.set_num_threads(1)`` (single-sample inference gains nothing from threads).
"""

from __future__ import annotations

import json
import math
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from dispatch.errors import ConfigError
from dispatch.model import Reviewer
from dispatch.observation import ObservationBuilder, layout_digest
from dispatch.policies.base import Policy
from dispatch.policies.registry import register
from dispatch.policies.weighted import (  # noqa: F401 - assigner names re-exported for deploy.py
    ASSIGNERS,
    FlowAssigner,
    WeightedAssigner,
    assigner_timing,
    make_assigner,
)

__all__ = [
    "ASSIGNERS",
    "FlowAssigner",
    "LearnedPolicy",
    "assigner_timing",
    "load_bundle",
    "make_assigner",
]


class LearnedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    model: str
    """Run folder written by `dispatch train`, or a model .zip inside one."""
    deterministic: bool = True
    """Take the most likely action (true) or sample from the policy (false)."""
    checkpoint: Literal["final", "best"] = "final"
    """With a run folder: the final model.zip or the best evaluated best_model.zip."""


@dataclass
class Bundle:
    """A loaded model with everything needed to reproduce its training observations."""

    path: Path
    policy: Any  # torch module (ActorCriticPolicy or MaskableActorCriticPolicy)
    mode: str  # "pull" | "batch"
    sidecar: dict[str, Any]
    obs_mean: np.ndarray | None
    obs_std: np.ndarray | None
    clip_obs: float
    n_obs: int
    n_actions: int


_CACHE: dict[tuple[str, float], Bundle] = {}


def _locate(model: str, checkpoint: str) -> tuple[Path, Path | None]:
    """(model zip, its VecNormalize pickle if any) from a run folder or zip path."""
    p = Path(model).expanduser()
    if p.is_dir():
        name = "model.zip" if checkpoint == "final" else "best_model.zip"
        zpath = p / name
        if not zpath.exists():
            raise ConfigError(
                f"no {name} in {p}; is it a run folder written by `dispatch train`"
                + (" with evaluation on?" if checkpoint == "best" else "?"),
                field="policy learned: model",
            )
    elif p.exists():
        zpath = p
    else:
        raise ConfigError(
            f"no run folder or model file at '{model}'", field="policy learned: model"
        )
    stem = zpath.name.removesuffix(".zip")
    stats_name = (
        "vecnormalize.pkl" if stem == "model" else f"{stem.removesuffix('_model')}_vecnormalize.pkl"
    )
    if stem.startswith("model_") and stem.endswith("_steps"):  # CheckpointCallback naming
        stats_name = f"model_vecnormalize_{stem.removeprefix('model_')}.pkl"
    stats = zpath.parent / stats_name
    return zpath, (stats if stats.exists() else None)


def load_bundle(model: str, checkpoint: str = "final") -> Bundle:
    """Load (or fetch from the cache) a trained model and its observation setup."""
    zpath, stats = _locate(model, checkpoint)
    key = (str(zpath.resolve()), zpath.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    import torch

    torch.set_num_threads(1)
    sidecar: dict[str, Any] = {}
    for folder in (zpath.parent, zpath.parent.parent):  # run folder, or its checkpoints/
        side = folder / "env.json"
        if side.exists():
            sidecar = json.loads(side.read_text())
            break
    if stats is not None and not sidecar:
        raise ConfigError(
            f"{stats} is a pickle outside a `dispatch train` run folder (no env.json next to "
            "it); refusing to load it. Keep models in their run folders",
            field="policy learned: model",
        )
    algo = sidecar.get("algo")
    model_obj = None
    errors = []
    classes = ["maskable_ppo", "ppo"] if algo == "maskable_ppo" else ["ppo", "maskable_ppo"]
    for name in classes:
        try:
            if name == "ppo":
                from stable_baselines3 import PPO as Algo
            else:
                from sb3_contrib import MaskablePPO as Algo
            model_obj = Algo.load(str(zpath), device="cpu")
            break
        except Exception as exc:  # try the other algorithm class
            errors.append(f"{name}: {exc}")
    if model_obj is None:
        raise ConfigError(
            f"cannot load {zpath} as a PPO or MaskablePPO model ({'; '.join(errors)})",
            field="policy learned: model",
        )
    from gymnasium import spaces

    action_space = model_obj.action_space
    obs_space = model_obj.observation_space
    if isinstance(action_space, spaces.Discrete):
        mode, n_actions = "pull", int(action_space.n)
    elif isinstance(action_space, spaces.Box):
        mode, n_actions = "batch", int(np.prod(action_space.shape))
    else:
        raise ConfigError(f"unsupported action space {action_space}", field="policy learned: model")
    if sidecar.get("env") not in (None, mode):
        raise ConfigError(
            f"env.json says env {sidecar.get('env')} but the model acts like {mode}",
            field="policy learned: model",
        )
    mean = std = None
    clip = math.inf
    if stats is not None:
        # Our own run folder's VecNormalize pickle (never load one from elsewhere).
        with stats.open("rb") as fh:
            vn = pickle.load(fh)
        if getattr(vn, "norm_obs", False):
            mean = np.asarray(vn.obs_rms.mean, dtype=np.float64)
            std = np.sqrt(np.asarray(vn.obs_rms.var, dtype=np.float64) + vn.epsilon)
            clip = float(vn.clip_obs)
    policy = model_obj.policy
    policy.set_training_mode(False)
    bundle = Bundle(
        path=zpath,
        policy=policy,
        mode=mode,
        sidecar=sidecar,
        obs_mean=mean,
        obs_std=std,
        clip_obs=clip,
        n_obs=int(np.prod(obs_space.shape)),
        n_actions=n_actions,
    )
    _CACHE[key] = bundle
    return bundle


@register
class LearnedPolicy(Policy):
    name = "learned"
    summary = (
        "A trained PPO / MaskablePPO dispatcher from `dispatch train` (pull: scores buckets; "
        "batch: per-bucket weights for the min-cost-flow assignment)."
    )
    Params = LearnedParams

    def __init__(self, **params: Any):
        super().__init__(**params)
        _locate(self.params.model, self.params.checkpoint)  # fail early, without torch
        self.bundle: Bundle | None = None
        self.builder: ObservationBuilder | None = None
        self.assigner: WeightedAssigner | FlowAssigner | None = None
        self.update_interval = 5.0

    # -- binding ------------------------------------------------------------------------------
    def bind(self, sim, rng) -> None:
        super().bind(sim, rng)
        b = load_bundle(self.params.model, self.params.checkpoint)
        self.bundle = b
        self.mode = b.mode
        names = [bk.name for bk in sim.buckets]
        expected = b.sidecar.get("action_names")
        if expected is not None and expected != names:
            raise ConfigError(
                f"the model was trained on buckets {expected[:4]}... but scenario "
                f"'{sim.scenario.name}' has {names[:4]}...; use a scenario with the same "
                "classes, markets and risk bands",
                field="policy learned: model",
            )
        if len(names) != b.n_actions:
            raise ConfigError(
                f"the model has {b.n_actions} actions but scenario '{sim.scenario.name}' has "
                f"{len(names)} buckets",
                field="policy learned: model",
            )
        digest = b.sidecar.get("scenario_digest")
        if digest is not None and digest != layout_digest(sim.scenario):
            warnings.warn(
                f"policy learned: scenario '{sim.scenario.name}' differs from the one the "
                "model was trained on (same buckets, other parameters; horizon aside)",
                stacklevel=2,
            )
        self.builder = ObservationBuilder(sim, b.mode)
        if self.builder.size != b.n_obs:
            raise ConfigError(
                f"the model expects {b.n_obs} observations, the scenario gives "
                f"{self.builder.size} (another reviewer/bucket layout)",
                field="policy learned: model",
            )
        if b.mode == "batch":
            kw = b.sidecar.get("env_kwargs", {})
            kind = kw.get("assigner", "weighted")
            self.update_interval = float(kw.get("interval", 5.0))
            self.batch_interval, self.on_demand = assigner_timing(
                kind, kw.get("assigner_params"), self.update_interval, kw.get("on_demand", True)
            )
            self.assigner = make_assigner(
                sim, kind, kw.get("assigner_params"), kw.get("weight_scale", 1.0)
            )
            # Weight updates at minute 0, interval, 2 interval, ...: each before every other
            # event of its instant (shift changes, the batch epoch), as in the environment.
            self._schedule_update(0.0)

    # -- inference ----------------------------------------------------------------------------
    def _forward(self, obs: np.ndarray):
        import torch as th
        from stable_baselines3.common.policies import BasePolicy

        b = self.bundle
        x = obs.astype(np.float64)
        if b.obs_mean is not None:
            x = np.clip((x - b.obs_mean) / b.obs_std, -b.clip_obs, b.clip_obs)
        pol = b.policy
        with th.no_grad():
            t = th.as_tensor(x, dtype=th.float32).unsqueeze(0)
            feats = BasePolicy.extract_features(pol, t, pol.pi_features_extractor)
            latent = pol.mlp_extractor.forward_actor(feats)
            out = pol.action_net(latent)[0].numpy().astype(np.float64)
            log_std = pol.log_std.detach().numpy().astype(np.float64) if b.mode == "batch" else None
        return out, log_std

    def action_scores(self, obs: np.ndarray) -> np.ndarray:
        """Pull models: the network's logits for every bucket (before masking)."""
        return self._forward(obs)[0]

    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        if len(candidates) == 1:
            return candidates[0]
        logits, _ = self._forward(self.builder.pull(reviewer))
        if self.params.deterministic:
            best = candidates[0]
            for c in candidates[1:]:
                if logits[c] > logits[best]:
                    best = c
            return best
        z = logits[candidates]
        p = np.exp(z - z.max())
        p /= p.sum()
        k = int(np.searchsorted(np.cumsum(p), self.rng.random() * p.sum(), side="right"))
        return candidates[min(k, len(candidates) - 1)]

    def weights(self) -> np.ndarray:
        """Batch models: the per-bucket weights for the current state, in [-1, 1]."""
        mean, log_std = self._forward(self.builder.batch())
        if not self.params.deterministic:
            mean = mean + np.exp(log_std) * self.rng.standard_normal(mean.shape[0])
        return np.clip(mean, -1.0, 1.0)

    def _schedule_update(self, t: float) -> None:
        """New weights at minute ``t``, before any other event of that instant (``first``):
        the state the environment observes at its epoch (all events before ``t`` done).
        Absolute time (as the environment's epochs), not now + (t - now): no rounding."""
        self.sim.schedule(t, self._on_update, first=True)

    def _on_update(self, _value) -> None:
        sim = self.sim
        self.assigner.set_weights(self.weights())
        nxt = sim.now + self.update_interval
        if nxt < sim.horizon:
            self._schedule_update(nxt)

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        return self.assigner.assign(reviewers, now)

    def describe(self) -> str:
        p = self.params
        extra = "" if p.checkpoint == "final" else f", checkpoint={p.checkpoint}"
        return f"{self.name}(model={p.model}, deterministic={p.deterministic}{extra})"
