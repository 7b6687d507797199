"""Exported dispatchers (dispatch.export / dispatch.deploy): parity with the trained model,
simulated metrics, a runtime without torch or pickle, clear errors, the CLI.

Tiny models are trained in the test with ``dispatch.training`` (the smoke config, a few
hundred steps on ``ecommerce_day`` episodes of two hours), once per module.

Parity definition: for MaskablePPO the exported decision is ``predict(obs,
action_masks=mask, deterministic=True)``; for plain PPO (trained unmasked) it is the
**masked argmax of the policy logits**, which is what the export defines (and equals
``predict`` whenever predict's action is valid). Observations are recorded raw; the SB3
side applies ``VecNormalize.normalize_obs``, the ONNX graph does it internally.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import torch  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from dispatch.artifacts import NormStats  # noqa: E402
from dispatch.cli import app  # noqa: E402
from dispatch.deploy import (  # noqa: E402
    DeployedDispatcher,
    DeploymentError,
    InvalidInputError,
    sidecar_path,
)
from dispatch.errors import ConfigError, DispatchError  # noqa: E402
from dispatch.export import export_model  # noqa: E402
from tests.conftest import ROOT, scenario_path  # noqa: E402

torch.set_num_threads(1)

ECOM = str(scenario_path("ecommerce_day"))
CMU = str(scenario_path("cmu_single_server"))
SMOKE = ROOT / "experiments" / "train" / "smoke.yaml"
TRAIN_HORIZON = 120
N_PARITY = 10_000

# name -> (algo, env, normalize observations)
RUNS = {
    "ppo": ("ppo", "pull", False),
    "ppo_norm": ("ppo", "pull", True),
    "maskable": ("maskable_ppo", "pull", False),
    "maskable_norm": ("maskable_ppo", "pull", True),
    "batch_norm": ("ppo", "batch", True),
}


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


@pytest.fixture(scope="module")
def run_of(workdir):
    """Train (once) and return the run folder of a RUNS entry."""
    from dispatch.training import train

    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            algo, env, norm = RUNS[name]
            over = {
                "algo": algo,
                "env": env,
                "scenario": ECOM,
                "horizon": TRAIN_HORIZON,
                "reward": "objective",
                "reward_scale": 1.0 if env == "pull" else 0.05,
                "normalize.obs": norm,
                "eval.freq": 0,
                "n_timesteps": 256 if env == "pull" else 64,
                "hyperparameters.n_steps": 64 if env == "pull" else 32,
                "hyperparameters.batch_size": 32 if env == "pull" else 16,
            }
            cache[name] = train(SMOKE, workdir / f"run_{name}", overrides=over)
        return cache[name]

    return get


@pytest.fixture(scope="module")
def exported(workdir, run_of):
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            cache[name] = export_model(run_of(name), workdir / "onnx" / f"{name}.onnx")
        return cache[name]

    return get


@pytest.fixture(scope="module")
def pull_data():
    """>= 10,000 raw observations and masks of ecommerce_day, random valid actions."""
    from envs.audit_dispatch import AuditDispatchEnv

    env = AuditDispatchEnv(ECOM, horizon=240)
    rng = np.random.default_rng(7)
    obs_l, mask_l = [], []
    seed = 100
    while len(obs_l) < N_PARITY:
        obs, _ = env.reset(options={"sim_seed": seed})
        seed += 1
        done = False
        while not done:
            mask = env.action_masks()
            obs_l.append(obs)
            mask_l.append(mask)
            obs, _, done, _, _ = env.step(int(rng.choice(np.flatnonzero(mask))))
    return np.asarray(obs_l, dtype=np.float32), np.asarray(mask_l, dtype=bool)


def _load(run: Path):
    from sb3_contrib import MaskablePPO
    from stable_baselines3 import PPO

    algo = json.loads((run / "env.json").read_text())["algo"]
    cls = MaskablePPO if algo == "maskable_ppo" else PPO
    model = cls.load(str(run / "model.zip"), device="cpu")  # oracle: SB3's own loader
    stats = run / "model.vecnormalize.json"
    return model, (NormStats.load(stats) if stats.exists() else None)


def _norm(vn, obs):
    return vn.normalize(obs) if vn is not None else obs


def _logits(model, obs_n: np.ndarray) -> np.ndarray:
    pol = model.policy
    with torch.no_grad():
        t = torch.as_tensor(obs_n, dtype=torch.float32)
        feats = pol.extract_features(t, pol.pi_features_extractor)
        return pol.action_net(pol.mlp_extractor.forward_actor(feats)).numpy()


def _same(a, b) -> bool:
    """Equality of nested metric dicts, NaN equal to NaN."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _metrics(result) -> dict:
    d = result.to_dict()
    d.pop("policy")
    return d


