"""The ``learned`` policy: a model trained by ``dispatch train``, run like any rule.

``dispatch simulate SCENARIO --policy learned -p model=runs/RUN`` (or ``model=.../model.zip``)
loads the stable-baselines3 / sb3-contrib policy without unpickling anything
(:func:`dispatch.artifacts.load_model`; ``-p trust=true`` allows SB3's pickle-based loading
for a model from elsewhere that needs it), rebuilds exactly the observation the training
environment produced (:class:`dispatch.observation.ObservationBuilder`, shared with the
environments), applies the saved ``VecNormalize`` observation statistics by hand (mean,
variance, epsilon, clip from the JSON statistics next to the model file) and answers:

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

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from dispatch.artifacts import load_model, locate
from dispatch.errors import ConfigError
from dispatch.model import Reviewer
from dispatch.observation import ObservationBuilder, layout_digest
from dispatch.policies.base import Policy
from dispatch.policies.registry import register
from dispatch.policies.weighted import (
    FlowAssigner,
    WeightedAssigner,
    assigner_timing,
    make_assigner,
)

__all__ = ["LearnedPolicy", "load_bundle"]


class LearnedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    model: str
    """Run folder written by `dispatch train`, or a model .zip inside one."""
    deterministic: bool = True
    """Take the most likely action (true) or sample from the policy (false)."""
    checkpoint: Literal["final", "best"] = "final"
    """With a run folder: the final model.zip or the best evaluated best_model.zip."""
    trust: bool = False
    """Allow loading a model that needs unpickling (a file from elsewhere: runs code it
    holds). Only for files whose source you trust; `dispatch train` models never need it."""


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


_CACHE: dict[tuple[str, float, bool], Bundle] = {}
_FIELD = "policy learned: model"


def _locate(model: str, checkpoint: str) -> Path:
    """The model file of a run folder or a model path (cheap: reads only JSON/YAML)."""
    return locate(model, checkpoint, field=_FIELD).model


def load_bundle(model: str, checkpoint: str = "final", trust: bool = False) -> Bundle:
    """Load (or fetch from the cache) a trained model and its observation setup."""
    run = locate(model, checkpoint, field=_FIELD)
    zpath = run.model
    key = (str(zpath.resolve()), zpath.stat().st_mtime, bool(trust))
    if key in _CACHE:
        return _CACHE[key]
    import torch

    torch.set_num_threads(1)
    lm = load_model(run, trust=trust, field=_FIELD, trust_flag="-p trust=true")
    norm = lm.obs_norm
    bundle = Bundle(
        path=zpath,
        policy=lm.policy,
        mode=lm.kind,
        sidecar=run.env,
        obs_mean=norm.mean if norm is not None else None,
        obs_std=np.sqrt(norm.var + norm.epsilon) if norm is not None else None,
        clip_obs=norm.clip_obs if norm is not None else math.inf,
        n_obs=int(np.prod(lm.observation_space.shape)),
        n_actions=int(lm.action_space.n) if lm.kind == "pull" else int(lm.action_space.shape[0]),
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
        b = load_bundle(self.params.model, self.params.checkpoint, self.params.trust)
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
        self.builder = ObservationBuilder(sim.layout, b.mode).bind(sim)
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
