"""Paired comparison of a trained dispatcher against rules on common random numbers.

Every policy runs the same seeds (same arrivals, task sizes and reviewer decisions), so the
per-seed differences are paired and their confidence interval is narrow::

    python benchmarks/compare_learned.py runs/maskable_ecommerce \\
        --scenario experiments/scenarios/ecommerce_day.yaml --baselines fifo priority --seeds 10
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from dispatch.objective import Objective  # noqa: E402
from dispatch.scenario import load_scenario  # noqa: E402
from dispatch.simulator import simulate  # noqa: E402
from dispatch.stats import mean_ci  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", help="run folder written by `dispatch train`")
    ap.add_argument("--scenario", default=str(ROOT / "experiments/scenarios/ecommerce_day.yaml"))
    ap.add_argument("--baselines", nargs="+", default=["fifo", "priority"])
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--checkpoint", default="final", choices=["final", "best"])
    ap.add_argument("--metrics", nargs="*", default=["harm_exposure", "sla_breaches", "abandoned"])
    args = ap.parse_args(argv)
    scen = load_scenario(args.scenario)
    obj = Objective()
    arms = {"learned": ("learned", {"model": args.run, "checkpoint": args.checkpoint})}
    arms.update({b: (b, {}) for b in args.baselines})
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    cost: dict[str, list[float]] = {k: [] for k in arms}
    extra: dict[str, dict[str, list[float]]] = {k: {m: [] for m in args.metrics} for k in arms}
    t0 = time.perf_counter()
    for s in seeds:
        for label, (name, params) in arms.items():
            res = simulate(scen, name, s, **params)
            cost[label].append(obj.cost(res.overall))
            for m in args.metrics:
                extra[label][m].append(res.overall[m])
    print(f"{scen.name}: seeds {seeds[0]}..{seeds[-1]}, objective (lower is better)")
    head = f"{'policy':<10} {'objective':>10} {'95% CI':>20}" + "".join(
        f" {m:>14}" for m in args.metrics
    )
    print(head)
    for label in arms:
        m, lo, hi = mean_ci(cost[label])
        row = f"{label:<10} {m:>10.1f} {f'[{lo:.0f}, {hi:.0f}]':>20}"
        row += "".join(f" {np.mean(extra[label][k]):>14.1f}" for k in args.metrics)
        print(row)
    learned = np.asarray(cost["learned"])
    for b in args.baselines:
        base = np.asarray(cost[b])
        d = learned - base
        dm, dlo, dhi = mean_ci(d)
        rel = 100 * dm / base.mean()
        wins = int((d < 0).sum())
        print(
            f"learned - {b}: {dm:+.1f} ({rel:+.1f}%), 95% CI [{dlo:+.1f}, {dhi:+.1f}]; "
            f"learned better on {wins}/{len(d)} seeds"
        )
    print(f"({time.perf_counter() - t0:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