# -- parity -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ppo", "ppo_norm", "maskable", "maskable_norm"])
def test_pull_export_picks_the_models_action(name, run_of, exported, pull_data):
    obs, masks = pull_data
    assert len(obs) >= N_PARITY
    model, vn = _load(run_of(name))
    d = DeployedDispatcher(exported(name))
    got = d.decide_batch(obs, masks)
    obs_n = _norm(vn, obs)
    logits = _logits(model, obs_n)
    masked = np.where(masks, logits, -np.inf)
    argmax = masked.argmax(axis=1)
    if RUNS[name][0] == "maskable_ppo":
        want, _ = model.predict(obs_n, action_masks=masks, deterministic=True)
        assert np.array_equal(want, argmax)  # the two definitions agree
    else:
        want = argmax
        pred, _ = model.predict(obs_n, deterministic=True)
        valid = masks[np.arange(len(pred)), pred]
        assert np.array_equal(pred[valid], argmax[valid])  # predict, when it is valid
    top2 = np.sort(masked, axis=1)[:, -2:]
    ties = (top2[:, 1] - top2[:, 0]) < 1e-5  # float32 ties: either answer is the argmax
    diff = got != want
    print(f"{name}: {len(obs)} decisions, {int(diff.sum())} differ, {int(ties.sum())} near-ties")
    assert not np.any(diff & ~ties), f"{int((diff & ~ties).sum())} of {len(obs)} decisions differ"
    assert diff.sum() <= 2
    assert np.all(masks[np.arange(len(got)), got])  # never a masked bucket
    # Masked softmax = the MaskablePPO distribution's probabilities.
    probs = d.probabilities(obs[:2000], masks[:2000])
    ref = torch.softmax(torch.as_tensor(np.where(masks[:2000], logits[:2000], -1e8)), -1).numpy()
    assert np.allclose(probs, ref, atol=1e-5)
    assert np.all(probs[~masks[:2000]] == 0.0)
    # One decision at a time gives the batch's answers.
    for i in range(0, 10_000, 97):
        assert d.decide(obs[i], masks[i]) == got[i]


def test_batch_export_matches_deterministic_predict(run_of, exported):
    from envs.batch_dispatch import BatchDispatchEnv

    model, vn = _load(run_of("batch_norm"))
    d = DeployedDispatcher(exported("batch_norm"))
    assert d.kind == "priority_weights" and d.n_actions == 42
    env = BatchDispatchEnv(ECOM, horizon=600)
    rng = np.random.default_rng(3)
    rows = []
    for seed in (0, 1):
        obs, _ = env.reset(options={"sim_seed": seed})
        done = False
        while not done:
            rows.append(obs)
            obs, _, done, _, _ = env.step(rng.uniform(-1, 1, 42).astype(np.float32))
    sp = env.observation_space
    rows += list(rng.uniform(sp.low, sp.high, (5000, sp.shape[0])).astype(np.float32))
    obs = np.asarray(rows, dtype=np.float32)
    want, _ = model.predict(_norm(vn, obs), deterministic=True)
    got = d.decide_batch(obs)
    assert got.shape == want.shape == (len(obs), 42)
    assert np.allclose(got, want, atol=1e-5)
    assert np.all(np.abs(got) <= 1.0)
    assert np.allclose(
        d.decide(obs[0], mask=np.zeros(42, bool)), want[0], atol=1e-5
    )  # mask ignored


