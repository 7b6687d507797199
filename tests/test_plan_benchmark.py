"""Targets of issue 13 (run with ``pytest -m benchmark``; minutes of CPU)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

pytestmark = pytest.mark.benchmark


def test_day_plan_meets_targets_and_beats_the_hand_roster_at_its_hours() -> None:
    import bench_plan

    out = bench_plan.quality()
    for cls, (_m, lo, _hi, goal) in out["min_cost"]["per_class_sla_ci"].items():
        assert lo >= goal, f"{cls}: 95% CI lower bound {lo:.3f} below target {goal}"
    for key in ("objective", "harm_exposure"):
        assert out[f"budget_vs_hand_{key}"]["paired_diff"][2] < 0, key


def test_week_roster_500_people_gap_under_2pct_in_60s() -> None:
    import bench_plan

    out = bench_plan.roster(60.0)
    assert out["people"] >= 500
    assert out["wall_s"] < 65
    assert out["gap"] < 0.02, out
