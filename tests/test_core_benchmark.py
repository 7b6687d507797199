"""Performance targets of the simulation core (run with ``pytest -m benchmark``)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

pytestmark = pytest.mark.benchmark

_spec = importlib.util.spec_from_file_location(
    "bench_core", Path(__file__).resolve().parents[1] / "benchmarks" / "bench_core.py"
)
bench_core = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_core)


def test_mmc_at_least_3x_ciw():
    pytest.importorskip("ciw")
    res = bench_core.bench_mmc(seeds=(1, 2))
    assert res["ratio_vs_ciw"] >= 3.0, res


def test_day_of_10k_reviewers_and_1m_tasks_under_60s():
    res = bench_core.bench_scale()
    assert res["seconds"] < 60.0, res
    # Memory does not grow with the number of tasks processed (same load, 4x the tasks).
    assert res["traced_peak_mb_full"] < 1.5 * res["traced_peak_mb_quarter"], res
