"""Concurrent runs: one writer per run folder (dispatch.lock), unique temporary file names."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.errors import ConfigError
from dispatch.lock import LOCK_NAME, lock_folder, read_holder
from dispatch.runner import load_results, run_experiment
from tests.conftest import ROOT, scenario_path

ECOM = str(scenario_path("ecommerce_day"))

HOLDER = """
import sys, time
from dispatch.lock import lock_folder
lock = lock_folder(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()  # hold until the test closes stdin (or kills us)
lock.release()
"""


def _experiment(tmp_path: Path, seeds=(0, 1)) -> Path:
    cfg = {
        "name": "lock",
        "scenarios": [{"path": ECOM, "overrides": {"horizon": 120}}],
        "policies": [{"name": "fifo"}, {"name": "priority"}],
        "seeds": list(seeds),
        "outputs": {"figures": False, "report": True},
    }
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _hold(folder: Path) -> subprocess.Popen:
    """Another process holding the folder's lock until its stdin is closed."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(folder)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_second_run_into_a_locked_folder_refuses_with_one_line(tmp_path):
    exp = _experiment(tmp_path)
    out = tmp_path / "run"
    holder = _hold(out)
    try:
        res = CliRunner().invoke(app, ["run", str(exp), "--out", str(out), "--no-progress"])
        assert res.exit_code == 2, res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), res.output
        assert f"in use by pid {holder.pid}" in lines[0] and "--wait" in lines[0]
        assert sorted(p.name for p in out.iterdir()) == [LOCK_NAME]  # nothing written
        assert read_holder(out / LOCK_NAME)["pid"] == holder.pid
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    assert not (out / LOCK_NAME).exists()  # released: the holder deleted it
    run_experiment(exp, out=out, workers=1, progress=False)  # now free
    assert len(load_results(out)) == 4 and not (out / LOCK_NAME).exists()


def test_wait_flag_queues_behind_the_holder_then_resumes(tmp_path):
    exp = _experiment(tmp_path)
    out = tmp_path / "run"
    holder = _hold(out)
    cmd = [sys.executable, "-m", "dispatch.cli", "run", str(exp), "--out", str(out)]
    waiter = subprocess.Popen(
        [*cmd, "--wait", "--workers", "1"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        first = waiter.stderr.readline()
        assert f"waiting for the run folder's lock, held by pid {holder.pid}" in first
        time.sleep(0.5)
        assert waiter.poll() is None and not (out / "cells").exists()  # still queued
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    stdout, stderr = waiter.communicate(timeout=300)
    assert waiter.returncode == 0, stderr
    assert len(load_results(out)) == 4 and not (out / LOCK_NAME).exists()


def test_a_lock_left_by_a_killed_process_is_taken_over(tmp_path):
    exp = _experiment(tmp_path, seeds=[0])
    out = tmp_path / "run"
    holder = _hold(out)
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    assert read_holder(out / LOCK_NAME)["pid"] == holder.pid  # the file stays behind
    with pytest.raises(OSError):
        os.kill(holder.pid, 0)  # ... its process is gone
    run_experiment(exp, out=out, workers=1, progress=False)
    assert len(load_results(out)) == 2 and not (out / LOCK_NAME).exists()


def test_lock_in_the_same_process_refuses_a_second_holder(tmp_path):
    with (
        lock_folder(tmp_path / "f"),
        pytest.raises(ConfigError, match=f"in use by pid {os.getpid()}"),
    ):
        lock_folder(tmp_path / "f")
    with lock_folder(tmp_path / "f"):  # released by the context manager
        pass


def _critical_sections(folder: str, log: str, n: int) -> None:
    for _ in range(n):
        with lock_folder(folder, wait=True), open(log, "a") as fh:
            fh.write(f"in {os.getpid()}\n")
            fh.flush()
            time.sleep(0.002)
            fh.write(f"out {os.getpid()}\n")


def test_lock_is_mutually_exclusive_under_contention(tmp_path):
    """Three processes take and release the lock 40 times each: never two inside at once
    (the holder deletes the file on release; a process that opened it meanwhile retries)."""
    log = tmp_path / "log.txt"
    ctx = mp.get_context("spawn")
    procs = [
        ctx.Process(target=_critical_sections, args=(str(tmp_path / "f"), str(log), 40))
        for _ in range(3)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 3 * 40 * 2
    for enter, leave in zip(lines[::2], lines[1::2], strict=True):
        assert enter.startswith("in ") and leave == "out " + enter.split()[1]


def _save_figures(path: str, n: int) -> None:
    from matplotlib.figure import Figure

    from dispatch.figures import _save

    for i in range(n):
        fig = Figure(figsize=(2, 2))
        fig.add_subplot().plot([0, 1], [0, i])
        _save(fig, Path(path))


def test_two_processes_drawing_the_same_figure_never_collide(tmp_path):
    """Temporary figure files are unique per process and call: concurrent writers of one
    figure (two runs, or a run and a notebook) each publish a complete PNG."""
    target = tmp_path / "figures" / "metric.png"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_save_figures, args=(str(target), 15)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=120)
        assert p.exitcode == 0  # a shared temporary name made one rename fail here
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in target.parent.iterdir()] == ["metric.png"]  # no temp files left


def test_atomic_path_names_are_unique(tmp_path):
    from dispatch.io import atomic_path

    target = tmp_path / "x.png"
    with atomic_path(target, suffix=".png") as a, atomic_path(target, suffix=".png") as b:
        assert a != b and a.parent == b.parent == tmp_path and a.suffix == ".png"
        a.write_text("a")
        b.write_text("b")
    assert target.read_text() == "a"  # the outer block finished last
    assert json.dumps(sorted(p.name for p in tmp_path.iterdir())) == '["x.png"]'