# -- simulated metrics ----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ppo", "maskable_norm"])
def test_deployed_policy_simulates_like_learned(name, run_of, exported):
    from dispatch.policies import make_policy
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    scen = load_scenario(ECOM, {"horizon": 240})
    for seed in (0, 1, 2):
        onnx = Simulation(scen, make_policy("onnx", path=str(exported(name))), seed).run()
        learned = Simulation(scen, make_policy("learned", model=str(run_of(name))), seed).run()
        assert _same(_metrics(onnx), _metrics(learned)), f"seed {seed}"
        assert onnx.overall["completed"] > 0
    if RUNS[name][0] == "maskable_ppo":
        # The training environment driven by predict(action_masks=...) runs the same day
        # (through the shift changes at minutes 300, 330 and 360).
        from envs.audit_dispatch import AuditDispatchEnv

        model, vn = _load(run_of(name))
        env = AuditDispatchEnv(ECOM, horizon=400)
        obs, _ = env.reset(options={"sim_seed": 5})
        done = False
        while not done:
            a, _ = model.predict(
                _norm(vn, obs), action_masks=env.action_masks(), deterministic=True
            )
            obs, _, done, _, _ = env.step(int(a))
        scen400 = load_scenario(ECOM, {"horizon": 400})
        onnx = Simulation(scen400, make_policy("onnx", path=str(exported(name))), 5).run()
        assert _same(_metrics(onnx), _metrics(env.last_result))


def test_deployed_batch_policy_reproduces_env_and_learned(run_of, exported):
    from dispatch.policies import make_policy
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation
    from envs.batch_dispatch import BatchDispatchEnv

    run = run_of("batch_norm")
    path = str(exported("batch_norm"))
    scen = load_scenario(ECOM, {"horizon": 240})
    pol = make_policy("onnx", path=path)
    assert pol.mode == "batch" and pol.batch_interval == 5.0 and pol.on_demand
    for seed in (0, 1):
        onnx = Simulation(scen, make_policy("onnx", path=path), seed).run()
        learned = Simulation(scen, make_policy("learned", model=str(run)), seed).run()
        assert _same(_metrics(onnx), _metrics(learned)), f"seed {seed}"
    # Against the training environment itself, through shift changes at minutes 300, 330
    # and 360 (epoch instants): weights are chosen before any event of the instant.
    model, vn = _load(run)
    kw = json.loads((run / "env.json").read_text())["env_kwargs"]
    env = BatchDispatchEnv(**{**kw, "horizon": 400})
    obs, _ = env.reset(options={"sim_seed": 4})
    done = False
    while not done:
        a, _ = model.predict(_norm(vn, obs[None]), deterministic=True)
        obs, _, done, _, _ = env.step(a[0])
    scen400 = load_scenario(ECOM, {"horizon": 400})
    onnx = Simulation(scen400, make_policy("onnx", path=path), 4).run()
    assert _same(_metrics(onnx), _metrics(env.last_result))


