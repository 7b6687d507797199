"""Quality check: does a trained dispatcher rediscover the c-mu rule on one server?

Simulates ``cmu_single_server`` under the trained model (``learned``), the c-mu static
priority order (classes by decreasing holding_cost / mean handling), the ``cmu`` rule and
FIFO on the same seeds (common random numbers), and reports the holding-cost rate

    sum_k holding_cost_k x (mean number of class-k tasks waiting)
      = sum_k holding_cost_k x arrival rate_k x mean wait_k       (Little's law)

with the paired difference of the learned policy to the c-mu order::

    python benchmarks/quality_cmu.py runs/ppo_cmu [--seeds 10] [--horizon 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch.scenario import load_scenario  # noqa: E402
from dispatch.simulator import simulate  # noqa: E402
from dispatch.stats import mean_ci  # noqa: E402


def holding_cost_rate(result, scenario) -> float:
    window = scenario.horizon - scenario.warmup
    total = 0.0
    for c in scenario.classes:
        m = result.per_class[c.name]
        if m["arrivals"] and m["mean_wait"] == m["mean_wait"]:
            total += c.holding_cost * m["arrivals"] / window * m["mean_wait"]
    return total


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run folder of a model trained on cmu_single_server")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--horizon", type=float, default=None)
    ap.add_argument("--checkpoint", default="final", choices=["final", "best"])
    args = ap.parse_args(argv)
    over = {"horizon": args.horizon} if args.horizon else None
    scen = load_scenario(ROOT / "experiments/scenarios/cmu_single_server.yaml", over)
    order = sorted(
        scen.classes, key=lambda c: -c.holding_cost / c.handling.expected
    )  # c-mu index, largest first
    order_names = [c.name for c in order]
    arms = {
        "learned": ("learned", {"model": args.run, "checkpoint": args.checkpoint}),
        "cmu_order": ("priority", {"order": order_names}),
        "cmu_rule": ("cmu", {}),
        "fifo": ("fifo", {}),
    }
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    rates: dict[str, list[float]] = {k: [] for k in arms}
    t0 = time.perf_counter()
    for s in seeds:
        for label, (name, params) in arms.items():
            rates[label].append(holding_cost_rate(simulate(scen, name, s, **params), scen))
    print(f"c-mu order: {order_names}; horizon {scen.horizon:g}; seeds {seeds[0]}..{seeds[-1]}")
    print(f"{'policy':<10} {'holding cost rate':>18} {'95% CI':>22} {'vs cmu_order':>13}")
    base = np.asarray(rates["cmu_order"])
    for label, vals in rates.items():
        v = np.asarray(vals)
        m, lo, hi = mean_ci(v)
        rel = (v - base) / base
        print(f"{label:<10} {m:>18.4f} {f'[{lo:.4f}, {hi:.4f}]':>22} {100 * rel.mean():>+12.2f}%")
    rel = (np.asarray(rates["learned"]) - base) / base
    dm, dlo, dhi = mean_ci(rel)
    print(
        f"learned vs c-mu order, paired relative difference: {100 * dm:+.2f}% "
        f"(95% CI [{100 * dlo:+.2f}%, {100 * dhi:+.2f}%]); per seed: "
        + ", ".join(f"{100 * x:+.2f}%" for x in rel)
    )
    print(f"({time.perf_counter() - t0:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
