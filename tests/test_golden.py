"""Behaviour is pinned: every shipped scenario x policy x seed prints the same JSON.

The hashes in ``tests/golden/simulate.json`` were recorded by ``tests/golden/record.py``
before the code was restructured; a restructuring or speed-up must keep every one.
A change that is *meant* to alter behaviour re-records them (and says so in its commit).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
import record  # noqa: E402

GOLDEN = json.loads(record.GOLDEN.read_text())


@pytest.mark.parametrize("scenario", sorted(record.SCENARIOS))
def test_simulate_json_unchanged(scenario: str) -> None:
    changed = []
    for s, p, seed in record.cases():
        if s != scenario:
            continue
        text = record.simulate_json(s, p, seed)
        want = GOLDEN[f"{s}|{p}|{seed}"]
        if record.digest(text) != want["sha256"]:
            changed.append(f"{p} seed {seed}: {want['headline']} -> {record.headline(text)}")
    assert not changed, "simulate --json output changed:\n" + "\n".join(changed)


def test_golden_scenarios_exist() -> None:
    shipped = {p.stem for p in (record.ROOT / "experiments" / "scenarios").glob("*.yaml")}
    assert set(record.SCENARIOS) <= shipped


def test_cli_prints_the_recorded_text() -> None:
    """The recorder reproduces exactly what the command line prints."""
    from typer.testing import CliRunner

    from dispatch.cli import app

    path = record.ROOT / "experiments" / "scenarios" / "ecommerce_day.yaml"
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            str(path),
            "--policy",
            "flow",
            "--seed",
            "7",
            "--json",
            "--set",
            "horizon=360",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.strip() == record.simulate_json("ecommerce_day", "flow", 7)
