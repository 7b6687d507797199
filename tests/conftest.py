"""Shared fixtures: scenario paths and small scenario builders."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = ROOT / "experiments" / "scenarios"


@pytest.fixture
def scenarios_dir() -> Path:
    return SCENARIOS


def scenario_path(name: str) -> Path:
    return SCENARIOS / f"{name}.yaml"
