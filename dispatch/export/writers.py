"""Writing the exported module as ONNX or TorchScript bytes, and verifying the ONNX graph.

The graph is exported with the TorchScript-based exporter (``torch.onnx.export(...,
dynamo=False)``), checked with ``onnx.checker`` and, before anything is written, run with
onnxruntime on random inputs within the observation space (and random non-empty masks)
against the PyTorch module: probabilities within 1e-5, decisions equal except on
numerical ties of the two most probable buckets.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np

from dispatch.errors import DispatchError

__all__ = ["example_inputs", "onnx_bytes", "torchscript_bytes", "verify_onnx"]


def example_inputs(obs_space, n_actions: int, n: int, seed: int = 0):
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


def verify_onnx(data: bytes, mod, obs, mask, discrete: bool) -> None:
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


def onnx_bytes(mod, obs, mask, discrete: bool, opset: int, meta: dict[str, str]) -> bytes:
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


def torchscript_bytes(mod, obs, mask, discrete: bool) -> bytes:
    import io

    import torch

    args = (torch.as_tensor(obs), torch.as_tensor(mask)) if discrete else (torch.as_tensor(obs),)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(mod, args, check_trace=False)
        buf = io.BytesIO()
        torch.jit.save(traced, buf)
    return buf.getvalue()
