"""Record the golden ``dispatch simulate --json`` outputs (run once, before a refactor).

``python tests/golden/record.py`` writes ``tests/golden/simulate.json``: for every shipped
scenario (horizon shortened so the whole set runs in seconds), every registered policy
that needs no trained artefact and two seeds, the SHA-256 of the exact text
``dispatch simulate --json`` prints, plus a few headline figures to show what changed
when a hash stops matching. ``tests/test_golden.py`` recomputes and compares them:
behaviour-preserving changes (restructuring, speed-ups) must keep every hash.
"""

from __future__ import annotations

import hashlib
import json
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("simulate.json")

# Scenario -> overrides keeping each run well under a second for rules.
SCENARIOS: dict[str, dict[str, object]] = {
    "mmc": {"horizon": 300.0, "warmup": 30.0},
    "mmc_abandonment": {"horizon": 500.0, "warmup": 50.0},
    "priority_mg1": {"horizon": 3000.0, "warmup": 100.0},
    "multiclass_priority": {"horizon": 700.0, "warmup": 50.0},
    "cmu_single_server": {"horizon": 2000.0, "warmup": 100.0},
    "ecommerce_day": {"horizon": 360.0},
    "moderation_backlog": {"horizon": 60.0},
    "n_model": {"horizon": 1500.0, "warmup": 100.0},
    "criss_cross": {"horizon": 1500.0, "warmup": 100.0},
}
POLICIES: dict[str, dict[str, object]] = {
    "fifo": {},
    "priority": {},
    "edf": {},
    "cmu": {},
    "harm_rate": {},
    "skill": {},
    "lqf": {},
    "maxweight": {},
    "random": {},
    "flow": {},
    "lsa": {},
    "cpsat": {},
    "fifo+reserve": {"reserve": {"classes": ["__first__"], "k": 1, "backlog_threshold": 5}},
}
SEEDS = (0, 7)


def cases() -> list[tuple[str, str, int]]:
    return [(s, p, seed) for s in SCENARIOS for p in POLICIES for seed in SEEDS]


def simulate_json(scenario: str, policy: str, seed: int) -> str:
    """Exactly the text ``dispatch simulate --json`` prints (without the newline)."""
    from dispatch.policies import make_policy
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scen = load_scenario(
            ROOT / "experiments" / "scenarios" / f"{scenario}.yaml", SCENARIOS[scenario]
        )
    name = policy.split("+")[0]
    params = json.loads(json.dumps(POLICIES[policy]))
    if "reserve" in params:
        params["reserve"]["classes"] = [scen.classes[0].name]
    return Simulation(scen, make_policy(name, **params), seed).run().to_json()


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def headline(text: str) -> dict[str, float]:
    o = json.loads(text)["overall"]
    return {k: o[k] for k in ("completed", "mean_wait", "objective") if k in o}


def main() -> None:
    sys.path.insert(0, str(ROOT))
    out = {}
    for s, p, seed in cases():
        text = simulate_json(s, p, seed)
        out[f"{s}|{p}|{seed}"] = {"sha256": digest(text), "headline": headline(text)}
    GOLDEN.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {len(out)} cases to {GOLDEN}")


if __name__ == "__main__":
    main()
