"""Export a trained dispatcher to a self-contained ONNX (or TorchScript) file plus a sidecar.

The exported graph is the whole decision, so production needs neither torch nor
stable-baselines3 nor this package's training code, only onnxruntime and numpy
(:class:`dispatch.deploy.DeployedDispatcher`)::

    dispatch export runs/ppo_ecommerce --out models/dispatcher.onnx

    from dispatch.export import export_model
    export_model("runs/ppo_ecommerce", "models/dispatcher.onnx")

What the ONNX graph computes
----------------------------
**Pull models** (``dispatch/AuditDispatch-v0``, ``Discrete(B)`` actions; PPO or
MaskablePPO). Inputs ``obs`` float32 ``[batch, D]`` (the raw observation, exactly as the
environment returns it) and ``action_mask`` bool ``[batch, B]`` (True = the bucket may be
chosen: eligible for the reviewer, non-empty, within its wellbeing cap). Outputs:

* ``action`` int64 ``[batch]``: ``argmax`` over the valid buckets of the policy logits;
* ``probs`` float32 ``[batch, B]``: the masked softmax (invalid buckets get probability 0
  up to ``exp(-1e8)``).

Inside the graph, in this order: the VecNormalize observation normalisation when the run
used one, ``clip((obs - mean) / sqrt(var + eps), -clip_obs, clip_obs)`` computed in float64
and cast to float32, bit-for-bit what ``VecNormalize.normalize_obs`` does; the policy's
feature extractor, ``mlp_extractor`` (actor part) and ``action_net``; invalid logits replaced
by ``-1e8`` (sb3-contrib's masking constant); softmax and argmax.

For MaskablePPO this is what ``model.predict(obs, action_masks=mask, deterministic=True)``
returns. A plain PPO model never saw a mask in training (the environment replaces an
invalid action by FIFO's choice); the export defines its decision as the **masked argmax**
of its logits, i.e. the most probable valid bucket, which equals ``predict`` whenever that
action is valid. A batch whose mask has no valid bucket yields probabilities uniform over
all buckets and action 0: callers must not ask (the runtime refuses such masks).

**Priority-weight models** (``dispatch/BatchDispatch-v0``, ``Box(-1, 1, (B,))`` actions;
PPO). One input ``obs`` float32 ``[batch, D]``; one output ``action`` float32 ``[batch, B]``:
the deterministic action, the Gaussian mean clipped to the action bounds (squashed and
rescaled instead for gSDE policies with ``squash_output``), as ``predict(deterministic=True)``.
There is no mask input: every weight vector is valid (eligibility and caps are enforced
by the assignment); the runtime accepts and ignores a mask.

The batch axis is dynamic. The graph is exported with the TorchScript-based exporter
(``torch.onnx.export(..., dynamo=False)``; opsets 14-20, default 17), checked with
``onnx.checker`` and verified against the PyTorch policy on random inputs before it is
written.

The sidecar ``<out>.json``
--------------------------
Written next to the model (``dispatcher.onnx`` -> ``dispatcher.onnx.json``); plain JSON::

    format           "dispatch-policy-export", format_version 1
    artifact         {file, format (onnx|torchscript), sha256, bytes, opset, exporter, runtime}
    kind             "discrete" (pull) or "priority_weights" (batch)
    inputs/outputs   name -> {dtype, shape}
    observation      {size, dtype, names (env.observation_names()), low, high, order,
                      bucket_features, globals, units (scaling of every feature), builder}
    actions          {n, names (env.action_names(): the buckets), meaning}
    mask             {input, dtype, shape, semantics} (null for priority-weight models)
    normalization    {enabled, in_graph: true, formula, mean, var, epsilon, clip_obs}
    environment      {id, mode, kwargs (horizon, overrides, reward, ...), batch
                      {interval, on_demand} for priority-weight models}
    scenario         {name, digest: Scenario.digest() of the training scenario (overrides
                      and training horizon applied), layout_digest (horizon and warm-up
                      ignored, as env.json and the learned policy), source, horizon}
    training         {run_id (run folder name), run_dir, model, model_sha256, vecnormalize,
                      algorithm, policy_class, num_timesteps, summary (summary.json)}
    versions         {export: packages at export, training: the run's versions.json}
    created          UTC timestamp

:class:`dispatch.deploy.DeployedDispatcher` refuses a model whose SHA-256 differs from
``artifact.sha256``.

TorchScript (``format="torchscript"``) writes ``torch.jit.trace`` of the same wrapper
module to a ``.pt`` file (same inputs and outputs) with the same sidecar. Loading it needs
torch (``torch.jit.load``); :class:`~dispatch.deploy.DeployedDispatcher` runs ONNX only.

This module needs the learning extra (torch, stable-baselines3, sb3-contrib, onnx); it
loads the training artefacts (``model.zip``, ``vecnormalize.pkl``), which are pickles:
export only runs you trust. The deployed side never unpickles anything.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import tempfile
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from dispatch.deploy import FORMAT_NAME, FORMAT_VERSION, sidecar_path
from dispatch.errors import ConfigError, DispatchError
from dispatch.io import atomic_write_bytes
from dispatch.provenance import LEARNING_PACKAGES, versions

__all__ = [
    "DEFAULT_OPSET",
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MASK_LOGIT",
    "TrainedModel",
    "export_model",
    "file_sha256",
    "load_trained",
    "make_export_module",
    "sidecar_path",
]

DEFAULT_OPSET = 17
MIN_OPSET, MAX_OPSET = 14, 20  # what the TorchScript-based ONNX exporter supports
MASK_LOGIT = -1e8  # sb3-contrib's MaskableCategorical constant
ENV_IDS = {"pull": "dispatch/AuditDispatch-v0", "batch": "dispatch/BatchDispatch-v0"}
# Files of a `dispatch train` run folder (dispatch.training).
MODEL_FILE = "model.zip"
ENV_FILE = "env.json"
CONFIG_FILE = "config.yaml"
SUMMARY_FILE = "summary.json"
VERSIONS_FILE = "versions.json"

Format = Literal["onnx", "torchscript"]


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# -- loading a trained run ------------------------------------------------------------------------
@dataclass
class TrainedModel:
    """A loaded training run: the SB3 model and what the export needs to describe it."""

    model: Any
    algorithm: str  # "PPO" | "MaskablePPO"
    model_path: Path
    run_dir: Path | None
    kind: str  # "pull" | "batch"
    env_kwargs: dict[str, Any]  # constructor arguments of the env, incl. "scenario"
    obs_norm: dict[str, Any] | None  # {mean, var, epsilon, clip_obs} (float64 arrays)
    vecnormalize_path: Path | None = None
    run_id: str | None = None
    env_info: dict[str, Any] = field(default_factory=dict)  # the run's env.json
    summary: dict[str, Any] = field(default_factory=dict)
    run_versions: dict[str, Any] = field(default_factory=dict)


def _algorithm_of(model_zip: Path) -> str:
    """'MaskablePPO' or 'PPO', from the policy class recorded in the model's ``data``."""
    try:
        with zipfile.ZipFile(model_zip) as z:
            data = json.loads(z.read("data"))
    except (zipfile.BadZipFile, KeyError, OSError, ValueError) as exc:
        raise ConfigError(
            f"not a stable-baselines3 model archive ({type(exc).__name__}: {exc}); "
            f"expected the {MODEL_FILE} written by `dispatch train`",
            source=str(model_zip),
        ) from None
    pc = data.get("policy_class") or {}
    module = pc.get("__module__", "") if isinstance(pc, dict) else ""
    if "sb3_contrib.common.maskable" in module:
        return "MaskablePPO"
    if module.startswith("sb3_contrib"):
        raise ConfigError(
            f"unsupported policy class from {module}: only PPO and MaskablePPO models "
            "(feed-forward actor-critic policies) can be exported",
            source=str(model_zip),
        )
    return "PPO"


