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

Modules: :mod:`~dispatch.export.source` (the trained model, loaded and checked),
:mod:`~dispatch.export.module` (the torch module), :mod:`~dispatch.export.writers` (ONNX /
TorchScript bytes and verification), :mod:`~dispatch.export.sidecar` (the JSON sidecar).

This package needs the learning extra (torch, stable-baselines3, sb3-contrib, onnx). It
loads the training artefacts without unpickling anything (:mod:`dispatch.artifacts`): a
model that would need it (a zip from elsewhere whose ``policy_kwargs`` are pickled, older
``vecnormalize.pkl`` statistics) is refused unless ``trust=True`` (``dispatch export
--trust-model``), for files whose source you trust. The deployed side never unpickles
anything.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from dispatch.deploy import FORMAT_NAME, FORMAT_VERSION, sidecar_path
from dispatch.errors import ConfigError
from dispatch.export.module import MASK_LOGIT, make_export_module
from dispatch.export.sidecar import build_sidecar, file_sha256
from dispatch.export.source import TrainedModel, load_trained
from dispatch.export.writers import example_inputs, onnx_bytes, torchscript_bytes, verify_onnx
from dispatch.io import atomic_write_bytes

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

Format = Literal["onnx", "torchscript"]


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
    trust: bool = False,
) -> Path:
    """Export a trained PPO / MaskablePPO dispatcher; returns the model path.

    ``run_dir_or_model_zip`` is a ``dispatch train`` run folder (exports its ``model.zip``)
    or a model file in one (``best_model.zip``, ``checkpoints/model_N_steps.zip``); the
    run's ``env.json`` (or ``config.yaml``) gives the environment and scenario, the
    VecNormalize statistics saved next to the model are baked into the graph. For a model
    file outside a run folder give ``scenario`` (path or Scenario) and ``env_kwargs`` as
    used in training (``horizon``, ``scenario_overrides``, ``interval``, ``on_demand``, ...;
    they change the recorded scenario digest, not the schema), and ``vecnormalize`` if the
    statistics are elsewhere (a ``.vecnormalize.json``). Writes ``out_path`` and its sidecar
    ``out_path + ".json"`` (see the module docstring); ``verify`` first checks the ONNX graph
    against the PyTorch module on random inputs. ``trust`` allows a model that needs
    unpickling (see :mod:`dispatch.artifacts`; only for files you trust).
    """
    out = _check_target(Path(out_path), format, opset)
    import torch

    torch.set_num_threads(1)
    tm = load_trained(
        run_dir_or_model_zip,
        vecnormalize=vecnormalize,
        scenario=scenario,
        env_kwargs=env_kwargs,
        trust=trust,
    )
    if run_id is not None:
        tm.run_id = run_id
    mod = make_export_module(tm.policy, tm.obs_norm)
    discrete = tm.kind == "pull"
    space = tm.env.observation_space
    n_actions = len(tm.env.action_names())
    obs_ex, mask_ex = example_inputs(space, n_actions, 64)
    meta = {
        "dispatch.format": f"{FORMAT_NAME}/{FORMAT_VERSION}",
        "dispatch.kind": "discrete" if discrete else "priority_weights",
        "dispatch.scenario_digest": tm.env.scenario.digest(),
        "dispatch.obs_dim": str(space.shape[0]),
        "dispatch.n_actions": str(n_actions),
    }
    if format == "onnx":
        data = onnx_bytes(mod, obs_ex, mask_ex, discrete, int(opset), meta)
        if verify:
            verify_onnx(data, mod, obs_ex, mask_ex, discrete)
    else:
        data = torchscript_bytes(mod, obs_ex, mask_ex, discrete)
    sidecar = build_sidecar(tm, out, data, format, int(opset))
    atomic_write_bytes(out, data)
    atomic_write_bytes(sidecar_path(out), (json.dumps(sidecar, indent=2) + "\n").encode())
    return out


def _check_target(out: Path, fmt: str, opset: int) -> Path:
    """Refuse a bad format, opset or output path before loading anything."""
    if fmt not in ("onnx", "torchscript"):
        raise ConfigError(f"must be 'onnx' or 'torchscript', got {fmt!r}", field="format")
    if fmt == "onnx" and not (MIN_OPSET <= int(opset) <= MAX_OPSET):
        raise ConfigError(
            f"opset {opset} is not supported; choose {MIN_OPSET}-{MAX_OPSET}", field="opset"
        )
    if out.exists() and out.is_dir():
        raise ConfigError("is a folder; give the model file to write", source=str(out))
    return out
