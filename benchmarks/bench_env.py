"""Environment throughput and the environment's share of PPO training time.

Measures, on ``ecommerce_day`` (42 buckets, ~21,000 decisions a day):

1. the bare simulator stepped decision by decision (``next_decision``/``decide`` with a
   FIFO choice): the floor any pull environment pays;
2. ``AuditDispatchEnv`` steps/s with random masked actions over full days (target >= 20k/s),
   and the cost of one observation (``ObservationBuilder.pull``) alone;
3. ``BatchDispatchEnv`` steps/s (5-minute epochs, on-demand min-cost-flow assignment);
4. a short MaskablePPO ``learn`` with a timing wrapper around the environment: the share of
   wall time spent inside ``env.step``/``env.reset`` (the rest is policy inference, rollout
   bookkeeping and gradient updates).

    python benchmarks/bench_env.py [--days 3] [--train-steps 8192] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SCENARIO = ROOT / "experiments" / "scenarios" / "ecommerce_day.yaml"


def bench_simulator(days: int) -> float:
    from dispatch.policies.rules import FIFO
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    class Deferred(FIFO):
        defer = True

    scen = load_scenario(SCENARIO)
    n = 0
    t = 0.0
    for seed in range(days):
        sim = Simulation(scen, Deferred(), seed)
        t0 = time.perf_counter()
        while (d := sim.next_decision()) is not None:
            r, cands = d
            sim.decide(cands[0])
            n += 1
        t += time.perf_counter() - t0
    return n / t


def bench_pull_env(days: int) -> tuple[float, float]:
    from envs.audit_dispatch import AuditDispatchEnv

    env = AuditDispatchEnv(SCENARIO)
    n = 0
    t = 0.0
    for seed in range(days):
        rng = np.random.default_rng(seed)
        u = rng.random(200_000)
        env.reset(seed=seed)
        done = False
        t0 = time.perf_counter()
        while not done:
            valid = np.flatnonzero(env._mask)
            _, _, done, _, _ = env.step(valid[int(u[n % 200_000] * len(valid))])
            n += 1
        t += time.perf_counter() - t0
    # One observation, mid-day state, repeated.
    env.reset(seed=0)
    for _ in range(10_000):
        env.step(int(np.flatnonzero(env._mask)[0]))
    builder, reviewer = env._builder, env.reviewer
    k = 20_000
    t0 = time.perf_counter()
    for _ in range(k):
        builder.pull(reviewer)
    obs_us = (time.perf_counter() - t0) / k * 1e6
    return n / t, obs_us


def bench_batch_env(days: int) -> float:
    from envs.batch_dispatch import BatchDispatchEnv

    env = BatchDispatchEnv(SCENARIO)
    n = 0
    t0 = time.perf_counter()
    for seed in range(days):
        rng = np.random.default_rng(seed)
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, done, _, _ = env.step(rng.uniform(-1, 1, env.n_buckets).astype(np.float32))
            n += 1
    return n / (time.perf_counter() - t0)


def bench_training_share(steps: int) -> dict[str, float]:
    import gymnasium as gym
    import torch

    torch.set_num_threads(1)
    from sb3_contrib import MaskablePPO
    from stable_baselines3.common.vec_env import DummyVecEnv

    from envs.audit_dispatch import AuditDispatchEnv

    class Timed(gym.Wrapper):
        elapsed = 0.0

        def step(self, action):
            t0 = time.perf_counter()
            out = self.env.step(action)
            Timed.elapsed += time.perf_counter() - t0
            return out

        def reset(self, **kw):
            t0 = time.perf_counter()
            out = self.env.reset(**kw)
            Timed.elapsed += time.perf_counter() - t0
            return out

    venv = DummyVecEnv([lambda: Timed(AuditDispatchEnv(SCENARIO))])
    model = MaskablePPO(
        "MlpPolicy", venv, n_steps=1024, batch_size=256, n_epochs=10, seed=0, device="cpu"
    )
    t0 = time.perf_counter()
    model.learn(total_timesteps=steps)
    total = time.perf_counter() - t0
    return {
        "train_steps": float(steps),
        "train_seconds": total,
        "train_steps_per_second": steps / total,
        "env_seconds": Timed.elapsed,
        "env_share": Timed.elapsed / total,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=3, help="simulated days per measurement")
    ap.add_argument("--train-steps", type=int, default=8192)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    out: dict[str, float] = {}
    out["simulator_decisions_per_second"] = bench_simulator(args.days)
    print(f"bare simulator (stepped, FIFO):    {out['simulator_decisions_per_second']:>9.0f} /s")
    sps, obs_us = bench_pull_env(args.days)
    out["pull_env_steps_per_second"] = sps
    out["observation_us"] = obs_us
    print(f"AuditDispatchEnv (random masked):  {sps:>9.0f} steps/s  (target >= 20000)")
    print(f"  one observation (42 buckets):    {obs_us:>9.1f} us")
    out["batch_env_steps_per_second"] = bench_batch_env(1)
    print(f"BatchDispatchEnv (5-min epochs):   {out['batch_env_steps_per_second']:>9.1f} steps/s")
    if args.train_steps > 0:
        tr = bench_training_share(args.train_steps)
        out.update(tr)
        print(
            f"MaskablePPO learn {int(tr['train_steps'])} steps: {tr['train_seconds']:.1f} s "
            f"({tr['train_steps_per_second']:.0f} steps/s); in env.step/reset: "
            f"{tr['env_seconds']:.2f} s = {100 * tr['env_share']:.1f}%"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
