"""Exported dispatcher latency and throughput: onnxruntime vs the SB3 model, same run.

On ``ecommerce_day`` observations (385 features, 42 buckets), recorded from the pull
environment with random valid actions:

1. single-decision latency, ``DeployedDispatcher.decide(obs, mask)`` (input validation
   included), p50 / p99 / mean over ``--calls`` calls (target: p99 < 1 ms), next to the raw
   ``InferenceSession.run`` and to the SB3 policy's ``predict(normalize(obs),
   action_masks=mask, deterministic=True)`` (``model.predict`` delegates to it);
2. batched decisions per second, ``decide_batch`` on batches of ``--batch`` rows (target:
   >= 50,000 decisions/s), next to SB3 ``predict`` on the same batches;
3. end to end: one simulated day under the ``onnx`` policy and under the ``learned``
   policy (same model, same seed): wall time and decisions per second.

Both sides run on one thread (``torch.set_num_threads(1)``; onnxruntime
``intra_op_num_threads=1``, sequential). The model is a MaskablePPO ``MlpPolicy`` with the
training default ``net_arch [64, 64]`` and VecNormalize statistics (``--run RUN`` benchmarks
a trained run folder instead; untrained weights cost the same to evaluate). Wall-clock
times (``time.perf_counter``): on a shared machine, run it twice.

    python benchmarks/bench_export.py [--calls 5000] [--batch 1024] [--run RUN] [--json OUT]

Exit status 1 if a target is missed.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "experiments" / "scenarios" / "ecommerce_day.yaml"
P99_TARGET_MS = 1.0
BATCH_TARGET = 50_000


def record(n: int) -> tuple[np.ndarray, np.ndarray]:
    """n raw observations and masks of ecommerce_day (random valid actions)."""
    from envs.audit_dispatch import AuditDispatchEnv

    env = AuditDispatchEnv(SCENARIO, horizon=480)
    rng = np.random.default_rng(0)
    obs_l, mask_l = [], []
    seed = 0
    while len(obs_l) < n:
        obs, _ = env.reset(options={"sim_seed": seed})
        seed += 1
        done = False
        while not done and len(obs_l) < n:
            m = env.action_masks()
            obs_l.append(obs)
            mask_l.append(m)
            obs, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(m))))
    return np.asarray(obs_l, dtype=np.float32), np.asarray(mask_l, dtype=bool)


def make_run(folder: Path, obs: np.ndarray) -> Path:
    """A run folder as `dispatch train` writes it: model.zip, its JSON statistics, env.json."""
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from dispatch.artifacts import NormStats, norm_file, space_to_json
    from dispatch.provenance import LEARNING_PACKAGES, versions
    from dispatch.training import make_env

    kwargs = {"scenario": str(SCENARIO), "horizon": 480.0}
    venv = VecNormalize(DummyVecEnv([lambda: make_env("pull", kwargs)]), norm_reward=False)
    venv.obs_rms.update(obs.astype(np.float64))  # realistic statistics
    model = MaskablePPO("MlpPolicy", venv, policy_kwargs={"net_arch": [64, 64]}, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save(folder / "model.zip")
    NormStats.from_vecnormalize(venv).save(norm_file(folder / "model.zip"))
    env = venv.venv.envs[0].unwrapped
    info = {
        "env": "pull",
        "algo": "maskable_ppo",
        "env_kwargs": kwargs,
        "observation_names": env.observation_names(),
        "action_names": env.action_names(),
        "normalize_obs": True,
        "observation_space": space_to_json(env.observation_space),
        "action_space": space_to_json(env.action_space),
    }
    (folder / "env.json").write_text(json.dumps(info))
    (folder / "versions.json").write_text(json.dumps(versions(LEARNING_PACKAGES)))
    return folder


def percentiles(ts: list[float]) -> dict[str, float]:
    a = np.asarray(ts) * 1e3
    return {
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "mean_ms": float(a.mean()),
    }


def time_calls(fn, args: list[tuple], warmup: int = 200) -> list[float]:
    for i in range(min(warmup, len(args))):
        fn(*args[i])
    ts = []
    clock = time.perf_counter
    for a in args:
        t0 = clock()
        fn(*a)
        ts.append(clock() - t0)
    return ts


def throughput(fn, batches: list[tuple], min_seconds: float = 1.0) -> float:
    fn(*batches[0])
    n = 0
    t0 = time.perf_counter()
    while True:
        for b in batches:
            fn(*b)
            n += len(b[0])
        dt = time.perf_counter() - t0
        if dt >= min_seconds:
            return n / dt


def end_to_end(onnx_path: Path, run: Path, horizon: float) -> dict[str, float]:
    from dispatch.policies import make_policy
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    scen = load_scenario(SCENARIO, {"horizon": horizon})
    out = {}
    for label, pol in (
        ("onnx", make_policy("onnx", path=str(onnx_path))),
        ("learned", make_policy("learned", model=str(run))),
    ):
        calls = 0
        inner = pol.select

        def counted(*a, _inner=inner):
            nonlocal calls
            calls += 1
            return _inner(*a)

        pol.select = counted
        sim = Simulation(scen, pol, 0)
        t0 = time.perf_counter()
        sim.run()
        dt = time.perf_counter() - t0
        out[f"sim_{label}_seconds"] = dt
        out[f"sim_{label}_decisions"] = float(calls)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=5000, help="single decisions timed")
    ap.add_argument("--batch", type=int, default=1024, help="rows per batched call")
    ap.add_argument("--run", type=Path, default=None, help="trained run folder to benchmark")
    ap.add_argument("--sim-horizon", type=float, default=1440.0, help="0 skips end to end")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(1)
    from dispatch.deploy import DeployedDispatcher
    from dispatch.export import export_model, load_trained

    obs, masks = record(max(args.calls, args.batch * 4))
    with tempfile.TemporaryDirectory() as tmp:
        run = args.run if args.run is not None else make_run(Path(tmp) / "run", obs)
        onnx_path = export_model(run, Path(tmp) / "dispatcher.onnx")
        tm = load_trained(run)
        policy = tm.policy
        norm = tm.obs_norm.normalize if tm.obs_norm is not None else (lambda x: x)
        maskable = tm.algorithm == "MaskablePPO"

        def sb3(o, m):
            if maskable:
                return policy.predict(norm(o), action_masks=m, deterministic=True)
            return policy.predict(norm(o), deterministic=True)

        d = DeployedDispatcher(onnx_path)
        sess = d._session
        n = args.calls
        single = [(obs[i], masks[i]) for i in range(n)]
        raw = [({"obs": obs[i : i + 1], "action_mask": masks[i : i + 1]},) for i in range(n)]
        res: dict[str, float] = {"obs_dim": float(d.obs_dim), "n_actions": float(d.n_actions)}
        for k, v in percentiles(time_calls(d.decide, single)).items():
            res[f"onnx_decide_{k}"] = v
        for k, v in percentiles(time_calls(lambda f: sess.run(None, f), raw)).items():
            res[f"onnx_session_{k}"] = v
        m_sb3 = min(n, 2000)
        for k, v in percentiles(time_calls(sb3, single[:m_sb3], warmup=50)).items():
            res[f"sb3_predict_{k}"] = v
        B = args.batch
        batches = [(obs[i : i + B], masks[i : i + B]) for i in range(0, len(obs) - B + 1, B)]
        res["onnx_batch_decisions_per_s"] = throughput(d.decide_batch, batches)
        res["sb3_batch_decisions_per_s"] = throughput(sb3, batches)
        if args.sim_horizon > 0:
            res.update(end_to_end(onnx_path, run, args.sim_horizon))

    ok_lat = res["onnx_decide_p99_ms"] < P99_TARGET_MS
    ok_thr = res["onnx_batch_decisions_per_s"] >= BATCH_TARGET
    print(f"ecommerce_day: obs {int(res['obs_dim'])} features, {int(res['n_actions'])} buckets")
    print(f"{'':34s}{'p50 ms':>9s}{'p99 ms':>9s}{'mean ms':>9s}")
    for label, key in (
        ("onnx DeployedDispatcher.decide", "onnx_decide"),
        ("onnx InferenceSession.run (raw)", "onnx_session"),
        ("sb3 predict (+normalize_obs)", "sb3_predict"),
    ):
        print(
            f"{label:34s}{res[key + '_p50_ms']:9.3f}{res[key + '_p99_ms']:9.3f}"
            f"{res[key + '_mean_ms']:9.3f}"
        )
    print(f"target p99 < {P99_TARGET_MS} ms: {'ok' if ok_lat else 'MISSED'}")
    print(f"batched ({B} rows): onnx {res['onnx_batch_decisions_per_s']:,.0f} decisions/s, "
          f"sb3 {res['sb3_batch_decisions_per_s']:,.0f} decisions/s; "
          f"target >= {BATCH_TARGET:,}: {'ok' if ok_thr else 'MISSED'}")  # fmt: skip
    if "sim_onnx_seconds" in res:
        for label in ("onnx", "learned"):
            s, k = res[f"sim_{label}_seconds"], res[f"sim_{label}_decisions"]
            print(f"simulated day, policy {label:8s}: {s:6.2f} s, {k:,.0f} decisions "
                  f"({k / s:,.0f} decisions/s incl. simulation)")  # fmt: skip
    if args.json is not None:
        args.json.write_text(json.dumps(res, indent=2) + "\n")
    return 0 if ok_lat and ok_thr else 1


if __name__ == "__main__":
    raise SystemExit(main())