def _read_json(p: Path) -> dict[str, Any]:
    if not p.is_file():
        return {}
    try:
        data = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read it as JSON ({exc})", source=str(p)) from None
    return data if isinstance(data, dict) else {}


def vecnormalize_file(model_zip: Path) -> Path:
    """Where `dispatch train` saves the VecNormalize statistics of a model file:
    ``model.zip`` -> ``vecnormalize.pkl``, ``best_model.zip`` -> ``best_vecnormalize.pkl``,
    checkpoint ``model_N_steps.zip`` -> ``model_vecnormalize_N_steps.pkl``."""
    stem = model_zip.name.removesuffix(".zip")
    if stem.startswith("model_") and stem.endswith("_steps"):
        name = f"model_vecnormalize_{stem.removeprefix('model_')}.pkl"
    elif stem == "model":
        name = "vecnormalize.pkl"
    else:
        name = f"{stem.removesuffix('_model')}_vecnormalize.pkl"
    return model_zip.with_name(name)


def _load_obs_norm(path: Path) -> dict[str, Any] | None:
    """The observation statistics of a saved VecNormalize (a pickle: trusted input only)."""
    import pickle

    try:
        with open(path, "rb") as f:
            vn = pickle.load(f)  # noqa: S301 - training artefact of a run the user exports
    except Exception as exc:  # noqa: BLE001 - any unpickling failure is a bad file
        raise ConfigError(
            f"cannot load the VecNormalize statistics ({type(exc).__name__}: {exc})",
            source=str(path),
        ) from None
    return obs_norm_of(vn, source=str(path))


