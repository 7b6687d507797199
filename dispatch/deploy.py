"""Run an exported dispatcher in production: onnxruntime + numpy, nothing else.

:func:`dispatch.export.export_model` writes ``dispatcher.onnx`` (the whole decision in one
graph: observation normalisation, policy network, action masking) and its sidecar
``dispatcher.onnx.json`` (schema, normalisation statistics, scenario digest, versions,
the model's SHA-256). This module loads the pair and decides::

    from dispatch.deploy import DeployedDispatcher

    d = DeployedDispatcher("models/dispatcher.onnx")
    bucket = d.decide(obs, mask)                 # obs float32 [D], mask bool [B] -> int
    buckets = d.decide_batch(obs_rows, masks)    # [N, D], [N, B] -> int64 [N]
    p = d.probabilities(obs, mask)               # float32 [B] (or [N, B] for 2-D inputs)
    d.observation_names, d.action_names          # the schema, from the sidecar

Guarantees
----------
* Imports only the standard library, numpy, onnxruntime (lazily, when a model is loaded)
  and the light parts of ``dispatch`` (errors); never torch,
  stable-baselines3 or gymnasium. Nothing on the load path unpickles: the sidecar is JSON
  and the model is handed to onnxruntime as bytes.
* The model file's SHA-256 must equal the sidecar's ``artifact.sha256``; the graph's
  inputs and outputs must match the sidecar's schema. Otherwise :class:`DeploymentError`
  (also for a missing or malformed sidecar, or a TorchScript export, which needs torch).
* Inputs are validated before the session runs; problems raise
  :class:`InvalidInputError` (a ``ValueError`` and a ``DispatchError``) naming the problem:
  wrong shape, a non-floating dtype, NaN or inf (naming the feature), a value outside the
  feature's documented range (``check_range=True``, default; tolerance 1e-4), a mask that
  is not boolean (or 0/1), or a mask with no valid bucket.
* onnxruntime runs with ``intra_op_num_threads = inter_op_num_threads = 1`` and sequential
  execution: one core per process, deterministic results.

Pull models (``kind == "discrete"``) need the action mask: ``True`` = the reviewer may take
that bucket now (eligible, non-empty, within its wellbeing cap). Priority-weight models
(``kind == "priority_weights"``) take no mask (a given mask is ignored) and return the
per-bucket weights (float32 ``[B]``) instead of an index.

The policy ``onnx`` (:class:`dispatch.policies.onnx.DeployedPolicy`) runs an exported model
inside the simulator with this runtime, so ``dispatch simulate SCENARIO --policy onnx -p
path=dispatcher.onnx`` and experiment comparisons evaluate the production artefact itself.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import ConfigError, DispatchError

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "DeployedDispatcher",
    "DeploymentError",
    "InvalidInputError",
    "sidecar_path",
]

FORMAT_NAME = "dispatch-policy-export"
FORMAT_VERSION = 1
RANGE_TOLERANCE = 1e-4
KINDS = ("discrete", "priority_weights")


class DeploymentError(ConfigError):
    """The exported artefact cannot be used: missing or malformed sidecar, SHA-256
    mismatch, unsupported format, or a model that does not fit the scenario."""


class InvalidInputError(DispatchError, ValueError):
    """An observation or mask handed to the dispatcher does not fit the schema."""


def sidecar_path(model_path: str | Path) -> Path:
    """The sidecar of an exported model: the model path with ``.json`` appended."""
    p = Path(model_path)
    return p.with_name(p.name + ".json")


def _load_sidecar(model: Path) -> dict[str, Any]:
    side = sidecar_path(model)
    if not side.is_file():
        raise DeploymentError(
            f"sidecar {side.name} not found next to the model; `dispatch export` writes "
            "both files: copy them together",
            source=str(model),
        )
    try:
        data = json.loads(side.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DeploymentError(
            f"cannot read the sidecar as JSON ({exc})", source=str(side)
        ) from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise DeploymentError(
            f"not a dispatch export sidecar (expected format {FORMAT_NAME!r})", source=str(side)
        )
    version = data.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise DeploymentError(
            f"sidecar format_version {version!r} is not supported by this runtime (knows "
            f"1-{FORMAT_VERSION}); upgrade dispatch or re-export",
            source=str(side),
        )
    try:
        art = data["artifact"]
        kind = data["kind"]
        obs = data["observation"]
        acts = data["actions"]
        size, n = int(obs["size"]), int(acts["n"])
        names, act_names = list(obs["names"]), list(acts["names"])
        low = np.asarray(obs["low"], dtype=np.float32)
        high = np.asarray(obs["high"], dtype=np.float32)
        sha = str(art["sha256"])
        fmt = art["format"]
    except (KeyError, TypeError, ValueError) as exc:
        raise DeploymentError(
            f"malformed sidecar (missing or bad field: {exc})", source=str(side)
        ) from None
    if fmt != "onnx":
        raise DeploymentError(
            f"this is a {fmt} export; the runtime runs ONNX only (TorchScript needs torch: "
            "torch.jit.load); export with --format onnx",
            source=str(model),
        )
    if kind not in KINDS:
        raise DeploymentError(f"unknown model kind {kind!r}", source=str(side))
    if len(names) != size or low.shape != (size,) or high.shape != (size,) or len(act_names) != n:
        raise DeploymentError(
            "malformed sidecar: observation names/bounds or action names do not match the "
            "declared sizes",
            source=str(side),
        )
    data["_parsed"] = (kind, size, n, names, act_names, low, high, sha)
    return data


class DeployedDispatcher:
    """An exported dispatcher loaded with onnxruntime (see the module docstring).

    ``path`` is the ``.onnx`` file (its sidecar ``<path>.json`` must sit next to it; giving
    the sidecar's path works too). ``check_range`` rejects observations outside the
    schema's per-feature bounds (they mean the caller built them differently).
    """

    def __init__(self, path: str | Path, *, check_range: bool = True):
        p = Path(path)
        if p.name.endswith(".onnx.json") or (p.suffix == ".json" and not p.is_dir()):
            p = p.with_name(p.name[: -len(".json")])
        self.path = p
        if not p.is_file():
            raise DeploymentError(
                "model file not found (give the .onnx written by `dispatch export`)",
                source=str(p),
            )
        meta = _load_sidecar(p)
        kind, size, n, names, act_names, low, high, sha = meta.pop("_parsed")
        data = p.read_bytes()
        actual = hashlib.sha256(data).hexdigest()
        if actual != sha.lower():
            raise DeploymentError(
                f"SHA-256 mismatch: the file hashes to {actual[:16]}..., its sidecar expects "
                f"{sha[:16]}...; the model was modified or belongs to another export; "
                "re-export it (refusing to load)",
                source=str(p),
            )
        self.sidecar: dict[str, Any] = meta
        self.kind: str = kind
        self.obs_dim: int = size
        self.n_actions: int = n
        self.observation_names: list[str] = names
        self.action_names: list[str] = act_names
        self.low = low
        self.high = high
        self.sha256 = actual
        self.check_range = bool(check_range)
        self._lo = (low - RANGE_TOLERANCE).astype(np.float32)
        self._hi = (high + RANGE_TOLERANCE).astype(np.float32)
        self.scenario_digest: str | None = (meta.get("scenario") or {}).get("digest")
        self._discrete = kind == "discrete"
        self._mask_bool = True
        self._session = self._open(data)

    # -- loading ------------------------------------------------------------------------------
    def _open(self, data: bytes):
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads = 1
        so.inter_op_num_threads = 1
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.log_severity_level = 3
        try:
            sess = ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own types
            raise DeploymentError(
                f"onnxruntime cannot load the model ({type(exc).__name__}: {exc})",
                source=str(self.path),
            ) from None
        ins = {i.name: i for i in sess.get_inputs()}
        outs = [o.name for o in sess.get_outputs()]
        want_in = ["obs", "action_mask"] if self._discrete else ["obs"]
        want_out = ["action", "probs"] if self._discrete else ["action"]
        ok = sorted(ins) == sorted(want_in) and outs == want_out
        if ok:
            shape = ins["obs"].shape
            ok = len(shape) == 2 and shape[1] == self.obs_dim and ins["obs"].type == "tensor(float)"
            if ok and self._discrete:
                mshape = ins["action_mask"].shape
                ok = len(mshape) == 2 and mshape[1] == self.n_actions
                self._mask_bool = ins["action_mask"].type == "tensor(bool)"
        if not ok:
            raise DeploymentError(
                f"the graph's inputs {sorted(ins)} / outputs {outs} do not match the sidecar "
                f"schema (obs [batch, {self.obs_dim}]"
                + (f", action_mask [batch, {self.n_actions}]" if self._discrete else "")
                + ")",
                source=str(self.path),
            )
        return sess

    # -- validation -----------------------------------------------------------------------------
    def _obs(self, obs: Any, batched: bool) -> np.ndarray:
        x = obs if isinstance(obs, np.ndarray) else np.asarray(obs)
        if x.dtype.kind != "f":
            raise InvalidInputError(
                f"obs must be a floating-point array (float32), got dtype {x.dtype}"
            )
        D = self.obs_dim
        if batched:
            if x.ndim != 2 or x.shape[1] != D or x.shape[0] == 0:
                raise InvalidInputError(f"obs must have shape (N, {D}) with N >= 1, got {x.shape}")
        elif x.shape != (D,) and x.shape != (1, D):
            raise InvalidInputError(f"obs must have shape ({D},), got {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float32).reshape(-1, D)
        # One pass on the fast path: NaN fails both comparisons, +-inf one of them.
        if self.check_range:
            ok = bool((x >= self._lo).all() and (x <= self._hi).all())
        else:
            ok = bool(np.isfinite(x).all())
        if not ok:
            self._diagnose(x, batched)
        return x

    def _diagnose(self, x: np.ndarray, batched: bool) -> None:
        finite = np.isfinite(x)
        if not finite.all():
            r, j = np.argwhere(~finite)[0]
            where = f" (row {r})" if batched else ""
            raise InvalidInputError(
                f"obs has a non-finite value {x[r, j]} at feature {self.observation_names[j]!r} "
                f"(index {j}){where}"
            )
        bad = (x < self._lo) | (x > self._hi)
        r, j = np.argwhere(bad)[0]
        where = f" (row {r})" if batched else ""
        raise InvalidInputError(
            f"obs feature {self.observation_names[j]!r} (index {j}) = {x[r, j]:.6g} is "
            f"outside its schema range [{self.low[j]:g}, {self.high[j]:g}]{where}: "
            "build observations with dispatch.observation.ObservationBuilder "
            "(or pass check_range=False)"
        )

    def _mask(self, mask: Any, rows: int, batched: bool) -> np.ndarray:
        if mask is None:
            raise InvalidInputError(
                "this dispatcher needs an action mask (True = the bucket may be chosen)"
            )
        m = mask if isinstance(mask, np.ndarray) else np.asarray(mask)
        B = self.n_actions
        if batched:
            if m.shape != (rows, B):
                raise InvalidInputError(f"mask must have shape ({rows}, {B}), got {m.shape}")
        elif m.shape != (B,) and m.shape != (1, B):
            raise InvalidInputError(f"mask must have shape ({B},), got {m.shape}")
        if m.dtype != np.bool_:
            if m.dtype.kind not in "iuf":
                raise InvalidInputError(f"mask must be boolean (or 0/1), got dtype {m.dtype}")
            mb = m != 0
            if not np.array_equal(m, mb):
                raise InvalidInputError("mask must contain only 0/1 (or True/False) values")
            m = mb
        m = np.ascontiguousarray(m).reshape(rows, B)
        has = m.any(axis=1)
        if not has.all():
            r = int(np.argmin(has))
            where = f" (row {r})" if batched else ""
            raise InvalidInputError(
                f"the action mask has no valid bucket{where}: nothing can be dispatched; only "
                "ask when the reviewer has at least one candidate bucket"
            )
        if not self._mask_bool:
            m = m.astype(np.float32)
        return m

    # -- running ---------------------------------------------------------------------------------
    def _run(self, x: np.ndarray, m: np.ndarray | None) -> list[np.ndarray]:
        feeds = {"obs": x} if m is None else {"obs": x, "action_mask": m}
        return self._session.run(None, feeds)

    def decide(self, obs: Any, mask: Any = None) -> int | np.ndarray:
        """One decision: the bucket index (pull models) or the weights float32 [B]
        (priority-weight models, mask ignored)."""
        x = self._obs(obs, False)
        if not self._discrete:
            return self._run(x, None)[0][0]
        m = self._mask(mask, 1, False)
        a = int(self._run(x, m)[0][0])
        if not m[0, a]:  # pragma: no cover - the graph masks; defence in depth
            raise DeploymentError(f"the model chose masked bucket {a}", source=str(self.path))
        return a

    def decide_batch(self, obs: Any, masks: Any = None) -> np.ndarray:
        """Many decisions at once: int64 [N] (pull) or float32 [N, B] (priority weights)."""
        x = self._obs(obs, True)
        if not self._discrete:
            return self._run(x, None)[0]
        m = self._mask(masks, x.shape[0], True)
        return self._run(x, m)[0]

    def probabilities(self, obs: Any, mask: Any = None) -> np.ndarray:
        """The masked action probabilities: float32 [B] for one observation, [N, B] for a
        2-D batch. Pull models only."""
        if not self._discrete:
            raise InvalidInputError(
                "probabilities are defined for pull (discrete) models only; this model "
                "outputs priority weights"
            )
        x0 = obs if isinstance(obs, np.ndarray) else np.asarray(obs)
        batched = x0.ndim == 2 and not (
            mask is not None and np.ndim(mask) == 1 and x0.shape[0] == 1
        )
        x = self._obs(x0, batched)
        m = self._mask(mask, x.shape[0], batched)
        p = self._run(x, m)[1]
        return p if batched else p[0]

    def __repr__(self) -> str:
        return (
            f"DeployedDispatcher({str(self.path)!r}, kind={self.kind}, obs_dim={self.obs_dim}, "
            f"n_actions={self.n_actions}, scenario={self.scenario_digest})"
        )
