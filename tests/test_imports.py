"""The simulator, rules, solvers and the deploy runtime import without torch or SB3."""

from __future__ import annotations

import subprocess
import sys


def test_core_imports_do_not_load_torch():
    code = (
        "import sys\n"
        "from dispatch.policies import list_policies, make_policy\n"
        "from dispatch.scenario import load_scenario\n"
        "from dispatch.simulator import simulate\n"
        "import dispatch.solvers, dispatch.runner, dispatch.deploy\n"
        "names = [n for n, _, _ in list_policies()]\n"
        "scen = load_scenario('experiments/scenarios/ecommerce_day.yaml', {'horizon': 60})\n"
        "for n in ('fifo', 'cmu', 'flow'):\n"
        "    simulate(scen, n, 0)\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'sb3_contrib') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "print('ok', len(names))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("ok")