def obs_norm_of(vn: Any, source: str | None = None) -> dict[str, Any] | None:
    """{mean, var, epsilon, clip_obs} of a VecNormalize object; None if it does not
    normalise observations."""
    if not getattr(vn, "norm_obs", False):
        return None
    rms = getattr(vn, "obs_rms", None)
    if isinstance(rms, dict) or rms is None:
        raise ConfigError(
            "only Box observations are supported (this VecNormalize has dict statistics)",
            source=source,
        )
    return {
        "mean": np.asarray(rms.mean, dtype=np.float64).copy(),
        "var": np.asarray(rms.var, dtype=np.float64).copy(),
        "epsilon": float(vn.epsilon),
        "clip_obs": float(vn.clip_obs),
    }


def _run_env(folder: Path) -> tuple[dict[str, Any], str | None, dict[str, Any]]:
    """(env.json, env kind, env kwargs) of a run folder; {} / None when it has none."""
    info = _read_json(folder / ENV_FILE)
    if info:
        kwargs = dict(info.get("env_kwargs") or {})
        return info, info.get("env"), kwargs
    if (folder / CONFIG_FILE).is_file():  # older run folders: rebuild from the config
        from dispatch.train_config import load_train_config

        cfg = load_train_config(folder / CONFIG_FILE)
        return {}, cfg.env, cfg.env_kwargs()
    return {}, None, {}


