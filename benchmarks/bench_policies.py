"""Benchmark every rule and solver policy inside the simulator on ``ecommerce_day``.

Run:  python benchmarks/bench_policies.py [--seed 0] [--horizon 1440] [--policies flow,cmu]

For each registered policy that runs without an artefact (trained models and exported
networks are skipped: they need a file), one full simulated day is run and timed, wall
clock, simulator included -- what a user waits for. Columns:

* ``decisions``: tasks started (one dispatch decision each, whoever made it);
* ``decisions/s``: decisions per wall-clock second, the dispatcher's throughput inside
  the simulator;
* ``tasks/s``: arrivals simulated per wall-clock second (the speed of a whole run);
* ``epochs``: batch epochs that reached the policy with free reviewers (batch policies);
* ``objective``: the comparison objective of that run (lower is better), for context only
  -- one seed is not a comparison; use ``dispatch run`` or several seeds for that.

The machine's other load shows up in wall time: read the figures as orders of magnitude.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dispatch.policies import make_policy  # noqa: E402
from dispatch.policies.registry import policy_classes  # noqa: E402
from dispatch.scenario import load_scenario  # noqa: E402
from dispatch.simulator import Simulation  # noqa: E402

SCENARIO = Path(__file__).resolve().parents[1] / "experiments" / "scenarios" / "ecommerce_day.yaml"


def runnable_policies() -> list[str]:
    """Registered policies that need no artefact (no required parameter, not 'learned')."""
    out = []
    for name, cls in sorted(policy_classes().items()):
        required = [k for k, f in cls.Params.model_fields.items() if f.is_required()]
        if name != "learned" and not required:
            out.append(name)
    return out


def bench(name: str, horizon: float, seed: int) -> dict[str, float | str]:
    """One simulated run of ``name``; wall time and counts."""
    overrides = {} if horizon is None else {"horizon": horizon}
    scen = load_scenario(SCENARIO, overrides)
    pol = make_policy(name)
    sim = Simulation(scen, pol, seed)
    t0 = time.perf_counter()
    res = sim.run()
    wall = time.perf_counter() - t0
    started = sum(cs.started for cs in sim.collector.cls)
    arrivals = res.overall["arrivals"]
    stats = getattr(pol, "stats", {})
    return {
        "policy": name,
        "mode": pol.mode,
        "wall_s": wall,
        "tasks": arrivals,
        "decisions": started,
        "decisions_per_s": started / wall,
        "tasks_per_s": arrivals / wall,
        "epochs": stats.get("epochs", float("nan")),
        "objective": res.overall["objective"],
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--horizon", type=float, default=None, help="default: the scenario's day")
    ap.add_argument("--policies", default=None, help="comma-separated names (default: all)")
    args = ap.parse_args(argv)
    names = args.policies.split(",") if args.policies else runnable_policies()
    warnings.simplefilter("ignore")
    header = (
        f"{'policy':<10} {'mode':<6} {'wall s':>7} {'tasks':>7} {'decisions':>9} "
        f"{'decisions/s':>11} {'tasks/s':>9} {'epochs':>7} {'objective':>10}"
    )
    print(
        f"ecommerce_day, seed {args.seed}" + (f", horizon {args.horizon}" if args.horizon else "")
    )
    print(header)
    print("-" * len(header))
    for name in names:
        r = bench(name, args.horizon, args.seed)
        epochs = "" if r["epochs"] != r["epochs"] else f"{int(r['epochs'])}"
        print(
            f"{r['policy']:<10} {r['mode']:<6} {r['wall_s']:7.2f} {int(r['tasks']):7d} "
            f"{int(r['decisions']):9d} {r['decisions_per_s']:11.0f} {r['tasks_per_s']:9.0f} "
            f"{epochs:>7} {r['objective']:10.1f}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
