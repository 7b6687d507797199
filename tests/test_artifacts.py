"""Loading a model never runs code from it (issue 10 item 1), and run-folder artefacts.

A hostile model folder is built from a real trained run: every ``:serialized:`` entry of
``model.zip``'s ``data`` is replaced by a pickle whose unpickling writes a marker file, so
are ``pytorch_variables.pth`` and ``policy.optimizer.pth`` (torch pickles), and pickles
with the same payload sit where older run folders kept their VecNormalize statistics.
Every path that loads a model (the ``learned`` policy by run folder, by ``checkpoint=best``
and by bare zip, ``dispatch export``, ``dispatch run`` including the experiment's
validation) must work without running any of it; a hostile ``policy.pth`` and a folder
that truly needs unpickling are refused with one line; ``trust`` is the only way in.
"""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

pytest.importorskip("stable_baselines3")
pytest.importorskip("sb3_contrib")

from dispatch.artifacts import NormStats, load_model, locate, norm_file  # noqa: E402
from dispatch.cli import app  # noqa: E402
from dispatch.errors import ConfigError  # noqa: E402
from dispatch.scenario import load_scenario  # noqa: E402
from dispatch.simulator import simulate  # noqa: E402
from tests.conftest import ROOT, scenario_path  # noqa: E402

SMOKE = ROOT / "experiments" / "train" / "smoke.yaml"
CMU = str(scenario_path("cmu_single_server"))
cli = CliRunner()