def load_trained(
    source: str | Path,
    *,
    vecnormalize: str | Path | None = None,
    scenario: Any = None,
    env_kwargs: dict[str, Any] | None = None,
) -> TrainedModel:
    """Load a ``dispatch train`` run folder (its ``model.zip``) or one of its model files
    (``model.zip``, ``best_model.zip``, a checkpoint), with the run's ``env.json`` (or
    ``config.yaml``), VecNormalize statistics, summary and versions.

    For a model file outside a run folder give ``scenario`` (path or
    :class:`~dispatch.scenario.Scenario`) and ``env_kwargs`` (``horizon``,
    ``scenario_overrides``, ``interval``, ...); they also override the run's own values.
    The VecNormalize statistics saved next to the model are always used (``vecnormalize``
    names another file).
    """
    src = Path(source)
    if not src.exists():
        raise ConfigError(
            "no such file or folder; give a training run folder or a model .zip",
            source=str(src),
        )
    if src.is_dir():
        model_zip = src / MODEL_FILE
        if not model_zip.is_file():
            raise ConfigError(
                f"no {MODEL_FILE} in this folder; is it a `dispatch train` run folder?",
                source=str(src),
            )
    else:
        model_zip = src
    folder = model_zip.parent
    algorithm = _algorithm_of(model_zip)
    run_folder = folder
    info, kind, kwargs = _run_env(folder)
    if not info and kind is None and folder.name == "checkpoints":
        run_folder = folder.parent
        info, kind, kwargs = _run_env(run_folder)
    is_run = bool(info) or kind is not None
    kwargs.update(env_kwargs or {})
    if scenario is not None:
        kwargs["scenario"] = scenario
    if vecnormalize is not None:
        vn_path: Path | None = Path(vecnormalize)
        if not vn_path.is_file():
            raise ConfigError("no such VecNormalize file", source=str(vn_path))
    else:
        # The statistics saved next to the model belong to it (also for a bare model file:
        # silently dropping them would feed the policy unnormalised observations).
        vn_path = vecnormalize_file(model_zip)
        if not vn_path.is_file():
            vn_path = None
    if info.get("normalize_obs") and vn_path is None:
        raise ConfigError(
            f"the run normalised observations but {vecnormalize_file(model_zip).name} is "
            "missing next to the model",
            source=str(model_zip),
        )
    model = _load_sb3(model_zip, algorithm)
    from gymnasium import spaces

    acts = "pull" if isinstance(model.action_space, spaces.Discrete) else "batch"
    if kind is not None and kind != acts:
        raise ConfigError(
            f"the run says env {kind!r} but the model's actions are those of {acts!r}",
            source=str(model_zip),
        )
    run_dir = run_folder if is_run else None
    return TrainedModel(
        model=model,
        algorithm=algorithm,
        model_path=model_zip,
        run_dir=run_dir,
        kind=acts,
        env_kwargs=kwargs,
        obs_norm=_load_obs_norm(vn_path) if vn_path is not None else None,
        vecnormalize_path=vn_path,
        run_id=run_dir.resolve().name if run_dir is not None else None,
        env_info=info,
        summary=_read_json(run_folder / SUMMARY_FILE) if is_run else {},
        run_versions=_read_json(run_folder / VERSIONS_FILE) if is_run else {},
    )


def _load_sb3(model_zip: Path, algorithm: str):
    if algorithm == "MaskablePPO":
        from sb3_contrib import MaskablePPO as cls
    else:
        from stable_baselines3 import PPO as cls
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cls.load(str(model_zip), device="cpu")
    except Exception as exc:  # noqa: BLE001 - report any load failure as one line
        raise ConfigError(
            f"cannot load the {algorithm} model ({type(exc).__name__}: {exc})",
            source=str(model_zip),
        ) from None


# -- the exported module ------------------------------------------------------------------------------
def make_export_module(policy: Any, obs_norm: dict[str, Any] | None = None):
    """The ``torch.nn.Module`` that is exported: normalisation + actor + masking/clipping.

    ``policy`` is an SB3 ``ActorCriticPolicy`` (PPO) or sb3-contrib
    ``MaskableActorCriticPolicy`` with a Box observation space and a ``Discrete`` or ``Box``
    action space. Discrete: ``forward(obs, action_mask) -> (action int64, probs)``; Box:
    ``forward(obs) -> action``.
    """
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


# -- export ----------------------------------------------------------------------------------------
def _make_env(tm: TrainedModel):
    """The training environment, built only to read its names, spaces and scenario."""
    if tm.kind == "pull":
        from envs.audit_dispatch import AuditDispatchEnv as cls
    else:
        from envs.batch_dispatch import BatchDispatchEnv as cls
    kwargs = dict(tm.env_kwargs)
    if kwargs.get("scenario") is None:
        raise ConfigError(
            "the training scenario is unknown (no env.json or config.yaml of a `dispatch "
            "train` run next to the model); pass --scenario (the scenario file it was "
            "trained on)",
            source=str(tm.model_path),
        )
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "render_mode"}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ConfigError(
            f"unknown environment argument(s) {', '.join(unknown)} for the {tm.kind} env",
            source=str(tm.model_path),
        )
    return cls(**kwargs), kwargs


