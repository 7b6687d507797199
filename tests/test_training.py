"""`dispatch train` end to end (tiny runs) and trained models as `learned` policies."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.scenario import load_scenario
from dispatch.simulator import simulate
from tests.conftest import ROOT, scenario_path

SMOKE = ROOT / "experiments" / "train" / "smoke.yaml"
CMU = scenario_path("cmu_single_server")
runner = CliRunner()


def _train(tmp_path_factory, name: str, *extra: str) -> Path:
    out = tmp_path_factory.mktemp(name) / "run"
    res = runner.invoke(app, ["train", str(SMOKE), "--out", str(out), *extra])
    assert res.exit_code == 0, res.output
    assert f"run folder: {out}" in res.output
    return out


def _vecnormalize(run: Path, scen, batch: bool = False):
    """A VecNormalize wrapper holding the run's JSON statistics (SB3 normalises, not us)."""
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from dispatch.artifacts import NormStats
    from envs.audit_dispatch import AuditDispatchEnv
    from envs.batch_dispatch import BatchDispatchEnv

    cls = BatchDispatchEnv if batch else AuditDispatchEnv
    vn = VecNormalize(DummyVecEnv([lambda: cls(scen)]), training=False)
    return NormStats.load(run / "model.vecnormalize.json").restore(vn)


@pytest.fixture(scope="module")
def maskable_run(tmp_path_factory) -> Path:
    return _train(tmp_path_factory, "maskable", "--timesteps", "256")


@pytest.fixture(scope="module")
def ppo_batch_run(tmp_path_factory) -> Path:
    return _train(
        tmp_path_factory,
        "ppo_batch",
        "--timesteps",
        "128",
        "--seed",
        "3",
        "--set",
        "algo=ppo",
        "--set",
        "env=batch",
        "--set",
        "interval=10",
        "--set",
        "eval.freq=0",
        "--set",
        "normalize.reward=true",
    )


