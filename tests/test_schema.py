"""Every scenario field is described, and ``dispatch schema`` shows them all."""

from __future__ import annotations

import inspect

import pydantic
import pytest
from typer.testing import CliRunner

import dispatch.dataspec
import dispatch.distributions
import dispatch.scenario
import dispatch.transforms
from dispatch.cli import app

MODELS = [
    obj
    for mod in (dispatch.scenario, dispatch.distributions, dispatch.dataspec, dispatch.transforms)
    for obj in vars(mod).values()
    if inspect.isclass(obj)
    and issubclass(obj, pydantic.BaseModel)
    and obj.__module__ == mod.__name__
]


def test_there_are_models_to_check():
    assert len(MODELS) >= 25


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_field_has_a_description(model):
    missing = [n for n, f in model.model_fields.items() if not (f.description or "").strip()]
    assert not missing, f"{model.__name__}: fields without a description: {missing}"


def test_schema_command_prints_every_field_with_its_description():
    res = CliRunner().invoke(app, ["schema"])
    assert res.exit_code == 0, res.output
    out = res.stdout
    for model in MODELS:
        for name, f in model.model_fields.items():
            assert f"{f.alias or name}: " in out, (model.__name__, name)
            assert " ".join(f.description.split()) in out, (model.__name__, name)
    assert out.startswith("Scenario: ")
    assert "horizon: float (required)" in out
