"""Performance target for the bucketed dispatch epoch (run with ``-m benchmark``).

A dispatcher re-solves every batch epoch, so the bucketed min-cost flow for the
reference epoch (1,000 free reviewers, 10,000 waiting tasks in 72 buckets, ~20%
eligibility) must stay well inside an interactive budget: < 50 ms median,
model construction included.
"""

from __future__ import annotations

import importlib.util
import statistics
import sys
from pathlib import Path

import pytest

from dispatch.solvers import solve_min_cost_flow

_BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_solvers.py"


def _load_bench():
    """Import the benchmark script by path so the scenario has one definition."""
    spec = importlib.util.spec_from_file_location("bench_solvers", _BENCH)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[spec.name] = module  # dataclasses resolve their module on creation
    spec.loader.exec_module(module)
    return module


@pytest.mark.benchmark
def test_bucketed_epoch_under_50ms(benchmark) -> None:
    epoch = _load_bench().make_epoch(n_reviewers=1000, n_tasks=10_000, density=0.2, seed=0)
    problem = epoch.bucketed
    assert problem.value.shape == (1000, 72)
    assert 0.15 < epoch.eligible_rt.mean() < 0.25

    result = benchmark.pedantic(
        solve_min_cost_flow, args=(problem,), rounds=15, iterations=1, warmup_rounds=2
    )
    assert result.status == "OPTIMAL"
    assert result.n_assigned > 0

    if benchmark.stats is not None:  # None under --benchmark-disable
        median_s = benchmark.stats.stats.median
    else:
        median_s = statistics.median(solve_min_cost_flow(problem).solve_ms / 1e3 for _ in range(15))
    assert median_s < 0.050, f"bucketed epoch median {median_s * 1e3:.1f} ms >= 50 ms"