class _Payload:
    """Unpickling this object runs ``exec``: it writes ``marker``."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').write('code from the file ran')",))


def _pickle_payload(marker: Path) -> bytes:
    import pickle

    return pickle.dumps(_Payload(marker))


def _torch_payload(marker: Path) -> bytes:
    import torch

    buf = io.BytesIO()
    torch.save({"weights": _Payload(marker)}, buf)
    return buf.getvalue()


def _rewrite_zip(path: Path, replace: dict[str, bytes]) -> None:
    data = path.read_bytes()
    with zipfile.ZipFile(io.BytesIO(data)) as zin, zipfile.ZipFile(path, "w") as zout:
        for item in zin.infolist():
            zout.writestr(item, replace.get(item.filename, zin.read(item.filename)))


def _poison_zip(path: Path, marker: Path, *, weights: bool = False) -> None:
    """Every pickled entry of ``data`` and the torch pickles we never need become payloads
    (``weights``: ``policy.pth`` too)."""
    with zipfile.ZipFile(path) as z:
        data = json.loads(z.read("data"))
    payload = base64.b64encode(_pickle_payload(marker)).decode()
    n = 0
    for value in data.values():
        if isinstance(value, dict) and ":serialized:" in value:
            value[":serialized:"] = payload
            n += 1
    assert n >= 5  # policy class, spaces, schedules, policy_kwargs, ...
    replace = {
        "data": json.dumps(data).encode(),
        "pytorch_variables.pth": _torch_payload(marker),
        "policy.optimizer.pth": _torch_payload(marker),
    }
    if weights:
        replace["policy.pth"] = _torch_payload(marker)
    _rewrite_zip(path, replace)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    from dispatch.training import train

    out = tmp_path_factory.mktemp("trained") / "run"
    return train(SMOKE, out, timesteps=256)  # eval every 128 steps: best_model.zip too


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "MARKER"


@pytest.fixture
def hostile(trained, tmp_path, marker) -> Path:
    """A copy of the run whose pickled parts all run code; the weights are intact."""
    run = tmp_path / "hostile_run"
    shutil.copytree(trained, run)
    for name in ("model.zip", "best_model.zip"):
        _poison_zip(run / name, marker)
    for legacy in ("vecnormalize.pkl", "best_vecnormalize.pkl"):
        (run / legacy).write_bytes(_pickle_payload(marker))
    return run


def _one_error_line(res) -> str:
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    return lines[0]


def _scen():
    return load_scenario(CMU, {"horizon": 250})


# -- the hostile folder loads everywhere without running its code -----------------------------
def test_learned_policy_by_folder_best_and_bare_zip_runs_nothing(trained, hostile, marker):
    want = simulate(_scen(), "learned", 3, model=str(trained)).overall
    assert simulate(_scen(), "learned", 3, model=str(hostile)).overall == want
    assert simulate(_scen(), "learned", 3, model=str(hostile / "model.zip")).overall == want
    best = simulate(_scen(), "learned", 3, model=str(trained), checkpoint="best").overall
    assert simulate(_scen(), "learned", 3, model=str(hostile), checkpoint="best").overall == best
    assert not marker.exists()
    lm = load_model(hostile)
    assert lm.pickle_free and lm.norm_path == norm_file(hostile / "model.zip")


def test_export_of_the_hostile_folder_runs_nothing(hostile, marker, tmp_path):
    pytest.importorskip("onnx")
    out = tmp_path / "d.onnx"
    res = cli.invoke(app, ["export", str(hostile), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists() and not marker.exists()


def test_dispatch_run_and_its_validation_run_nothing(trained, hostile, marker, tmp_path):
    exp = {
        "name": "hostile",
        "scenarios": [{"path": CMU, "overrides": {"horizon": 250}}],
        "policies": [
            {"name": "fifo"},
            {"label": "agent", "name": "learned", "params": {"model": str(hostile)}},
            {"label": "best", "name": "learned", "params": {"model": str(hostile), "checkpoint": "best"}},
        ],
        "seeds": [0, 1],
        "outputs": {"figures": False, "report": False},
    }  # fmt: skip
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(exp))
    res = cli.invoke(app, ["run", str(path), "--out", str(tmp_path / "r"), "--workers", "1",
                           "--no-progress"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not marker.exists()


# -- what cannot load pickle-free is refused; trust is the only way in --------------------------
def test_a_hostile_policy_pth_is_refused_with_one_line(hostile, marker, tmp_path):
    _poison_zip(hostile / "model.zip", marker, weights=True)
    with pytest.raises(ConfigError, match="cannot load the policy weights") as info:
        load_model(hostile, trust=True)  # trust does not unpickle weights either
    assert "\n" not in str(info.value)
    res = cli.invoke(app, ["simulate", CMU, "--policy", "learned", "-p", f"model={hostile}",
                           "--set", "horizon=250"])  # fmt: skip
    assert "cannot load the policy weights" in _one_error_line(res)
    res = cli.invoke(app, ["export", str(hostile), "--out", str(tmp_path / "x.onnx")])
    assert "cannot load the policy weights" in _one_error_line(res)
    assert not marker.exists()


def test_older_pickled_statistics_need_the_trust_flag(hostile, marker, tmp_path):
    norm_file(hostile / "model.zip").unlink()  # as in folders written before the JSON stats
    res = cli.invoke(app, ["simulate", CMU, "--policy", "learned", "-p", f"model={hostile}",
                           "--set", "horizon=250"])  # fmt: skip
    line = _one_error_line(res)
    assert "needs unpickling" in line and "vecnormalize.pkl" in line and "-p trust=true" in line
    res = cli.invoke(app, ["export", str(hostile), "--out", str(tmp_path / "x.onnx")])
    assert "--trust-model" in _one_error_line(res)
    exp = tmp_path / "exp.yaml"
    exp.write_text(yaml.safe_dump({
        "name": "legacy", "scenarios": [{"path": CMU}], "seeds": [0],
        "policies": [{"name": "learned", "params": {"model": str(hostile)}}],
    }))  # fmt: skip
    res = cli.invoke(app, ["run", str(exp), "--out", str(tmp_path / "r")])
    assert "needs unpickling" in _one_error_line(res)  # refused while validating
    assert not (tmp_path / "r").exists()
    assert not marker.exists()
    with pytest.raises(ConfigError, match="cannot load the VecNormalize statistics"):
        load_model(hostile, trust=True)  # the payload is not a VecNormalize ...
    assert marker.exists()  # ... but with trust, its code did run: trust is the only way in


def test_a_zip_from_elsewhere_needs_the_trust_flag(hostile, marker, tmp_path):
    bare = tmp_path / "elsewhere" / "model.zip"
    bare.parent.mkdir()
    shutil.copy(hostile / "model.zip", bare)
    res = cli.invoke(app, ["simulate", CMU, "--policy", "learned", "-p", f"model={bare}",
                           "--set", "horizon=250"])  # fmt: skip
    line = _one_error_line(res)
    assert "needs unpickling" in line and "env.json" in line
    res = cli.invoke(app, ["export", str(bare), "--out", str(tmp_path / "x.onnx"),
                           "--scenario", CMU])  # fmt: skip
    line = _one_error_line(res)
    assert "policy_kwargs are pickled" in line and "--trust-model" in line
    assert not marker.exists()
    res = cli.invoke(app, ["simulate", CMU, "--policy", "learned", "-p", f"model={bare}",
                           "-p", "trust=true", "--set", "horizon=250"])  # fmt: skip
    assert marker.exists()  # the explicit flag hands the file to SB3's unpickling loader


def test_a_corrupt_statistics_file_is_one_clear_line(trained, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(trained, run)
    stats = norm_file(run / "model.zip")
    for text in ("{not json", json.dumps({"format": "x"}), stats.read_text()[:200]):
        stats.write_text(text)
        res = cli.invoke(app, ["simulate", CMU, "--policy", "learned", "-p", f"model={run}",
                               "--set", "horizon=250"])  # fmt: skip
        assert "model.vecnormalize.json" in _one_error_line(res)
    data = json.loads((trained / "model.vecnormalize.json").read_text())
    data["obs_rms"]["var"][0] = -1.0
    stats.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="damaged normalisation statistics"):
        NormStats.load(stats)


def test_statistics_roundtrip_and_normalise_like_vecnormalize(trained):
    from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize

    from envs.audit_dispatch import AuditDispatchEnv

    stats = NormStats.load(trained / "model.vecnormalize.json")
    vn = VecNormalize(DummyVecEnv([lambda: AuditDispatchEnv(CMU)]), training=False)
    stats.restore(vn)
    again = NormStats.from_vecnormalize(vn)
    assert again.to_json() == stats.to_json()
    rng = np.random.default_rng(0)
    obs = rng.uniform(0, 2, (50, stats.mean.size)).astype(np.float32)
    assert np.array_equal(stats.normalize(obs), vn.normalize_obs(obs))


def test_locate_knows_the_run_folder_files(trained):
    run = locate(trained)
    assert run.model == trained / "model.zip" and run.run_dir == trained
    assert run.kind == "pull" and run.algo == "MaskablePPO"
    assert locate(trained, "best").model == trained / "best_model.zip"
    with pytest.raises(ConfigError, match="no run folder or model file"):
        locate(trained / "nothing")


def test_failed_training_says_failed_in_its_summary(tmp_path, monkeypatch):
    from dispatch import training

    def boom(session):
        raise RuntimeError("boom in learn")

    monkeypatch.setattr(training, "learn", boom)
    with pytest.raises(RuntimeError, match="boom"):
        training.train(SMOKE, tmp_path / "r", timesteps=64)
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "RuntimeError: boom in learn"
    assert not (tmp_path / "r" / "model.zip").exists()

    def interrupted(session):
        raise KeyboardInterrupt

    monkeypatch.setattr(training, "learn", interrupted)
    with pytest.raises(KeyboardInterrupt):
        training.train(SMOKE, tmp_path / "k", timesteps=64)
    summary = json.loads((tmp_path / "k" / "summary.json").read_text())
    assert summary["status"] == "failed" and summary["error"] == "KeyboardInterrupt"


LOAD_CALLS = re.compile(r"pickle\.load|cloudpickle|torch\.load\(")


def test_no_unpickling_in_our_code_outside_the_marked_trust_path():
    """The only loads: tensors with weights_only=True, and the trust path, marked."""
    hits = []
    for folder in ("dispatch", "envs"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for i, line in enumerate(path.read_text().splitlines(), 1):
                if LOAD_CALLS.search(line):  # code, comments and docstrings alike
                    hits.append((path.relative_to(ROOT).as_posix(), i, line.strip()))
    code = [h for h in hits if "weights_only=True" not in h[2] and "TRUST PATH" not in h[2]]
    assert not code, code
    assert any("weights_only=True" in h[2] for h in hits)
