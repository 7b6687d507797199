"""`dispatch simulate`: JSON output, tables, outputs on disk, and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from dispatch.cli import app
from tests.conftest import scenario_path

runner = CliRunner()
ECOM = str(scenario_path("ecommerce_day"))


def run(*args: str):
    return runner.invoke(app, list(args))


def test_simulate_json_has_documented_keys():
    res = run("simulate", ECOM, "--policy", "fifo", "--seed", "3", "--json", "--set", "horizon=240")
    assert res.exit_code == 0, res.output
    data = json.loads(res.stdout)
    assert set(data) >= {"overall", "per_class", "per_group", "policy", "seed", "scenario"}
    for key in [
        "arrivals",
        "completed",
        "abandoned",
        "mean_wait",
        "p95_wait",
        "p99_wait",
        "sla_attainment",
        "throughput_per_hour",
        "utilisation",
        "accuracy",
        "precision",
        "recall",
        "harm_exposure",
        "false_enforcements",
        "appeals",
        "severe_per_reviewer_hour",
        "objective",
    ]:
        assert key in data["overall"], key
    assert set(data["per_class"]) == {
        "live_stream",
        "short_video",
        "product_listing",
        "comment_report",
        "merchant_risk",
        "appeal",
        "qa_review",
    }


def test_simulate_table_and_outputs(tmp_path: Path):
    out = tmp_path / "run"
    res = run(
        "simulate",
        ECOM,
        "--policy",
        "priority",
        "--set",
        "horizon=240",
        "--out",
        str(out),
        "--records",
    )
    assert res.exit_code == 0, res.output
    assert "live_stream" in res.stdout and "sla_attainment" in res.stdout
    metrics = json.loads((out / "metrics.json").read_text())
    tasks = pd.read_parquet(out / "tasks.parquet")
    ts = pd.read_csv(out / "timeseries.csv")
    assert len(tasks) == metrics["overall"]["completed"] + metrics["overall"]["abandoned"]
    assert "backlog_live_stream" in ts.columns
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ("horizon: [1, 2\nclasses: []", "malformed YAML"),
        ("horizon: 100\nclassez: []\n", "classez"),
        (
            "horizon: 100\nclasses:\n  - name: a\n    arrivals: {kind: poisson, rate: -1}\n    handling: {kind: exponential, mean: 1}\n",
            "rate",
        ),
        ("- just\n- a list\n", "mapping"),
        ("horizon: 100\n", "classes"),
    ],
)
def test_bad_scenarios_get_one_clear_line(tmp_path: Path, content: str, needle: str):
    p = tmp_path / "bad.yaml"
    p.write_text(content)
    res = run("simulate", str(p))
    assert res.exit_code == 2
    lines = [x for x in res.stderr.strip().splitlines() if x]
    assert len(lines) == 1, res.stderr
    assert needle in lines[0] and "Traceback" not in res.stderr


def test_missing_file_and_bad_flags():
    res = run("simulate", "nope.yaml")
    assert res.exit_code == 2 and "file not found" in res.stderr
    res = run("simulate", ECOM, "--policy", "bogus")
    assert res.exit_code == 2 and "unknown policy" in res.stderr
    res = run("simulate", ECOM, "--set", "horizon")
    assert res.exit_code == 2 and "KEY=VALUE" in res.stderr
    res = run("simulate", ECOM, "--set", "classes.nope.sla=3")
    assert res.exit_code == 2 and "no item named" in res.stderr


def test_unstable_load_warns_but_runs(tmp_path: Path):
    p = tmp_path / "over.yaml"
    p.write_text(
        "horizon: 60\nclasses:\n  - name: a\n    arrivals: {kind: poisson, rate: 5}\n"
        "    handling: {kind: exponential, mean: 1}\nreviewers:\n  - {name: g, count: 2, classes: [a]}\n"
    )
    res = run("simulate", str(p), "--json")
    assert res.exit_code == 0
    assert "warning:" in res.stderr and "grow without bound" in res.stderr


def test_missing_columns_and_empty_logs_are_clear(tmp_path: Path):
    base = (
        "horizon: 60\nclasses:\n  - name: a\n    arrivals: {kind: replay, log: l}\n"
        "    handling: {kind: exponential, mean: 1}\nreviewers:\n  - {name: g, count: 2, classes: [a]}\n"
        "data:\n  task_logs:\n    - {name: l, path: log.csv, timestamp_format: minutes, "
        "columns: {arrival: t, class: cls}}\n"
    )
    (tmp_path / "s.yaml").write_text(base)
    (tmp_path / "log.csv").write_text("time,cls\n1,a\n")
    res = run("simulate", str(tmp_path / "s.yaml"))
    assert res.exit_code == 2 and "log.csv" in res.stderr and "'t'" in res.stderr
    (tmp_path / "log.csv").write_text("t,cls\n")
    res = run("simulate", str(tmp_path / "s.yaml"))
    assert res.exit_code == 2 and "no rows" in res.stderr


def test_policies_command_lists_every_policy_and_readme_carries_them():
    from dispatch.policies import list_policies
    from tests.conftest import ROOT

    res = run("policies")
    assert res.exit_code == 0
    names = [n for n, _, _ in list_policies()]
    lines = res.stdout.splitlines()
    assert [ln for ln in lines if not ln.startswith(" ")] == names
    readme = (ROOT / "README.md").read_text()
    for n in names:
        assert f"| `{n}` |" in readme, f"README does not list policy {n}"


def test_readme_policy_rows_list_the_parameters_dispatch_policies_shows():
    """The README's policy table (between the policies markers) agrees with the registry,
    parameter by parameter (nested groups as ``group.key``)."""
    import re

    from dispatch.policies import list_policies
    from tests.conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- policies:start -->")[1].split("<!-- policies:end -->")[0]
    for name, _, params in list_policies():
        m = re.search(rf"^\| `{re.escape(name)}` \| .*? Parameters: (.*?)\. \|$", block, re.M)
        assert m, f"README has no row for {name}"
        listed = re.findall(r"`([^`]+)`", m.group(1))
        assert listed == list(params), (name, listed, list(params))
