"""Experiment files: valid files load, every invalid one fails in one clear line, writing nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dispatch import experiment as exp_mod
from dispatch.cli import app
from dispatch.errors import ConfigError
from dispatch.experiment import DEFAULT_METRICS, load_experiment
from tests.conftest import ROOT, scenario_path

ECOM = str(scenario_path("ecommerce_day"))


def tiny_config(**changes) -> dict:
    """A small valid experiment: 4 simulated hours, two rules, two seeds."""
    cfg = {
        "name": "tiny",
        "scenarios": [{"path": ECOM, "overrides": {"horizon": 240}}],
        "policies": [{"name": "fifo"}, {"name": "priority"}],
        "seeds": [0, 1],
        "outputs": {"figures": False},
    }
    cfg.update(changes)
    return cfg


def write(tmp_path: Path, cfg: dict, name: str = "exp.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def test_valid_file_loads_with_defaults(tmp_path):
    cfg = tiny_config(seeds={"start": 3, "count": 4})
    del cfg["name"]
    plan = load_experiment(write(tmp_path, cfg, "my_exp.yaml"))
    assert plan.name == "my_exp"  # defaults to the file name
    assert plan.seeds == [3, 4, 5, 6]
    assert plan.labels == ["fifo", "priority"]
    assert plan.baseline == "fifo"  # defaults to the first policy
    assert plan.metrics == DEFAULT_METRICS
    assert plan.scenarios[0].name == "ecommerce_day"
    assert plan.scenarios[0].scenario.horizon == 240


def test_relative_paths_resolve_next_to_the_file(tmp_path, monkeypatch):
    scen_dir = tmp_path / "scenarios"
    scen_dir.mkdir()
    (scen_dir / "day.yaml").write_text(Path(ECOM).read_text())
    cfg = tiny_config(scenarios=[{"name": "d", "path": "scenarios/day.yaml"}])
    path = write(tmp_path, cfg)
    monkeypatch.chdir(Path(ECOM).parent)  # elsewhere: the file's folder wins
    assert load_experiment(path).scenarios[0].name == "d"


def test_labels_params_and_class_metrics(tmp_path):
    cfg = tiny_config(
        policies=[
            {"name": "fifo"},
            {"label": "live_first", "name": "priority", "params": {"order": ["live_stream"]}},
        ],
        baseline="live_first",
        metrics=["objective", "live_stream.p95_wait"],
    )
    plan = load_experiment(cfg)
    assert plan.labels == ["fifo", "live_first"]
    assert plan.baseline == "live_first"
    assert plan.policies[1].params == {"order": ["live_stream"]}


def test_fingerprint_ignores_description_not_seeds():
    a = load_experiment(tiny_config()).fingerprint()
    b = load_experiment(tiny_config(description="same grid, new words")).fingerprint()
    c = load_experiment(tiny_config(seeds=[0, 1, 2])).fingerprint()
    assert a == b != c


BAD = {
    "unknown key": (dict(seed=[1]), "seed", "unknown key"),
    "bad policy name": (
        dict(policies=[{"name": "fifo"}, {"name": "nosuchrule"}]),
        "policies.1.name",
        "unknown policy 'nosuchrule'",
    ),
    "bad param": (
        dict(policies=[{"name": "fifo", "params": {"speed": 2}}]),
        "policies.0.params.speed",
        "unknown parameter",
    ),
    "param fails on the scenario": (
        dict(policies=[{"name": "priority", "params": {"order": ["nope"]}}]),
        "policies.0.params",
        "unknown classes",
    ),
    "missing scenario file": (
        dict(scenarios=[{"path": "no/such/scenario.yaml"}]),
        "scenarios.0.path",
        "not found",
    ),
    "bad scenario override": (
        dict(scenarios=[{"path": ECOM, "overrides": {"horizon": -5}}]),
        "scenarios.0.horizon",
        "greater than 0",
    ),
    "unknown baseline": (dict(baseline="lifo"), "baseline", "'lifo' is not a policy label"),
    "duplicate labels": (
        dict(policies=[{"name": "fifo"}, {"name": "fifo"}]),
        "policies",
        "repeat",
    ),
    "unknown metric": (dict(metrics=["mean_wiat"]), "metrics.0", "did you mean 'mean_wait'"),
    "name and train": (
        dict(policies=[{"name": "fifo", "train": "x.yaml"}]),
        "policies.0",
        "give either 'name'",
    ),
    "repeated seeds": (dict(seeds=[1, 1]), "seeds", "without repeats"),
}


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_invalid_file_one_line_exit_2_nothing_written(tmp_path, case):
    changes, field, fragment = BAD[case]
    path = write(tmp_path, tiny_config(**changes))
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["run", str(path), "--out", str(out), "--no-progress"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"error: {path}: field '{field}'"), lines[0]
    assert fragment in lines[0]
    assert not out.exists()
    assert "Traceback" not in result.stderr


def test_train_entry_without_training_module(tmp_path, monkeypatch):
    train_cfg = tmp_path / "train.yaml"
    train_cfg.write_text("algo: ppo\n")
    monkeypatch.setattr(exp_mod, "TRAINING_MODULE", "dispatch.no_such_training_module")
    cfg = tiny_config(policies=[{"name": "fifo"}, {"label": "ppo", "train": str(train_cfg)}])
    with pytest.raises(ConfigError) as err:
        load_experiment(write(tmp_path, cfg))
    msg = str(err.value)
    assert "policies.1.train" in msg and "asks to train first" in msg and "\n" not in msg


def test_missing_train_config_is_reported(tmp_path):
    cfg = tiny_config(policies=[{"label": "ppo", "train": "train/none.yaml"}])
    with pytest.raises(ConfigError, match=r"policies\.0\.train.*not found"):
        load_experiment(write(tmp_path, cfg))


def test_bad_cli_flags(tmp_path):
    path = write(tmp_path, tiny_config())
    out = tmp_path / "run"
    runner = CliRunner()
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--backend", "spark"])
    assert res.exit_code == 2 and "backend" in res.stderr
    res = runner.invoke(app, ["run", str(path), "--out", str(out), "--address", "auto"])
    assert res.exit_code == 2 and "--address" in res.stderr
    assert not out.exists()


def test_overrides_shrink_a_file_for_smoke_runs():
    plan = load_experiment(
        ROOT / "experiments" / "quickstart.yaml",
        {"name": "smoke", "seeds": [7], "scenarios.0.overrides.horizon": 120},
    )
    assert (plan.name, plan.seeds) == ("smoke", [7])
    assert plan.scenarios[0].scenario.horizon == 120
    assert {"fifo", "priority"} <= set(plan.labels)


def test_benchmark_file_names_its_training_configs():
    cfg = yaml.safe_load((ROOT / "experiments" / "benchmark.yaml").read_text())
    trains = {p["label"]: p["train"] for p in cfg["policies"] if "train" in p}
    assert trains == {
        "maskable_ppo": "train/maskable_ecommerce.yaml",
        "hybrid": "train/batch_ecommerce.yaml",
        "hybrid_flow": "train/hybrid_flow_ecommerce.yaml",
    }
    for path in trains.values():
        assert (ROOT / "experiments" / path).exists()
    assert cfg["seeds"]["count"] >= 10
