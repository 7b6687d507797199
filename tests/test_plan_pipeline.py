"""The plan end to end: ISA on a sinusoidal day, infeasible inputs, determinism, CLI, runs."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.errors import ConfigError
from dispatch.plan import load_plan, plan
from dispatch.plan.evaluate import mean_ci

RATES = [round(2.0 + 1.5 * math.sin(2 * math.pi * (h + 0.5) / 24), 3) for h in range(24)]


def _write(tmp: Path, targets: dict, pools: dict | None = None, markets=None, **extra) -> Path:
    scen = {
        "name": "sinus",
        "horizon": 1440,
        "markets": markets or ["all"],
        "classes": [
            {
                "name": "t",
                "arrivals": {"kind": "profile", "slot": 60, "rates": RATES},
                "handling": {"kind": "exponential", "mean": 1.0},
                "sla": 5.0,
            }
        ],
        "reviewers": [
            {
                "name": "pool",
                "count": 4,
                "classes": ["t"],
                "markets": [markets[0]] if markets else "all",
            }
        ],
    }
    (tmp / "scen.yaml").write_text(yaml.safe_dump(scen))
    plan_doc = {
        "name": "sinus",
        "scenario": "scen.yaml",
        "dispatcher": {"name": "fifo"},
        "horizon": {"days": 1, "interval": 60},
        "pool_defaults": {"lengths": [240, 480], "starts": {"first": 0, "last": 1380, "every": 60}},
        "pools": pools or {},
        "targets": {"t": targets},
        "simulation": {"seeds": [0, 1, 2, 3], "max_iterations": 6, "step": 0.2},
        "solver": {"time_limit": 10, "workers": 1},
    } | extra
    (tmp / "plan.yaml").write_text(yaml.safe_dump(plan_doc))
    return tmp / "plan.yaml"


def test_isa_holds_the_delay_target_in_every_interval(tmp_path: Path) -> None:
    res = plan(_write(tmp_path, {"max_delay_prob": 0.3}), tmp_path / "out")
    mean, lo, hi = res.validation.ci("delay_prob", 0.95)
    assert np.all(lo[:, 0] <= 0.3 + 1e-9), "an interval misses its delay target with its CI"
    assert not res.unmet
    # Time-stable, not blanket overstaffing: the busiest hours run close to the target.
    assert np.nanmax(mean[:, 0]) > 0.1
    assert (tmp_path / "out" / "roster.yaml").exists()
    assert len(res.iterations) >= 1


def test_same_plan_same_roster(tmp_path: Path) -> None:
    p = _write(tmp_path, {"mean_wait": 0.5}, simulation={"seeds": [0, 1], "max_iterations": 1})
    plan(p, tmp_path / "a")
    plan(p, tmp_path / "b")
    assert (tmp_path / "a" / "roster.yaml").read_text() == (
        tmp_path / "b" / "roster.yaml"
    ).read_text()
    assert (tmp_path / "a" / "validation.csv").read_text() == (
        tmp_path / "b" / "validation.csv"
    ).read_text()


def test_market_without_a_pool_names_class_market_interval(tmp_path: Path) -> None:
    p = _write(tmp_path, {"sla": 0.9}, markets=["US", "MX"])
    with pytest.raises(ConfigError, match=r"class t, market MX, interval 00:00-01:00"):
        plan(p, tmp_path / "out")
    assert not any(tmp_path.glob("out*")) and not any(tmp_path.glob(".out*"))


def test_headcount_below_any_roster_is_one_clear_line(tmp_path: Path) -> None:
    p = _write(tmp_path, {"sla": 0.9}, pools={"pool": {"max_headcount": 2}})
    runner = CliRunner()
    r = runner.invoke(app, ["plan", str(p), "--out", str(tmp_path / "out")])
    assert r.exit_code == 2
    line = r.output.strip().splitlines()[-1]
    assert "class t" in line and "interval" in line and "max_headcount" in line
    assert not (tmp_path / "out").exists()


def test_cli_writes_the_plan_folder_and_experiment_uses_the_roster(tmp_path: Path) -> None:
    p = _write(
        tmp_path,
        {"sla": 0.9},
        simulation={"seeds": [0], "max_iterations": 0},
        objective={"mode": "budget", "budget_hours": 60, "sweep": [40, 60]},
    )
    r = CliRunner().invoke(app, ["plan", str(p), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    for f in (
        "roster.yaml",
        "requirements.csv",
        "plan.json",
        "validation.csv",
        "report.md",
        "frontier.csv",
        "figures/staffing.png",
        "figures/sla.png",
        "figures/frontier.png",
    ):
        assert (tmp_path / "out" / f).exists(), f
    from dispatch.experiment import load_experiment

    exp = tmp_path / "exp.yaml"
    exp.write_text(
        yaml.safe_dump(
            {
                "name": "x",
                "seeds": [0],
                "policies": [{"name": "fifo"}],
                "scenarios": [
                    {"path": "scen.yaml", "name": "hand"},
                    {"path": "scen.yaml", "name": "planned", "roster": "out"},
                ],
            }
        )
    )
    ex = load_experiment(exp)
    hand, planned = (s.scenario for s in ex.scenarios)
    assert [g.name for g in hand.reviewers] == ["pool"]
    assert all(g.name.startswith("pool@") for g in planned.reviewers)


def test_mean_ci_is_a_t_interval() -> None:
    m, lo, hi = mean_ci(np.array([[1.0], [3.0]]), 0.95)
    assert m[0] == 2.0 and hi[0] - m[0] == pytest.approx(12.706 * 1.0, rel=1e-3)


def test_plan_file_rejects_unknown_keys(tmp_path: Path) -> None:
    (tmp_path / "p.yaml").write_text("scenario: s.yaml\nsolvr: {}\n")
    with pytest.raises(ConfigError, match="solvr"):
        load_plan(tmp_path / "p.yaml")
