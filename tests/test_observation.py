"""The observation features are defined once (dispatch.observation.FEATURES)."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from dispatch.layout import Layout
from dispatch.observation import ObservationBuilder, feature_table, feature_table_rst
from dispatch.policies.base import PolicyMode
from dispatch.scenario import load_scenario
from envs.audit_dispatch import AuditDispatchEnv
from envs.batch_dispatch import BatchDispatchEnv
from tests.conftest import scenario_path


@pytest.mark.parametrize(
    "cls,mode", [(AuditDispatchEnv, PolicyMode.PULL), (BatchDispatchEnv, PolicyMode.BATCH)]
)
def test_env_docstrings_carry_the_generated_feature_table(cls, mode):
    assert feature_table_rst(mode) in inspect.cleandoc(cls.__doc__)


@pytest.mark.parametrize("mode", list(PolicyMode))
def test_builder_names_and_bounds_follow_the_table(mode):
    layout = Layout.from_scenario(load_scenario(scenario_path("ecommerce_day")))
    b = ObservationBuilder(layout, mode)
    B = layout.n_buckets
    rows = feature_table(mode)
    blocks = [r for r in rows if r["kind"] == "bucket"]
    glob = [r for r in rows if r["kind"] == "global"]
    assert b.size == len(blocks) * B + len(glob)
    for k, r in enumerate(blocks):
        names = b.names()[k * B : (k + 1) * B]
        assert names == [f"{r['name']}[{n}]" for n in layout.bucket_names]
        assert np.all(b.low[k * B : (k + 1) * B] == r["low"])
        assert np.all(b.high[k * B : (k + 1) * B] == r["high"])
    assert b.names()[len(blocks) * B :] == [r["name"] for r in glob]
    assert list(b.low[len(blocks) * B :]) == [r["low"] for r in glob]
    assert list(b.high[len(blocks) * B :]) == [r["high"] for r in glob]
    assert rows[len(blocks)]["index"] == f"{len(blocks)}B"
