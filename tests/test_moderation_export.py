"""The synthetic moderation export imports in one attempt with the shipped data: section.

``experiments/data/moderation_export/`` holds the awkward features of a real public
moderation export (see its ``generate.py``); ``experiments/scenarios/moderation_backlog.yaml``
must read it as it is, and the files must be exactly what the committed generator writes.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.importers import resolve_data
from dispatch.scenario import load_scenario
from tests.conftest import ROOT

EXPORT = ROOT / "experiments" / "data" / "moderation_export"
SCENARIO = ROOT / "experiments" / "scenarios" / "moderation_backlog.yaml"


def _generator():
    spec = importlib.util.spec_from_file_location("generate_moderation", EXPORT / "generate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    _generator().main(tmp_path)
    for name in ("tasks.csv", "moderators.csv"):
        assert (tmp_path / name).read_bytes() == (EXPORT / name).read_bytes(), name


def test_export_has_the_awkward_features() -> None:
    tasks = (EXPORT / "tasks.csv").read_bytes()
    mods = (EXPORT / "moderators.csv").read_text(encoding="utf-8")
    assert tasks.startswith("\ufeff".encode()) and b" ad_class ," in tasks.splitlines()[0]
    assert b",Ad (video)," in tasks and b",Merchant / shop," in tasks
    assert b",UK," in tasks and b",Ad (image),," in tasks  # UK for GB, blank markets
    assert '"[""NO""' in mods or '""NO""' in mods
    assert ",-," in mods  # missing accuracy
    assert "\n" + "mod_" in mods and ",," in mods  # blank market lists


@pytest.fixture(scope="module")
def imported():
    return resolve_data(load_scenario(SCENARIO))


def test_scenario_imports_the_export_in_one_attempt(imported) -> None:
    scen, data = imported
    rep = data.report
    assert "NO" in scen.markets and "GB" in scen.markets and "UK" not in scen.markets
    assert len(data.backlog_rows()) == 3000 and data.n_replay_rows() == 0
    assert sum(g.count for g in scen.reviewers) == 100
    assert rep.warnings == []
    targets = {m.source: m.target for m in rep.mappings}
    assert targets == {
        "Ad (video)": "ad_video",
        "Ad (image)": "ad_image",
        "Product listing": "product_listing",
        "Live stream (replay)": "live_stream_replay",
        "Merchant / shop": "merchant_risk",
        "UK": "GB",
    }
    (t,) = rep.transforms
    assert (t.column, t.field, t.count) == ("punish_num", "risk", 3000)
    ignored = {f.kind: f.columns_ignored for f in rep.files}
    assert ignored == {"task_log": ("advertiser", "ad_revenue"), "roster": ("team", "hire_date")}
    text = rep.summary()
    assert (
        "blank accuracy values in ../data/moderation_export/moderators.csv: set to the file's mean"
        in text
    )
    assert (
        "blank market values in ../data/moderation_export/tasks.csv: drawn from the class market mix"
        in text
    )
    # Norway: moderators whose JSON market list names NO cover Norway
    assert any(g.markets != "all" and "NO" in g.markets for g in scen.reviewers)
    # risk from punishments: most items unflagged (logistic(0) ~ 0.054)
    risks = sorted(r.risk for r in data.backlog_rows())
    assert risks[len(risks) // 2] == pytest.approx(0.0543, abs=1e-3)


def test_every_market_with_tasks_has_a_moderator(imported) -> None:
    scen, data = imported
    covered = set()
    for g in scen.reviewers:
        covered |= set(scen.markets) if g.markets == "all" else set(g.markets)
    assert {r.market for r in data.backlog_rows() if r.market} <= covered


def test_cli_simulates_it_and_saves_the_report(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        app,
        ["simulate", str(SCENARIO), "--set", "horizon=60", "--json", "--out", str(tmp_path)],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["overall"]["arrivals"] == 3000
    assert "Transforms applied:" in res.stderr
    saved = json.loads((tmp_path / "import_report.json").read_text())
    assert [f["rows"] for f in saved["files"]] == [3000, 100]
