"""The export's JSON sidecar: everything a production caller needs to feed the model.

Plain JSON next to the model (``dispatcher.onnx`` -> ``dispatcher.onnx.json``); the schema
is documented in :mod:`dispatch.export`. :func:`build_sidecar` assembles it from the
loaded model, its training environment and the exported bytes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.deploy import FORMAT_NAME, FORMAT_VERSION
from dispatch.export.module import MASK_LOGIT
from dispatch.export.source import TrainedModel
from dispatch.provenance import LEARNING_PACKAGES, versions

__all__ = ["ENV_IDS", "build_sidecar", "feature_notes", "file_sha256", "jsonable"]

ENV_IDS = {"pull": "dispatch/AuditDispatch-v0", "batch": "dispatch/BatchDispatch-v0"}


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return jsonable(x.tolist())
    if isinstance(x, np.generic):
        return jsonable(x.item())
    if isinstance(x, float) and not math.isfinite(x):
        return None if math.isnan(x) else ("inf" if x > 0 else "-inf")
    if isinstance(x, (str, int, float, bool)) or x is None:
        return x
    if isinstance(x, Path):
        return str(x)
    if hasattr(x, "model_dump"):
        return jsonable(x.model_dump(mode="json"))
    return str(x)


def feature_notes(features: list[str], mode: str) -> dict[str, str]:
    """Units and scaling of each observation feature, for the sidecar's ``units``: the
    definitions and ranges of :func:`dispatch.observation.feature_table`, the one source."""
    from dispatch.observation import feature_table

    rows = {r["name"]: f"{r['definition']} Range {r['range']}." for r in feature_table(mode)}
    return {f: rows.get(f, "see dispatch.observation") for f in features}


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
        "units": feature_notes(blocks + globals_, mode),
        "builder": (
            f"dispatch.observation.ObservationBuilder(layout, {mode!r}).bind(sim).{mode}(...)"
        ),
    }


def _schema(discrete: bool, n_obs: int, n_actions: int) -> dict[str, Any]:
    """Inputs, outputs, mask semantics and the meaning of an action."""
    if not discrete:
        return {
            "inputs": {"obs": {"dtype": "float32", "shape": ["batch", n_obs]}},
            "outputs": {"action": {"dtype": "float32", "shape": ["batch", n_actions]}},
            "mask": None,
            "meaning": (
                "per-bucket priority weight in [-1, 1] (multiplier exp(2 w)) for the batch "
                "assignment (dispatch.observation.WeightedAssigner); deterministic policy "
                "mean, clipped to the bounds; no mask input"
            ),
        }
    return {
        "inputs": {
            "obs": {"dtype": "float32", "shape": ["batch", n_obs]},
            "action_mask": {"dtype": "bool", "shape": ["batch", n_actions]},
        },
        "outputs": {
            "action": {"dtype": "int64", "shape": ["batch"]},
            "probs": {"dtype": "float32", "shape": ["batch", n_actions]},
        },
        "mask": {
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
        },
        "meaning": (
            "index of the bucket (task class / market / risk band) whose oldest task the "
            "free reviewer takes"
        ),
    }


def _artifact(out: Path, data: bytes, fmt: str, opset: int) -> dict[str, Any]:
    onnx = fmt == "onnx"
    return {
        "file": out.name,
        "format": fmt,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "opset": int(opset) if onnx else None,
        "exporter": "torch.onnx.export(dynamo=False)" if onnx else "torch.jit.trace",
        "runtime": (
            "onnxruntime (dispatch.deploy.DeployedDispatcher)"
            if onnx
            else "torch.jit.load (needs torch; not supported by dispatch.deploy)"
        ),
    }


def _normalization(tm: TrainedModel) -> dict[str, Any]:
    norm = tm.obs_norm
    return {
        "enabled": norm is not None,
        "in_graph": True,
        "formula": (
            "clip((obs - mean) / sqrt(var + epsilon), -clip_obs, clip_obs), float64, "
            "then float32 (VecNormalize.normalize_obs); feed RAW observations"
            if norm is not None
            else "none: the model was trained on raw observations"
        ),
        "mean": norm.mean if norm is not None else None,
        "var": norm.var if norm is not None else None,
        "epsilon": norm.epsilon if norm is not None else None,
        "clip_obs": norm.clip_obs if norm is not None else None,
    }


def _scenario(tm: TrainedModel) -> dict[str, Any]:
    from dispatch.observation import layout_digest

    scen = tm.env.scenario
    src = tm.env_kwargs.get("scenario")
    return {
        "name": scen.name,
        "digest": scen.digest(),
        "digest_note": "Scenario.digest() of the training scenario (overrides and "
        "training horizon applied)",
        "layout_digest": layout_digest(scen),
        "source": str(src) if isinstance(src, (str, Path)) else None,
        "horizon": scen.horizon,
    }


def _training(tm: TrainedModel) -> dict[str, Any]:
    return {
        "run_id": tm.run_id,
        "run_dir": str(tm.run_dir.resolve()) if tm.run_dir is not None else None,
        "model": str(tm.model_path.resolve()),
        "vecnormalize": (
            str(tm.vecnormalize_path.resolve()) if tm.vecnormalize_path is not None else None
        ),
        "model_sha256": file_sha256(tm.model_path),
        "algorithm": tm.algorithm,
        "policy_class": type(tm.policy).__name__,
        "num_timesteps": tm.loaded.num_timesteps,
        "summary": tm.run.summary() or None,
    }


def build_sidecar(tm: TrainedModel, out: Path, data: bytes, fmt: str, opset: int) -> dict:
    """The sidecar of the exported bytes ``data`` written to ``out`` (JSON-ready)."""
    env = tm.env
    discrete = tm.kind == "pull"
    obs_names, act_names = env.observation_names(), env.action_names()
    schema = _schema(discrete, len(obs_names), len(act_names))
    sidecar: dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "artifact": _artifact(out, data, fmt, opset),
        "kind": "discrete" if discrete else "priority_weights",
        "inputs": schema["inputs"],
        "outputs": schema["outputs"],
        "observation": {
            "size": len(obs_names),
            "dtype": "float32",
            "names": obs_names,
            "low": np.asarray(env.observation_space.low, dtype=np.float64),
            "high": np.asarray(env.observation_space.high, dtype=np.float64),
            **_layout(obs_names, act_names, tm.kind),
        },
        "actions": {"n": len(act_names), "names": act_names, "meaning": schema["meaning"]},
        "mask": schema["mask"],
        "normalization": _normalization(tm),
        "environment": {
            "id": ENV_IDS[tm.kind],
            "mode": tm.kind,
            "kwargs": {k: v for k, v in tm.env_kwargs.items() if k != "scenario"},
            "batch": (
                None
                if discrete
                else {"interval": float(env.interval), "on_demand": bool(env.on_demand)}
            ),
        },
        "scenario": _scenario(tm),
        "training": _training(tm),
        "versions": {
            "export": versions((*LEARNING_PACKAGES, "onnx", "onnxruntime")),
            "training": tm.run.versions() or None,
        },
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    return jsonable(sidecar)