def _check_spaces(tm: TrainedModel, env: Any) -> None:
    from gymnasium import spaces

    mo, eo = tm.model.observation_space, env.observation_space
    if mo.shape != eo.shape:
        raise ConfigError(
            f"the model expects observations of shape {mo.shape} but the scenario gives "
            f"{eo.shape}: wrong scenario or overrides for this model",
            source=str(tm.model_path),
        )
    ma, ea = tm.model.action_space, env.action_space
    same = (
        isinstance(ma, spaces.Discrete) and isinstance(ea, spaces.Discrete) and ma.n == ea.n
    ) or (isinstance(ma, spaces.Box) and isinstance(ea, spaces.Box) and ma.shape == ea.shape)
    if not same:
        raise ConfigError(
            f"the model's action space {ma} does not match the environment's {ea}",
            source=str(tm.model_path),
        )
    if tm.obs_norm is not None and tm.obs_norm["mean"].shape != mo.shape:
        raise ConfigError(
            f"the VecNormalize statistics have shape {tm.obs_norm['mean'].shape}, the model "
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


def _example_inputs(obs_space, n_actions: int, n: int, seed: int = 0):
    """Random observations within the space's bounds and random non-empty masks."""
    rng = np.random.default_rng(seed)
    low = np.asarray(obs_space.low, dtype=np.float64)
    high = np.asarray(obs_space.high, dtype=np.float64)
    lo = np.where(np.isfinite(low), low, -1.0)
    hi = np.where(np.isfinite(high), high, 1.0)
    obs = (lo + rng.random((n, lo.size)) * (hi - lo)).astype(np.float32)
    mask = rng.random((n, n_actions)) < 0.5
    mask[np.arange(n), rng.integers(0, n_actions, n)] = True
    return obs, mask


def _torch_reference(mod, obs: np.ndarray, mask: np.ndarray | None):
    import torch

    with torch.no_grad():
        if mask is None:
            return (mod(torch.as_tensor(obs)).numpy(),)
        a, p = mod(torch.as_tensor(obs), torch.as_tensor(mask))
        return a.numpy(), p.numpy()


def _verify_onnx(data: bytes, mod, obs, mask, discrete: bool) -> None:
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
    feeds = {"obs": obs, "action_mask": mask} if discrete else {"obs": obs}
    got = sess.run(None, feeds)
    ref = _torch_reference(mod, obs, mask if discrete else None)
    if discrete:
        probs_ok = np.allclose(got[1], ref[1], atol=1e-5)
        # Decisions may only differ on numerical ties of the top two probabilities.
        diff = got[0] != ref[0]
        top2 = np.sort(ref[1], axis=1)[:, -2:]
        ties = (top2[:, 1] - top2[:, 0]) <= 1e-5
        if not probs_ok or np.any(diff & ~ties):
            raise DispatchError(
                "the exported ONNX graph disagrees with the PyTorch policy on random inputs "
                "(internal export error)"
            )
    elif not np.allclose(got[0], ref[0], atol=1e-5):
        raise DispatchError(
            "the exported ONNX graph disagrees with the PyTorch policy on random inputs "
            "(internal export error)"
        )


def _onnx_bytes(mod, obs, mask, discrete: bool, opset: int, meta: dict[str, str]) -> bytes:
    import onnx
    import torch

    if discrete:
        args = (torch.as_tensor(obs), torch.as_tensor(mask))
        inputs, outputs = ["obs", "action_mask"], ["action", "probs"]
    else:
        args = (torch.as_tensor(obs),)
        inputs, outputs = ["obs"], ["action"]
    dyn = {n: {0: "batch"} for n in inputs + outputs}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation notices
            torch.onnx.export(
                mod,
                args,
                str(path),
                dynamo=False,
                input_names=inputs,
                output_names=outputs,
                dynamic_axes=dyn,
                opset_version=opset,
                do_constant_folding=True,
            )
        proto = onnx.load(str(path))
    onnx.checker.check_model(proto, full_check=True)
    proto.producer_name = "dispatch.export"
    proto.doc_string = "dispatch exported dispatcher; see the JSON sidecar for the schema"
    for k, v in meta.items():
        entry = proto.metadata_props.add()
        entry.key = k
        entry.value = v
    return proto.SerializeToString()


def _torchscript_bytes(mod, obs, mask, discrete: bool) -> bytes:
    import io

    import torch

    args = (torch.as_tensor(obs), torch.as_tensor(mask)) if discrete else (torch.as_tensor(obs),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(mod, args, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getvalue()


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, np.generic):
        return _jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "model_dump"):
        return _jsonable(x.model_dump(mode="json"))
    return str(x)


# Units and scaling of every observation feature (dispatch.observation; the builder clips
# each value to the [low, high] recorded in the sidecar).
FEATURE_NOTES = {
    "mean_risk": "mean upstream risk of the waiting tasks, [0, 1] (class prior if empty)",
    "severe_share": "share of waiting tasks that count against wellbeing caps, [0, 1]",
    "harm_rate": "log1p(mean risk x severity x reach per minute) / log1p(1e4), [0, 2]",
    "queue_len": "log1p(waiting tasks) / log1p(1000), [0, 2]",
    "oldest_age": "(now - arrival of the oldest waiting task) / class SLA, [0, 5]",
    "expiry_pressure": "x / (1 + x), x = waiting x mean handling / mean patience, [0, 1]",
    "eligible": "1 if the free reviewer's group may take the bucket, else 0",
    "speed": "the group's speed factor for the class, [0, 4] (0 if not eligible)",
    "accuracy": "eligible x (r sens + (1 - r) spec - fatigue), r = mean risk, [0, 1]",
    "free_eligible": "log1p(free reviewers eligible for the bucket) / log1p(all reviewers)",
    "tod_sin": "sin(2 pi minute-of-day / 1440), minute 0 = midnight",
    "tod_cos": "cos(2 pi minute-of-day / 1440)",
    "elapsed": "simulated minutes / horizon, [0, 1]",
    "fatigue": "the reviewer's accuracy drop / its group's max_drop, [0, 1]",
    "at_cap": "1 if the reviewer reached its wellbeing cap (severe buckets masked)",
    "free_reviewers": "free reviewers (incl. the asking one in pull mode) / all reviewers",
    "backlog": "log1p(all waiting tasks) / log1p(1e4), [0, 2]",
}


def _layout(names: list[str], buckets: list[str], mode: str) -> dict[str, Any]:
    """Feature-major layout: per-bucket blocks (bucket order = action order), then globals."""
    blocks: list[str] = []
    globals_: list[str] = []
    for n in names:
        if n.endswith("]") and "[" in n:
            f = n[: n.index("[")]
            if f not in blocks:
                blocks.append(f)
        else:
            globals_.append(n)
    B = len(buckets)
    return {
        "order": (
            f"feature-major: {len(blocks)} blocks of {B} per-bucket values (bucket order = "
            f"action order), then {len(globals_)} globals; index of feature block k for "
            f"bucket b = k * {B} + b; names[i] names index i"
        ),
        "bucket_features": blocks,
        "globals": globals_,
        "units": {f: FEATURE_NOTES.get(f, "see dispatch.observation") for f in blocks + globals_},
        "builder": f"dispatch.observation.ObservationBuilder(sim, {mode!r}).{mode}(...)",
    }


def export_model(
    run_dir_or_model_zip: str | Path,
    out_path: str | Path,
    format: Format = "onnx",  # noqa: A002 - the documented keyword
    opset: int = DEFAULT_OPSET,
    *,
    vecnormalize: str | Path | None = None,
    scenario: str | Path | Any | None = None,
    env_kwargs: dict[str, Any] | None = None,
    run_id: str | None = None,
    verify: bool = True,
) -> Path:
    """Export a trained PPO / MaskablePPO dispatcher; returns the model path.

    ``run_dir_or_model_zip`` is a ``dispatch train`` run folder (exports its ``model.zip``)
    or a model file in one (``best_model.zip``, ``checkpoints/model_N_steps.zip``); the
    run's ``env.json`` (or ``config.yaml``) gives the environment and scenario, the
    VecNormalize statistics saved next to the model are baked into the graph. For a model
    file outside a run folder give ``scenario`` (path or Scenario) and ``env_kwargs`` as
    used in training (``horizon``, ``scenario_overrides``, ``interval``, ``on_demand``, ...;
    they change the recorded scenario digest, not the schema), and ``vecnormalize`` if the
    statistics are elsewhere. Writes ``out_path`` and its sidecar ``out_path + ".json"``
    (see the module docstring); ``verify`` first checks the ONNX graph against the
    PyTorch module on random inputs.
    """
    if format not in ("onnx", "torchscript"):
        raise ConfigError(f"must be 'onnx' or 'torchscript', got {format!r}", field="format")
    if format == "onnx" and not (MIN_OPSET <= int(opset) <= MAX_OPSET):
        raise ConfigError(
            f"opset {opset} is not supported; choose {MIN_OPSET}-{MAX_OPSET}", field="opset"
        )
    out = Path(out_path)
    if out.exists() and out.is_dir():
        raise ConfigError("is a folder; give the model file to write", source=str(out))
    import torch

    torch.set_num_threads(1)
    tm = load_trained(
        run_dir_or_model_zip,
        vecnormalize=vecnormalize,
        scenario=scenario,
        env_kwargs=env_kwargs,
    )
    if run_id is not None:
        tm.run_id = run_id
    env, used_kwargs = _make_env(tm)
    _check_spaces(tm, env)
    from gymnasium import spaces

    policy = tm.model.policy
    policy.set_training_mode(False)
    mod = make_export_module(policy, tm.obs_norm)
    discrete = isinstance(tm.model.action_space, spaces.Discrete)
    n_actions = int(tm.model.action_space.n) if discrete else int(tm.model.action_space.shape[0])
    obs_ex, mask_ex = _example_inputs(env.observation_space, n_actions, 64)
    mode = tm.kind
    scen = env.scenario
    digest = scen.digest()
    from dispatch.observation import layout_digest

    src_kw = used_kwargs.get("scenario")
    scen_source = str(src_kw) if isinstance(src_kw, (str, Path)) else None
    meta = {
        "dispatch.format": f"{FORMAT_NAME}/{FORMAT_VERSION}",
        "dispatch.kind": "discrete" if discrete else "priority_weights",
        "dispatch.scenario_digest": digest,
        "dispatch.obs_dim": str(env.observation_space.shape[0]),
        "dispatch.n_actions": str(n_actions),
    }
    if format == "onnx":
        data = _onnx_bytes(mod, obs_ex, mask_ex, discrete, int(opset), meta)
        if verify:
            _verify_onnx(data, mod, obs_ex, mask_ex, discrete)
    else:
        data = _torchscript_bytes(mod, obs_ex, mask_ex, discrete)

    obs_names = env.observation_names()
    act_names = env.action_names()
    space = env.observation_space
    if discrete:
        inputs = {
            "obs": {"dtype": "float32", "shape": ["batch", len(obs_names)]},
            "action_mask": {"dtype": "bool", "shape": ["batch", n_actions]},
        }
        outputs = {
            "action": {"dtype": "int64", "shape": ["batch"]},
            "probs": {"dtype": "float32", "shape": ["batch", n_actions]},
        }
        mask_doc: dict[str, Any] | None = {
            "input": "action_mask",
            "dtype": "bool",
            "shape": ["batch", n_actions],
            "semantics": (
                "True = the free reviewer may take the oldest task of this bucket now "
                "(eligible class and market, bucket non-empty, severe items allowed by the "
                "wellbeing cap), i.e. Simulation.candidates(reviewer); invalid buckets get "
                f"logit {MASK_LOGIT:g} before the softmax and are never chosen. At least one "
                "bucket must be valid."
            ),
        }
        act_meaning = (
            "index of the bucket (task class / market / risk band) whose oldest task the "
            "free reviewer takes"
        )
    else:
        inputs = {"obs": {"dtype": "float32", "shape": ["batch", len(obs_names)]}}
        outputs = {"action": {"dtype": "float32", "shape": ["batch", n_actions]}}
        mask_doc = None
        act_meaning = (
            "per-bucket priority weight in [-1, 1] (multiplier exp(2 w)) for the batch "
            "assignment (dispatch.observation.WeightedAssigner); deterministic policy mean, "
            "clipped to the bounds; no mask input"
        )
    norm = tm.obs_norm
    sidecar: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "artifact": {
            "file": out.name,
            "format": format,
            "sha256": hashlib.sha256(data).hexdigest(),
            "bytes": len(data),
            "opset": int(opset) if format == "onnx" else None,
            "exporter": "torch.onnx.export(dynamo=False)"
            if format == "onnx"
            else "torch.jit.trace",
            "runtime": (
                "onnxruntime (dispatch.deploy.DeployedDispatcher)"
                if format == "onnx"
                else "torch.jit.load (needs torch; not supported by dispatch.deploy)"
            ),
        },
        "kind": "discrete" if discrete else "priority_weights",
        "inputs": inputs,
        "outputs": outputs,
        "observation": {
            "size": len(obs_names),
            "dtype": "float32",
            "names": obs_names,
            "low": np.asarray(space.low, dtype=np.float64),
            "high": np.asarray(space.high, dtype=np.float64),
            **_layout(obs_names, act_names, mode),
        },
        "actions": {"n": n_actions, "names": act_names, "meaning": act_meaning},
        "mask": mask_doc,
        "normalization": {
            "enabled": norm is not None,
            "in_graph": True,
            "formula": (
                "clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), float64, "
                "then float32 (VecNormalize.normalize_obs); feed RAW observations"
                if norm is not None
                else "none: the model was trained on raw observations"
            ),
            "mean": norm["mean"] if norm is not None else None,
            "var": norm["var"] if norm is not None else None,
            "epsilon": norm["epsilon"] if norm is not None else None,
            "clip_obs": norm["clip_obs"] if norm is not None else None,
        },
        "environment": {
            "id": ENV_IDS[mode],
            "mode": mode,
            "kwargs": {k: v for k, v in used_kwargs.items() if k != "scenario"},
            "batch": (
                None
                if discrete
                else {"interval": float(env.interval), "on_demand": bool(env.on_demand)}
            ),
        },
        "scenario": {
            "name": scen.name,
            "digest": digest,
            "digest_note": "Scenario.digest() of the training scenario (overrides and "
            "training horizon applied)",
            "layout_digest": layout_digest(scen),
            "source": scen_source,
            "horizon": scen.horizon,
        },
        "training": {
            "run_id": tm.run_id,
            "run_dir": str(tm.run_dir.resolve()) if tm.run_dir is not None else None,
            "model": str(tm.model_path.resolve()),
            "vecnormalize": (
                str(tm.vecnormalize_path.resolve()) if tm.vecnormalize_path is not None else None
            ),
            "model_sha256": file_sha256(tm.model_path),
            "algorithm": tm.algorithm,
            "policy_class": type(policy).__name__,
            "num_timesteps": int(getattr(tm.model, "num_timesteps", 0)),
            "summary": tm.summary or None,
        },
        "versions": {
            "export": versions((*LEARNING_PACKAGES, "onnx", "onnxruntime")),
            "training": tm.run_versions or None,
        },
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    atomic_write_bytes(out, data)
    text = json.dumps(_jsonable(sidecar), indent=2, sort_keys=False) + "\n"
    atomic_write_bytes(sidecar_path(out), text.encode())
    return out
