"""The structure the code promises: only the engine touches SimPy and engine internals."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = {"dispatch/simulator.py"} | {
    p.relative_to(ROOT).as_posix() for p in (ROOT / "dispatch" / "engine").glob("*.py")
}
# dispatch/deploy.py (branch struct-b) still schedules its epochs by hand; its DeployedPolicy
# moves to dispatch/policies/onnx.py, which must use Simulation.schedule(t, fn, first=True).
PENDING_MIGRATION: set[str] = set()
PRIVATE = re.compile(r"\._now\b|\._queue\b|\._eid\b|\b_Call\b|\._at\(")
# Engine-owned mutable state that policies and environments read through the public API
# (free_count, idle_reviewers, pending_count, reviewer.current_class).
ENGINE_STATE = re.compile(r"\.idle\b|\bsim\.pending\b|\br\.task\b")


def _sources() -> list[tuple[str, str]]:
    out = []
    for folder in ("dispatch", "envs", "benchmarks"):
        for p in sorted((ROOT / folder).rglob("*.py")):
            out.append((p.relative_to(ROOT).as_posix(), p.read_text()))
    return out


def _offenders(pattern: re.Pattern[str], checked) -> list[str]:
    """``path:line: text`` of every line matching ``pattern`` in the files ``checked`` keeps."""
    out = []
    for rel, text in _sources():
        if not checked(rel):
            continue
        for i, line in enumerate(text.splitlines(), 1):
            if pattern.search(line):
                out.append(f"{rel}:{i}: {line.strip()}")
    return out


def test_only_the_engine_uses_simpy_and_engine_internals() -> None:
    offenders = _offenders(PRIVATE, lambda rel: rel not in ENGINE | PENDING_MIGRATION)
    assert not offenders, "private engine names outside the engine:\n" + "\n".join(offenders)


def test_policies_and_envs_read_engine_state_through_the_api() -> None:
    offenders = _offenders(
        ENGINE_STATE,
        lambda rel: rel.startswith(("dispatch/policies/", "dispatch/observation/", "envs/")),
    )
    assert not offenders, "engine state read directly:\n" + "\n".join(offenders)


def test_the_check_sees_a_violation() -> None:
    """The patterns match the forms they are meant to catch (the test can fail)."""
    for bad in ("sim.env._now", "env._queue", "next(env._eid)", "_Call(fn, None)", "sim._at(1, f)"):
        assert PRIVATE.search(bad), bad
    for bad in ("len(g.idle)", "len(sim.pending)", "r.task.cls"):
        assert ENGINE_STATE.search(bad), bad
    assert not PRIVATE.search("sim.now") and not ENGINE_STATE.search("sim.free_count(g)")
