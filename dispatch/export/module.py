"""The ``torch.nn.Module`` that is exported: normalisation + actor + masking or clipping.

See :mod:`dispatch.export` for what the graph computes and why (masked argmax for pull
models, the clipped deterministic action for priority-weight models).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dispatch.errors import ConfigError

__all__ = ["MASK_LOGIT", "make_export_module"]

MASK_LOGIT = -1e8  # sb3-contrib's MaskableCategorical constant


def _norm_dict(norm: Any) -> dict[str, Any] | None:
    """{mean, var, epsilon, clip_obs} of a :class:`~dispatch.artifacts.NormStats` or dict."""
    if norm is None or isinstance(norm, dict):
        return norm
    if not norm.norm_obs:
        return None
    return {"mean": norm.mean, "var": norm.var, "epsilon": norm.epsilon, "clip_obs": norm.clip_obs}


def make_export_module(policy: Any, obs_norm: Any = None):
    """The ``torch.nn.Module`` that is exported: normalisation + actor + masking/clipping.

    ``policy`` is an SB3 ``ActorCriticPolicy`` (PPO) or sb3-contrib
    ``MaskableActorCriticPolicy`` with a Box observation space and a ``Discrete`` or ``Box``
    action space; ``obs_norm`` a :class:`~dispatch.artifacts.NormStats` or a dict
    ``{mean, var, epsilon, clip_obs}`` (``None``: raw observations). Discrete:
    ``forward(obs, action_mask) -> (action int64, probs)``; Box: ``forward(obs) -> action``.
    The nested classes keep the module self-contained for tracing; the function is long
    because the two heads share the normalising actor defined in it.
    """
    obs_norm = _norm_dict(obs_norm)
    import torch
    from gymnasium import spaces
    from stable_baselines3.common.distributions import StateDependentNoiseDistribution
    from stable_baselines3.common.preprocessing import preprocess_obs

    if not isinstance(policy.observation_space, spaces.Box):
        raise ConfigError(
            f"only Box observation spaces can be exported, got {policy.observation_space}"
        )
    obs_space = policy.observation_space
    act_space = policy.action_space

    class _Normalize(torch.nn.Module):
        def __init__(self, norm: dict[str, Any] | None):
            super().__init__()
            self.enabled = norm is not None
            if norm is not None:
                mean = np.asarray(norm["mean"], dtype=np.float64)
                std = np.sqrt(np.asarray(norm["var"], dtype=np.float64) + norm["epsilon"])
                self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float64))
                self.register_buffer("std", torch.as_tensor(std, dtype=torch.float64))
                self.clip = float(norm["clip_obs"])

        def forward(self, obs):
            if not self.enabled:
                return obs
            x = (obs.to(torch.float64) - self.mean) / self.std
            return torch.clamp(x, -self.clip, self.clip).to(torch.float32)

    class _Actor(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.normalize = _Normalize(obs_norm)
            self.features = policy.pi_features_extractor
            self.mlp = policy.mlp_extractor
            self.action_net = policy.action_net
            self.normalize_images = policy.normalize_images

        def latent(self, obs):
            x = self.normalize(obs)
            x = preprocess_obs(x, obs_space, normalize_images=self.normalize_images)
            return self.mlp.forward_actor(self.features(x))

    if isinstance(act_space, spaces.Discrete):

        class DiscreteExport(_Actor):
            """(obs float32 [N, D], action_mask bool [N, B]) -> (action int64 [N], probs [N, B])."""

            def forward(self, obs, action_mask):
                logits = self.action_net(self.latent(obs))
                masked = torch.where(
                    action_mask.to(torch.bool),
                    logits,
                    torch.full_like(logits, MASK_LOGIT),
                )
                return torch.argmax(masked, dim=-1), torch.softmax(masked, dim=-1)

        mod = DiscreteExport()
    elif isinstance(act_space, spaces.Box):
        dist = policy.action_dist
        squash = isinstance(dist, StateDependentNoiseDistribution) and dist.bijector is not None
        low = torch.as_tensor(np.asarray(act_space.low, dtype=np.float32))
        high = torch.as_tensor(np.asarray(act_space.high, dtype=np.float32))
        rescale = bool(policy.squash_output)

        class BoxExport(_Actor):
            """obs float32 [N, D] -> deterministic action float32 [N, A] within the bounds."""

            def __init__(self):
                super().__init__()
                self.register_buffer("low", low)
                self.register_buffer("high", high)

            def forward(self, obs):
                a = self.action_net(self.latent(obs))
                if squash:
                    a = torch.tanh(a)
                if rescale:
                    return self.low + 0.5 * (a + 1.0) * (self.high - self.low)
                return torch.minimum(torch.maximum(a, self.low), self.high)

        mod = BoxExport()
    else:
        raise ConfigError(f"only Discrete and Box action spaces can be exported, got {act_space}")
    mod.eval()
    return mod