# -- the runtime needs neither torch nor pickle ---------------------------------------------
def test_runtime_runs_without_torch_sb3_or_pickle(exported, pull_data, tmp_path):
    path = exported("maskable_norm")
    obs, masks = pull_data
    np.save(tmp_path / "obs.npy", obs[:64])
    np.save(tmp_path / "masks.npy", masks[:64])
    d = DeployedDispatcher(path)
    expected = d.decide_batch(obs[:64], masks[:64]).tolist()
    arrays = {k: np.load(tmp_path / f"{k}.npy").tolist() for k in ("obs", "masks")}
    (tmp_path / "inputs.json").write_text(json.dumps(arrays))
    script = textwrap.dedent(
        f"""
        import importlib.abc, json, pickle, sys

        BLOCKED = ("torch", "stable_baselines3", "sb3_contrib", "gymnasium", "envs")

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ImportError(f"{{name}} is blocked in this test")
                return None

        sys.meta_path.insert(0, Block())

        def no_pickle(*args, **kwargs):
            raise RuntimeError("pickle used on the load path")

        pickle.load = pickle.loads = no_pickle
        pickle.Unpickler = no_pickle

        import numpy as np
        from dispatch.deploy import DeployedDispatcher

        data = json.load(open({str(tmp_path / "inputs.json")!r}))
        obs = np.asarray(data["obs"], dtype=np.float32)
        masks = np.asarray(data["masks"], dtype=bool)
        d = DeployedDispatcher({str(path)!r})
        batch = d.decide_batch(obs, masks).tolist()
        single = [d.decide(o, m) for o, m in zip(obs, masks)]
        # The simulator policy too: a day of decisions without the training stack.
        from dispatch.policies import make_policy
        from dispatch.scenario import load_scenario
        from dispatch.simulator import Simulation

        scen = load_scenario({ECOM!r}, {{"horizon": 60}})
        res = Simulation(scen, make_policy("onnx", path={str(path)!r}), 0).run()
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print(json.dumps({{"batch": batch, "single": single, "loaded": loaded,
                           "completed": res.overall["completed"]}}))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["batch"] == expected
    assert out["single"] == expected
    assert out["loaded"] == []
    assert out["completed"] > 0


def test_deploy_module_imports_no_training_stack():
    import ast

    tree = ast.parse((ROOT / "dispatch" / "deploy.py").read_text())
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            roots.add(node.module.split(".")[0])
    assert not roots & {"torch", "stable_baselines3", "sb3_contrib", "gymnasium", "pickle", "envs"}
    assert roots <= {"__future__", "hashlib", "json", "pathlib", "typing", "numpy", "pydantic",
                     "dispatch", "onnxruntime", "heapq", "simpy", "warnings"}, roots  # fmt: skip


# -- bad inputs and bad artefacts -------------------------------------------------------------
def test_bad_inputs_fail_clearly(exported, pull_data):
    d = DeployedDispatcher(exported("maskable"))
    obs, masks = pull_data
    o, m = obs[0].copy(), masks[0].copy()
    B, D = d.n_actions, d.obs_dim

    def err(fn, *args) -> str:
        with pytest.raises(InvalidInputError) as info:
            fn(*args)
        assert isinstance(info.value, ValueError) and isinstance(info.value, DispatchError)
        assert "\n" not in str(info.value)
        return str(info.value)

    assert f"shape ({D},)" in err(d.decide, o[:-1], m)
    assert f"shape (N, {D})" in err(d.decide_batch, obs[:3, :-1], masks[:3])
    assert f"shape ({B},)" in err(d.decide, o, m[:-1])
    assert "shape (3," in err(d.decide_batch, obs[:3], masks[:2])
    bad = o.copy()
    bad[5] = np.nan
    msg = err(d.decide, bad, m)
    assert "non-finite" in msg and d.observation_names[5] in msg and "index 5" in msg
    bad[5] = np.inf
    assert "non-finite" in err(d.decide, bad, m)
    rows = obs[:4].copy()
    rows[2, 7] = np.nan
    assert "row 2" in err(d.decide_batch, rows, masks[:4])
    assert "floating-point" in err(d.decide, o.astype(np.int64), m)
    assert "floating-point" in err(d.decide, np.array(["x"] * D), m)
    far = o.copy()
    far[0] = 50.0
    assert "outside its schema range" in err(d.decide, far, m)
    assert "no valid bucket" in err(d.decide, o, np.zeros(B, bool))
    mm = masks[:4].copy()
    mm[1] = False
    assert "no valid bucket (row 1)" in err(d.decide_batch, obs[:4], mm)
    assert "needs an action mask" in err(d.decide, o)
    assert "0/1" in err(d.decide, o, m.astype(np.float32) * 2)
    assert "boolean" in err(d.decide, o, np.array(["a"] * B))
    # Accepted conversions: float64 observations, 0/1 integer masks.
    assert d.decide(o.astype(np.float64), m.astype(np.int8)) == d.decide(o, m)
    # Range checking can be switched off (values outside the schema then go through).
    assert 0 <= DeployedDispatcher(exported("maskable"), check_range=False).decide(far, m) < B


def test_tampered_missing_or_foreign_artefacts_are_refused(exported, tmp_path):
    src = exported("maskable")
    model = tmp_path / "m.onnx"
    model.write_bytes(src.read_bytes())
    side = sidecar_path(model)
    side.write_text(sidecar_path(src).read_text())
    DeployedDispatcher(model)  # an intact copy loads
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    with pytest.raises(DeploymentError, match="SHA-256 mismatch") as info:
        DeployedDispatcher(model)
    assert "\n" not in str(info.value)
    model.write_bytes(src.read_bytes())
    side.unlink()
    with pytest.raises(DeploymentError, match="sidecar m.onnx.json not found"):
        DeployedDispatcher(model)
    side.write_text("{not json")
    with pytest.raises(DeploymentError, match="JSON"):
        DeployedDispatcher(model)
    meta = json.loads(sidecar_path(src).read_text())
    side.write_text(json.dumps({**meta, "format_version": 99}))
    with pytest.raises(DeploymentError, match="format_version"):
        DeployedDispatcher(model)
    with pytest.raises(DeploymentError, match="model file not found"):
        DeployedDispatcher(tmp_path / "nope.onnx")


def test_sidecar_documents_the_model(run_of, exported):
    from dispatch.observation import layout_digest
    from envs.audit_dispatch import AuditDispatchEnv

    run = run_of("maskable_norm")
    path = exported("maskable_norm")
    meta = json.loads(sidecar_path(path).read_text())
    env = AuditDispatchEnv(ECOM, horizon=TRAIN_HORIZON)
    assert meta["format"] == "dispatch-policy-export" and meta["format_version"] == 1
    assert meta["kind"] == "discrete"
    assert meta["artifact"]["sha256"] == __import__("hashlib").sha256(path.read_bytes()).hexdigest()
    assert meta["artifact"]["opset"] == 17
    assert meta["observation"]["names"] == env.observation_names()
    assert meta["observation"]["size"] == env.observation_space.shape[0] == 385
    assert meta["actions"]["names"] == env.action_names()
    assert meta["inputs"]["action_mask"]["dtype"] == "bool"
    assert "candidates" in meta["mask"]["semantics"]
    vn = NormStats.load(run / "model.vecnormalize.json")
    norm = meta["normalization"]
    assert norm["enabled"] and norm["in_graph"]
    assert np.allclose(norm["mean"], vn.mean) and np.allclose(norm["var"], vn.var)
    assert norm["clip_obs"] == vn.clip_obs and norm["epsilon"] == vn.epsilon
    assert meta["scenario"]["digest"] == env.scenario.digest()
    assert meta["scenario"]["layout_digest"] == layout_digest(env.scenario)
    assert meta["scenario"]["name"] == "ecommerce_day"
    assert meta["training"]["run_id"] == run.name
    assert meta["training"]["algorithm"] == "MaskablePPO"
    for pkg in ("torch", "stable-baselines3", "sb3-contrib", "onnx", "onnxruntime", "numpy"):
        assert meta["versions"]["export"][pkg]
    assert meta["versions"]["training"]["torch"]
    assert meta["environment"]["kwargs"]["horizon"] == TRAIN_HORIZON
    plain = json.loads(sidecar_path(exported("ppo")).read_text())
    assert plain["normalization"]["enabled"] is False and plain["normalization"]["mean"] is None
    batch = json.loads(sidecar_path(exported("batch_norm")).read_text())
    assert batch["kind"] == "priority_weights" and batch["mask"] is None
    assert list(batch["inputs"]) == ["obs"]
    assert batch["environment"]["batch"] == {"interval": 5.0, "on_demand": True}


def test_policy_refuses_another_scenario_layout(exported):
    from dispatch.policies import make_policy
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    pol = make_policy("onnx", path=str(exported("maskable")))
    assert type(pol).__module__ == "dispatch.policies.onnx"  # dispatchers live in policies/
    with pytest.raises(ConfigError, match="exported for scenario 'ecommerce_day'"):
        Simulation(load_scenario(CMU), pol, 0)
    with pytest.raises(ConfigError, match="model file not found"):
        make_policy("onnx", path="no/such/model.onnx")


@pytest.mark.filterwarnings("ignore:.*torch.jit.*:DeprecationWarning")
def test_torchscript_export(run_of, exported, pull_data, tmp_path):
    obs, masks = pull_data
    out = export_model(run_of("maskable_norm"), tmp_path / "m.pt", format="torchscript")
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["artifact"]["format"] == "torchscript"
    mod = torch.jit.load(str(out))
    with torch.no_grad():
        a, p = mod(torch.as_tensor(obs[:500]), torch.as_tensor(masks[:500]))
    onnx = DeployedDispatcher(exported("maskable_norm"))
    assert np.array_equal(a.numpy(), onnx.decide_batch(obs[:500], masks[:500]))
    with pytest.raises(DeploymentError, match="ONNX only"):
        DeployedDispatcher(out)


def test_bare_model_file_needs_its_scenario(tmp_path):
    """A model trained directly with sb3-contrib and saved outside a run folder."""
    from sb3_contrib import MaskablePPO

    from envs.audit_dispatch import AuditDispatchEnv

    env = AuditDispatchEnv(CMU, horizon=200, reward="holding_cost", reward_scale=0.1)
    model = MaskablePPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=1, seed=0)
    model.learn(128)
    model.save(tmp_path / "bare.zip")
    with pytest.raises(ConfigError, match="pass --scenario"):
        export_model(tmp_path / "bare.zip", tmp_path / "bare.onnx")
    out = export_model(
        tmp_path / "bare.zip", tmp_path / "bare.onnx", scenario=CMU, env_kwargs={"horizon": 200}
    )
    meta = json.loads(sidecar_path(out).read_text())
    assert meta["scenario"]["digest"] == env.scenario.digest()
    assert meta["training"]["run_id"] is None
    d = DeployedDispatcher(out)
    obs, _ = env.reset(seed=0)
    done, n = False, 0
    while not done and n < 300:
        mask = env.action_masks()
        want, _ = model.predict(obs, action_masks=mask, deterministic=True)
        assert d.decide(obs, mask) == int(want)
        obs, _, done, _, _ = env.step(int(want))
        n += 1
    with pytest.raises(ConfigError, match="shape"):  # wrong scenario for this model
        export_model(tmp_path / "bare.zip", tmp_path / "x.onnx", scenario=ECOM)


# -- CLI --------------------------------------------------------------------------------------
def test_cli_export_and_one_line_errors(run_of, tmp_path):
    runner = CliRunner()
    run = run_of("ppo_norm")
    out = tmp_path / "cli" / "d.onnx"
    res = runner.invoke(app, ["export", str(run), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and sidecar_path(out).exists()
    assert "sha256" in res.output
    DeployedDispatcher(out)
    res = runner.invoke(app, ["simulate", ECOM, "--policy", "onnx", "-p", f"path={out}",
                              "--set", "horizon=60", "--json"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["policy"].startswith("onnx(")

    not_zip = tmp_path / "model.zip"
    not_zip.write_text("not a zip")
    empty = tmp_path / "empty"
    empty.mkdir()
    cases = [
        (["export", str(tmp_path / "missing"), "--out", str(out)], "no such"),
        (["export", str(empty), "--out", str(out)], "no model.zip"),
        (["export", str(not_zip), "--out", str(out)], "not a stable-baselines3 model"),
        (["export", str(run), "--out", str(out), "--format", "tflite"], "onnx or torchscript"),
        (["export", str(run), "--out", str(out), "--opset", "9"], "opset 9"),
        (["export", str(run), "--out", str(tmp_path)], "is a folder"),
    ]
    for args, needle in cases:
        res = runner.invoke(app, args)
        assert res.exit_code == 2, (args, res.output)
        lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
        assert needle in lines[0], res.output