def test_maskable_run_folder(maskable_run: Path):
    names = {p.name for p in maskable_run.iterdir()}
    for f in [
        "config.yaml",
        "versions.json",
        "env.json",
        "model.zip",
        "model.vecnormalize.json",
        "best_model.zip",
        "best_model.vecnormalize.json",
        "eval.csv",
        "summary.json",
    ]:
        assert f in names, f
    assert not [n for n in names if n.startswith(".")]  # no temporary files left behind
    assert not [n for n in names if n.endswith(".pkl")]  # nothing that needs unpickling
    summary = json.loads((maskable_run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["n_timesteps"] == 256
    assert summary["algo"] == "maskable_ppo" and summary["best_eval"]["mean_cost"] > 0
    assert set(summary["files"]) <= names
    rows = (maskable_run / "eval.csv").read_text().splitlines()
    assert rows[0].startswith("timesteps,mean_reward") and len(rows) == 3  # 128 and 256
    cfg = yaml.safe_load((maskable_run / "config.yaml").read_text())
    assert Path(cfg["scenario"]).is_absolute() and cfg["n_timesteps"] == 256
    versions = json.loads((maskable_run / "versions.json").read_text())
    for k in ("python", "torch", "stable-baselines3", "sb3-contrib", "gymnasium", "numpy"):
        assert versions[k]
    side = json.loads((maskable_run / "env.json").read_text())
    assert side["env"] == "pull" and len(side["action_names"]) == 4
    # reloading the resolved config trains the same thing
    from dispatch.train_config import load_train_config

    assert load_train_config(maskable_run / "config.yaml").n_timesteps == 256


def test_learned_pull_policy_matches_env_rollout(maskable_run: Path):
    from sb3_contrib import MaskablePPO

    from envs.audit_dispatch import AuditDispatchEnv

    scen = load_scenario(CMU, {"horizon": 300})
    r1 = simulate(scen, "learned", 5, model=str(maskable_run))
    r2 = simulate(scen, "learned", 5, model=str(maskable_run / "model.zip"))
    assert r1.overall == r2.overall  # deterministic, run folder == its model.zip
    assert r1.policy.startswith("learned(")
    # The policy rebuilds the env's observation (and VecNormalize) exactly: same day.
    # Oracle: stable-baselines3's own loader (on our own file) and VecNormalize itself.
    model = MaskablePPO.load(maskable_run / "model.zip", device="cpu")
    vn = _vecnormalize(maskable_run, scen)
    env = AuditDispatchEnv(scen, reward="holding_cost")
    obs, _ = env.reset(options={"sim_seed": 5})
    done = False
    while not done:
        a, _ = model.predict(
            vn.normalize_obs(obs[None]), deterministic=True, action_masks=env.action_masks()[None]
        )
        obs, _, done, _, _ = env.step(int(a[0]))
    assert env.last_result.overall == r1.overall
    # sampling is reproducible per seed, too
    s1 = simulate(scen, "learned", 1, model=str(maskable_run), deterministic=False)
    s2 = simulate(scen, "learned", 1, model=str(maskable_run), deterministic=False)
    assert s1.overall == s2.overall
    best = simulate(scen, "learned", 5, model=str(maskable_run), checkpoint="best")
    assert best.overall["completed"] > 0


def test_ppo_batch_run_and_policy(ppo_batch_run: Path):
    from stable_baselines3 import PPO

    from envs.batch_dispatch import BatchDispatchEnv

    summary = json.loads((ppo_batch_run / "summary.json").read_text())
    assert summary["algo"] == "ppo" and summary["env"] == "batch"
    assert (ppo_batch_run / "model.vecnormalize.json").exists()
    assert not (ppo_batch_run / "eval.csv").exists()
    scen = load_scenario(CMU, {"horizon": 300})
    r1 = simulate(scen, "learned", 2, model=str(ppo_batch_run))
    r2 = simulate(scen, "learned", 2, model=str(ppo_batch_run))
    assert r1.overall == r2.overall
    model = PPO.load(ppo_batch_run / "model.zip", device="cpu")
    vn = _vecnormalize(ppo_batch_run, scen, batch=True)
    env = BatchDispatchEnv(scen, reward="holding_cost", interval=10)
    obs, _ = env.reset(options={"sim_seed": 2})
    done = False
    while not done:
        a, _ = model.predict(vn.normalize_obs(obs[None]), deterministic=True)
        obs, _, done, _, _ = env.step(a[0])
    assert env.last_result.overall == r1.overall


def test_ppo_pull_training_deterministic(tmp_path):
    from dispatch.training import train

    outs = []
    for i in range(2):
        out = train(
            SMOKE,
            tmp_path / f"r{i}",
            overrides={"algo": "ppo", "eval.freq": 0, "normalize.obs": False},
            timesteps=64,
        )
        outs.append(out)
    scen = load_scenario(CMU, {"horizon": 300})
    a = simulate(scen, "learned", 0, model=str(outs[0]))
    b = simulate(scen, "learned", 0, model=str(outs[1]))
    assert a.overall == b.overall  # same seed, same config -> same model
    with pytest.raises(Exception, match="already holds a trained model"):
        train(SMOKE, outs[0], timesteps=64)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--set", "bogus=1"], "field 'bogus'"),
        (["--set", "algo=sac"], "field 'algo'"),
        (["--set", "env=batch"], "field 'algo'"),  # maskable_ppo cannot drive the batch env
        (["--set", "hyperparameters.batch_size=1000"], "field 'hyperparameters.batch_size'"),
        (["--set", "policy_kwargs.activation_fn=softmax"], "policy_kwargs.activation_fn"),
        (["--set", "scenario=nowhere.yaml"], "field 'scenario'"),
        (["--timesteps", "0"], "--timesteps"),
    ],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, args, needle):
    res = runner.invoke(app, ["train", str(SMOKE), "--out", str(tmp_path / "x"), *args])
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert needle in lines[0]
    assert not (tmp_path / "x" / "model.zip").exists()


def test_missing_config_file(tmp_path):
    res = runner.invoke(app, ["train", str(tmp_path / "none.yaml")])
    assert res.exit_code == 2 and "file not found" in res.output


def test_learned_policy_errors(tmp_path, maskable_run: Path):
    from dispatch.errors import ConfigError
    from dispatch.policies import make_policy

    with pytest.raises(ConfigError, match="no run folder or model file"):
        make_policy("learned", model=str(tmp_path / "nothing"))
    with pytest.raises(ConfigError, match="buckets"):  # another bucket layout
        simulate(
            load_scenario(scenario_path("ecommerce_day"), {"horizon": 30}),
            "learned",
            0,
            model=str(maskable_run),
        )
    assert np.isfinite(
        simulate(
            load_scenario(CMU, {"horizon": 250}), "learned", 0, model=str(maskable_run)
        ).overall["objective"]
    )


def test_importing_learned_does_not_import_torch():
    import subprocess
    import sys

    code = (
        "import sys, dispatch.policies.learned, dispatch.training, dispatch.train_config, "
        "envs, envs.audit_dispatch, envs.batch_dispatch; "
        "from dispatch.policies import list_policies; names = [n for n, *_ in list_policies()]; "
        "assert 'learned' in names, names; "
        "assert 'torch' not in sys.modules and 'stable_baselines3' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)
