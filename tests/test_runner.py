"""The experiment runner: outputs, resume after a kill, determinism, statistics, Ray."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dispatch import runner
from dispatch.errors import ConfigError
from dispatch.experiment import load_experiment
from dispatch.policies import registry
from dispatch.policies.rules import FIFO
from dispatch.runner import (
    CellFailure,
    headline,
    load_results,
    paired_results,
    run_experiment,
    summarise_results,
)
from tests.conftest import ROOT, scenario_path

ECOM = str(scenario_path("ecommerce_day"))


def config(horizon: float = 240, seeds=(0, 1, 2), policies=("fifo", "priority"), **kw) -> dict:
    cfg = {
        "name": "t",
        "scenarios": [{"path": ECOM, "overrides": {"horizon": horizon}}],
        "policies": [{"name": p} for p in policies],
        "seeds": list(seeds),
        "outputs": {"figures": False, "report": True},
    }
    cfg.update(kw)
    return cfg


def frame(run_dir: Path) -> pd.DataFrame:
    return load_results(run_dir)


def cell_files(run_dir: Path) -> list[Path]:
    return sorted((run_dir / "cells").glob("*.json"))


def test_run_writes_every_output(tmp_path):
    run_dir = run_experiment(config(), out=tmp_path / "run", workers=1, progress=False)
    for name in (
        "config.resolved.yaml",
        "versions.json",
        "seeds.json",
        "results.parquet",
        "results.csv",
        "summary.csv",
        "paired.csv",
        "report.md",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    df = frame(run_dir)
    assert len(df) == 6 and len(cell_files(run_dir)) == 6
    assert list(df[["policy", "seed"]].itertuples(index=False, name=None)) == [
        ("fifo", 0),
        ("fifo", 1),
        ("fifo", 2),
        ("priority", 0),
        ("priority", 1),
        ("priority", 2),
    ]
    for col in ("objective", "live_stream.p95_wait", "group.us_day.utilisation"):
        assert col in df.columns
    pd.testing.assert_frame_equal(df, pd.read_csv(run_dir / "results.csv"), check_dtype=False)
    versions = json.loads((run_dir / "versions.json").read_text())
    assert {"python", "numpy", "simpy", "ortools", "gymnasium", "pandas", "dispatch"} <= set(
        versions
    )
    assert json.loads((run_dir / "seeds.json").read_text())["seeds"] == [0, 1, 2]
    summary = pd.read_csv(run_dir / "summary.csv")
    assert len(summary) == 2 * len(load_experiment(config()).metrics)
    paired = pd.read_csv(run_dir / "paired.csv")
    assert set(paired["policy"]) == {"priority"}
    report = (run_dir / "report.md").read_text()
    assert "## Headline" in report and "lowest mean objective cost" in report


def test_objective_uses_the_experiment_weights(tmp_path):
    weights = {"harm": 0.0, "sla_breach": 0.0, "wrong_decision": 0.0}
    weights |= {"false_enforcement": 1.0, "abandoned": 0.0}
    run_dir = run_experiment(
        config(seeds=[0], objective=weights), out=tmp_path / "r", workers=1, progress=False
    )
    df = frame(run_dir)
    assert (df["objective"] == df["false_enforcements"]).all()
    assert (df["live_stream.objective"] == df["live_stream.false_enforcements"]).all()
    # One objective per run: the cell files carry the experiment's weights, too.
    cells = [json.loads(p.read_text()) for p in cell_files(run_dir)]
    (cell,) = [c for c in cells if c["policy"] == "fifo"]
    assert cell["overall"]["objective"] == cell["overall"]["false_enforcements"]
    for m in cell["per_class"].values():
        assert m["objective"] == m["false_enforcements"]


def test_resume_after_interruption_loses_and_duplicates_nothing(tmp_path, monkeypatch):
    cfg = config()
    reference = frame(run_experiment(cfg, out=tmp_path / "ref", workers=1, progress=False))

    real_write = runner._write_cell
    calls = {"n": 0}

    def crash_after_two(run_dir, cell, records):
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the process dies between two cells
        calls["n"] += 1
        real_write(run_dir, cell, records)

    monkeypatch.setattr(runner, "_write_cell", crash_after_two)
    out = tmp_path / "run"
    with pytest.raises(KeyboardInterrupt):
        run_experiment(cfg, out=out, workers=1, progress=False)
    assert len(cell_files(out)) == 2
    assert not (out / "results.parquet").exists()
    monkeypatch.setattr(runner, "_write_cell", real_write)

    # A torn write leaves only a temporary file; a damaged cell file is recomputed.
    (out / "cells" / ".abc.json.tmp").write_text('{"half')
    cell_files(out)[0].write_text("{not json")

    ran = []
    real_run_cell = runner.run_cell
    monkeypatch.setattr(runner, "run_cell", lambda spec: ran.append(spec) or real_run_cell(spec))
    run_experiment(cfg, out=out, workers=1, progress=False)
    assert len(ran) == 5  # 4 missing + 1 damaged, not the 1 intact cell
    assert len(cell_files(out)) == 6
    pd.testing.assert_frame_equal(frame(out), reference, check_exact=True)

    ran.clear()  # a third invocation has nothing left to do
    run_experiment(cfg, out=out, workers=1, progress=False)
    assert ran == []
    pd.testing.assert_frame_equal(frame(out), reference, check_exact=True)


def test_resume_after_sigkill_of_the_cli(tmp_path):
    """Kill `dispatch run` with SIGKILL mid-grid, rerun, compare with an unbroken run."""
    cfg = config(horizon=720, seeds=range(8), policies=("fifo",))
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "dispatch.cli", "run", str(path), "--out", str(out)]
    proc = subprocess.Popen(
        [*cmd, "--workers", "1", "--no-progress"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while len(cell_files(out)) < 2:
            assert proc.poll() is None, "the run finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    n_before = len(cell_files(out))
    assert 2 <= n_before < 8 and not (out / "results.parquet").exists()
    run_experiment(path, out=out, workers=2, progress=False)
    reference = run_experiment(path, out=tmp_path / "ref", workers=1, progress=False)
    assert len(cell_files(out)) == 8
    pd.testing.assert_frame_equal(frame(out), frame(reference), check_exact=True)


def test_results_do_not_depend_on_the_number_of_workers(tmp_path):
    cfg = config(seeds=[4, 5])
    one = run_experiment(cfg, out=tmp_path / "w1", workers=1, progress=False)
    two = run_experiment(cfg, out=tmp_path / "w2", workers=2, progress=False)
    pd.testing.assert_frame_equal(frame(one), frame(two), check_exact=True)
    for a, b in zip(cell_files(one), cell_files(two), strict=True):
        ca, cb = json.loads(a.read_text()), json.loads(b.read_text())
        ca.pop("wall_seconds"), cb.pop("wall_seconds")
        assert ca == cb


def test_refuses_a_folder_of_another_configuration(tmp_path):
    out = tmp_path / "run"
    run_experiment(config(seeds=[0]), out=out, workers=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    with pytest.raises(ConfigError, match="different configuration.*--out"):
        run_experiment(config(seeds=[0, 1]), out=out, workers=1, progress=False)
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before
    # Words and output switches are not part of the configuration.
    run_experiment(config(seeds=[0], description="x"), out=out, workers=1, progress=False)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a run of this experiment"):
        run_experiment(config(), out=tmp_path / "other", workers=1, progress=False)


class _Boom(FIFO):
    name = "_test_boom"
    summary = "FIFO that fails on seed 1 (tests only)."

    fail_on_seed = 1

    def bind(self, sim, rng):
        if sim.seed == self.fail_on_seed:
            raise RuntimeError("boom")
        super().bind(sim, rng)


def test_failed_cells_are_reported_and_retried(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._REGISTRY, _Boom.name, _Boom)
    cfg = config(policies=("fifo", "_test_boom"), seeds=[0, 1])
    out = tmp_path / "run"
    with pytest.raises(CellFailure, match=r"1 of 4 cells failed.*_test_boom / seed 1.*boom"):
        run_experiment(cfg, out=out, workers=1, progress=False)
    assert len(cell_files(out)) == 3
    assert "RuntimeError: boom" in (out / "failures.log").read_text()
    assert not (out / "results.parquet").exists()
    monkeypatch.setattr(_Boom, "fail_on_seed", None)  # the bug is fixed: rerun
    run_experiment(cfg, out=out, workers=1, progress=False)
    assert len(frame(out)) == 4 and not (out / "failures.log").exists()


def test_statistics_against_a_hand_computed_case():
    plan = load_experiment(
        {
            "name": "hand",
            "scenarios": [{"path": ECOM, "overrides": {"horizon": 60}}],
            "policies": [{"label": "A", "name": "fifo"}, {"label": "B", "name": "priority"}],
            "seeds": [0, 1, 2],
            "metrics": ["objective"],
        }
    )
    df = pd.DataFrame(
        {
            "scenario": ["ecommerce_day"] * 6,
            "policy": ["A", "A", "A", "B", "B", "B"],
            "seed": [0, 1, 2, 0, 1, 2],
            "objective": [10.0, 12.0, 14.0, 9.0, 10.0, 14.0],
        }
    )
    t975_2 = 4.302652729749462  # Student t, 97.5% quantile, 2 degrees of freedom
    summary = summarise_results(plan, df).set_index("policy")
    # A: mean 12, sd 2 -> half-width t * 2 / sqrt(3)
    assert summary.at["A", "mean"] == pytest.approx(12.0)
    assert summary.at["A", "half_width"] == pytest.approx(t975_2 * 2 / math.sqrt(3))
    # B: mean 11, sd sqrt(7)
    assert summary.at["B", "half_width"] == pytest.approx(t975_2 * math.sqrt(7) / math.sqrt(3))
    paired = paired_results(plan, df).set_index("policy")
    # B - A per seed: -1, -2, 0 -> mean -1, sd 1
    assert paired.at["B", "mean_diff"] == pytest.approx(-1.0)
    assert paired.at["B", "ci_low"] == pytest.approx(-1 - t975_2 / math.sqrt(3))
    assert paired.at["B", "ci_high"] == pytest.approx(-1 + t975_2 / math.sqrt(3))
    assert paired.at["B", "relative"] == pytest.approx(-1 / 12)
    assert paired.at["B", "n"] == 3
    (text,) = headline(plan, df)
    assert "**B** has the lowest mean objective cost, 11" in text
    assert "baseline **A** is -1.0 (paired 95% CI -3.5 to 1.5, -8.3%)" in text
    assert "includes zero" in text
    np.testing.assert_allclose(paired["p_value"].to_numpy(), [0.2254033307585166])


@pytest.mark.ray
def test_ray_backend_matches_local(tmp_path):
    ray = pytest.importorskip("ray")
    cfg = config(seeds=[0], policies=("fifo", "priority"))
    local = run_experiment(cfg, out=tmp_path / "local", workers=1, progress=False)
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        remote = run_experiment(cfg, out=tmp_path / "ray", backend="ray", progress=False)
    finally:
        ray.shutdown()
    pd.testing.assert_frame_equal(frame(local), frame(remote), check_exact=True)


def test_train_entries_train_once_then_evaluate_as_learned(tmp_path, monkeypatch):
    """A stand-in for dispatch.training and the `learned` policy exercises the train: path."""
    import importlib.machinery
    import types

    registry.policy_classes()  # load the real registry first; then shadow `learned`

    class FakeLearned(FIFO):
        name = "learned"

        class Params(FIFO.Params):
            model: str

        def bind(self, sim, rng):
            assert (Path(self.params.model) / "weights.txt").read_text() == "trained"
            super().bind(sim, rng)

    calls = []

    def train(config_path, out, overrides=None):
        calls.append((Path(config_path).name, overrides))
        Path(out).mkdir(parents=True)
        (Path(out) / "weights.txt").write_text("trained")
        return Path(out)

    fake = types.ModuleType("dispatch.training")
    fake.__spec__ = importlib.machinery.ModuleSpec("dispatch.training", None)
    fake.train = train
    monkeypatch.setitem(sys.modules, "dispatch.training", fake)
    monkeypatch.setitem(registry._REGISTRY, "learned", FakeLearned)

    # A valid training config (the experiment validates it before anything runs).
    smoke = ROOT / "experiments" / "train" / "smoke.yaml"
    text = smoke.read_text().replace(
        "../scenarios/cmu_single_server.yaml",
        str(ROOT / "experiments" / "scenarios" / "cmu_single_server.yaml"),
    )
    train_cfg = tmp_path / "agent.yaml"
    train_cfg.write_text(text)
    cfg = config(seeds=[0, 1], policies=("fifo",))
    cfg["policies"].append(
        {"label": "agent", "train": str(train_cfg), "train_overrides": {"n_timesteps": 64}}
    )
    out = tmp_path / "run"
    run_experiment(cfg, out=out, workers=1, progress=False)
    assert calls == [("agent.yaml", {"n_timesteps": 64})]
    df = frame(out)
    assert list(df["policy"]) == ["fifo", "fifo", "agent", "agent"]
    # FakeLearned dispatches like FIFO: the same seeds give the same numbers.
    a = df[df["policy"] == "agent"].drop(columns="policy").reset_index(drop=True)
    b = df[df["policy"] == "fifo"].drop(columns="policy").reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)
    assert json.loads((out / "models" / "agent.json").read_text())["model"].endswith("agent")
    run_experiment(cfg, out=out, workers=1, progress=False)  # resume: no second training
    assert len(calls) == 1


def test_records_output_keeps_per_task_rows(tmp_path):
    cfg = config(horizon=120, seeds=[0], policies=("fifo",))
    cfg["outputs"]["records"] = True
    out = run_experiment(cfg, out=tmp_path / "run", workers=1, progress=False)
    (records,) = list((out / "records").glob("*.parquet"))
    tasks = pd.read_parquet(records)
    assert len(tasks) > 0 and {"arrival", "start", "end", "outcome", "group"} <= set(tasks)
    assert records.stem == cell_files(out)[0].stem
