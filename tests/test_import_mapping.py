"""Tests of the ``data:`` reading options and of the import report as an artefact.

Each option (na_values, keep_default_na, class_map and safe class names, market_map,
markets: from_data, column maps and transforms, default_classes: all, BOM and padded
headers, YAML's Norway problem) gets a small export written into ``tmp_path`` and a check of
what the import made of it, through :func:`resolve_data` or the command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from dispatch.cli import app
from dispatch.errors import ConfigError, DataError
from dispatch.importers import (
    check_data_unchanged,
    data_fingerprints,
    import_report,
    resolve_data,
    safe_name,
    write_import_report,
)
from dispatch.scenario import Scenario, load_scenario
from dispatch.transforms import Clip, Logistic, MinMax, Rank, Scale, Threshold, apply_transforms


def scenario(tmp_path: Path, **extra: Any) -> dict[str, Any]:
    d: dict[str, Any] = {
        "name": "mapped",
        "horizon": 60.0,
        "markets": ["US", "NO"],
        "base_dir": str(tmp_path),
        "classes": [
            {"name": "ad_video", "handling": {"kind": "deterministic", "value": 1.0}},
            {"name": "listing", "handling": {"kind": "deterministic", "value": 2.0}},
        ],
        "reviewers": [{"name": "crew", "count": 5, "classes": ["ad_video", "listing"]}],
    }
    d.update(extra)
    return d


def backlog_log(path: str, columns: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {
        "name": "snap",
        "path": path,
        "use": "backlog",
        "timestamp_format": "minutes",
        "columns": columns,
    } | kw


def write_csv(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_bytes(text.encode("utf-8"))
    return p


def resolve(d: dict[str, Any]):
    return resolve_data(Scenario.model_validate(d))


TASKS = "t,cls,mkt,score\n-5,Ad (video),US,0.2\n-4,listing,NO,-\n-3,Ad (video),,0.4\n"


def tasks_scenario(tmp_path: Path, **log: Any) -> dict[str, Any]:
    write_csv(tmp_path, "tasks.csv", TASKS)
    d = scenario(tmp_path)
    cols = {"arrival": "t", "class": "cls", "market": "mkt", "risk": "score"}
    d["data"] = {"task_logs": [backlog_log("tasks.csv", cols, **log)]}
    return d


def rows(data) -> list:
    return data.backlog_rows()


# --------------------------------------------------------------------------- missing values


def test_na_values_per_file_make_dashes_blank(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"risk '-' is not a number.*add it to na_values"):
        resolve(tasks_scenario(tmp_path))
    _, data = resolve(tasks_scenario(tmp_path, na_values=["-"]))
    risk = [r.risk for r in rows(data)]
    assert risk[0] == 0.2 and np.isnan(risk[1]) and risk[2] == 0.4
    assert "1 blank risk (column 'score') values in tasks.csv" in data.report.summary()


def test_na_values_per_column_and_keep_default_na(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls,mkt,score\n-3,listing,NA,unknown\n-2,listing,US,NA\n")
    d = scenario(tmp_path, markets=["US", "NA"])
    cols = {
        "arrival": "t",
        "class": "cls",
        "market": "mkt",
        "risk": {"column": "score", "na_values": ["unknown"]},
    }
    d["data"] = {"task_logs": [backlog_log("t.csv", cols)]}
    _, data = resolve(d)
    got = rows(data)
    assert [r.market for r in got] == [None, "US"]  # NA read as missing by default
    assert all(np.isnan(r.risk) for r in got)  # 'unknown' (column) and 'NA' (built-in)

    # Namibia: keep_default_na false makes NA a value; 'NA' in risk then is not a number
    d["data"]["task_logs"][0]["keep_default_na"] = False
    d["data"]["task_logs"][0]["columns"]["risk"]["na_values"] = ["unknown", "NA"]
    _, data = resolve(d)
    assert [r.market for r in rows(data)] == ["NA", "US"]


# --------------------------------------------------------------------------- class names


def test_safe_name_is_deterministic() -> None:
    assert safe_name("Ad (video)") == "ad_video"
    assert safe_name("  Product listing / Shop ") == "product_listing_shop"
    assert safe_name("Crème brûlée") == "creme_brulee"
    assert safe_name("2nd look") == "c_2nd_look"
    assert safe_name("()") == ""


def test_class_labels_get_safe_names_and_the_renaming_is_reported(tmp_path: Path) -> None:
    _, data = resolve(tasks_scenario(tmp_path, na_values=["-"]))
    assert [r.cls for r in rows(data)] == ["ad_video", "listing", "ad_video"]
    (m,) = data.report.mappings
    assert (m.source, m.target, m.how, m.count) == ("Ad (video)", "ad_video", "safe name", 2)
    assert "'Ad (video)' -> ad_video (safe name, 2 cells)" in data.report.summary()


def test_class_map_wins_and_unknown_targets_are_config_errors(tmp_path: Path) -> None:
    d = tasks_scenario(tmp_path, na_values=["-"], class_map={"Ad (video)": "listing"})
    _, data = resolve(d)
    assert [r.cls for r in rows(data)] == ["listing", "listing", "listing"]
    assert data.report.mappings[0].how == "class_map"
    d["data"]["task_logs"][0]["class_map"] = {"Ad (video)": "ads"}
    with pytest.raises(ConfigError, match=r"data\.task_logs\.0\.class_map.*\['ads'\]"):
        resolve(d)


def test_unknown_class_labels_are_listed_at_once(tmp_path: Path) -> None:
    text = "t,cls\n" + "".join(f"-{i},{c}\n" for i, c in enumerate(["A b", "A b", "X (y)", "z"]))
    write_csv(tmp_path, "t.csv", text)
    d = scenario(tmp_path)
    d["data"] = {"task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls"})]}
    with pytest.raises(DataError) as exc:
        resolve(d)
    msg = str(exc.value)
    assert "\n" not in msg and "3 unknown class labels" in msg
    assert "'A b' (2 rows, first row 1, safe name a_b)" in msg
    assert "'X (y)' (row 3, safe name x_y)" in msg and "'z' (row 4, safe name z)" in msg


def test_two_labels_with_one_safe_name_are_refused(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls\n-2,Ad (video)\n-1,ad-video\n")
    d = scenario(tmp_path)
    d["data"] = {"task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls"})]}
    with pytest.raises(DataError, match=r"'Ad \(video\)' and 'ad-video' all become class ad_video"):
        resolve(d)
    d["data"]["task_logs"][0]["class_map"] = {"Ad (video)": "ad_video", "ad-video": "ad_video"}
    _, data = resolve(d)
    assert [r.cls for r in rows(data)] == ["ad_video", "ad_video"]


# --------------------------------------------------------------------------- markets


def test_market_map_and_unknown_codes_listed_at_once(tmp_path: Path) -> None:
    write_csv(
        tmp_path, "t.csv", "t,cls,mkt\n-4,listing,UK\n-3,listing,DE\n-2,listing,FR\n-1,listing,DE\n"
    )
    d = scenario(tmp_path)
    cols = {"arrival": "t", "class": "cls", "market": "mkt"}
    d["data"] = {"task_logs": [backlog_log("t.csv", cols, market_map={"UK": "US"})]}
    with pytest.raises(DataError) as exc:
        resolve(d)
    msg = str(exc.value)
    assert "2 unknown market codes: 'DE' (2 rows, first row 2), 'FR' (row 3)" in msg
    d["data"]["task_logs"][0]["market_map"] = {"UK": "US", "DE": "NO", "FR": "NO", "IT": "US"}
    _, data = resolve(d)
    assert [r.market for r in rows(data)] == ["US", "NO", "NO", "NO"]
    summary = data.report.summary()
    assert "'DE' -> NO (market_map, 2 cells)" in summary
    assert "market_map entries not found in column 'mkt' of t.csv: 'IT'" in summary


def test_markets_from_data_union_of_logs_and_rosters(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls,mkt\n-2,listing,SE\n-1,listing,\n")
    write_csv(tmp_path, "r.csv", 'id,m\na,"[""NO"", ""DK""]"\nb,[NO]\nc,all\n')
    d = scenario(tmp_path, markets="from_data", reviewers=[])
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls", "market": "mkt"})],
        "rosters": [
            {
                "path": "r.csv",
                "columns": {"reviewer_id": "id", "markets": "m"},
                "default_classes": "all",
            }
        ],
    }
    scen, data = resolve(d)
    assert scen.markets == ["DK", "NO", "SE"]
    assert [(g.name, g.markets) for g in scen.reviewers] == [
        ("roster_a", ["DK", "NO"]),
        ("roster_b", ["NO"]),
        ("roster_c", "all"),
    ]
    assert "markets from the data (3): DK, NO, SE" in data.report.summary()
    # names the scenario gives must be in the data
    d["classes"][1]["market_mix"] = {"SE": 0.5, "FI": 0.5}
    with pytest.raises(ConfigError, match=r"market_mix of class listing names \['FI'\]"):
        resolve(d)


def test_markets_from_data_needs_a_market_column(tmp_path: Path) -> None:
    d = scenario(tmp_path, markets="from_data")
    d["data"] = {"task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls"})]}
    with pytest.raises(Exception, match="from_data needs a market column"):
        Scenario.model_validate(d)


# --------------------------------------------------------------------------- YAML Norway


def write_yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    return p


BASE_YAML = """
horizon: 60
classes:
  - name: listing
    handling: {kind: exponential, mean: 1}
"""


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ("markets: [US, NO, SE]\n", "markets"),
        (
            "markets: [US, 'NO']\nreviewers: [{name: g, count: 1, classes: [listing], markets: [no]}]\n",
            "reviewers.0.markets",
        ),
    ],
)
def test_yaml_norway_in_market_lists_is_caught(tmp_path: Path, extra: str, field: str) -> None:
    with pytest.raises(ConfigError) as exc:
        load_scenario(write_yaml(tmp_path, BASE_YAML + extra))
    msg = str(exc.value)
    assert f"field '{field}'" in msg and "item " in msg
    assert "unquoted NO" in msg and "quote it: 'NO'" in msg and "\n" not in msg


def test_yaml_norway_in_maps_is_caught_and_quoting_fixes_it(tmp_path: Path) -> None:
    text = BASE_YAML.replace("    handling", "    market_mix: {NO: 0.5, US: 0.5}\n    handling")
    with pytest.raises(
        ConfigError, match=r"classes\.0\.market_mix.*a key: YAML read an unquoted NO"
    ):
        load_scenario(write_yaml(tmp_path, "markets: ['NO', US]\n" + text))
    fixed = text.replace("{NO: 0.5", "{'NO': 0.5")
    scen = load_scenario(write_yaml(tmp_path, "markets: ['NO', US]\n" + fixed))
    assert scen.classes[0].market_mix == {"NO": 0.5, "US": 0.5}

    data = "data:\n  task_logs: [{name: l, path: t.csv, columns: {arrival: t, class: c}, market_map: {UK: NO}}]\n"
    with pytest.raises(ConfigError, match=r"market_map.*the value of 'UK'.*unquoted NO"):
        load_scenario(write_yaml(tmp_path, "markets: [US]\n" + BASE_YAML + data))


def test_numeric_codes_in_class_map_keys_are_text(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls\n-2,1\n-1,2\n")
    d = scenario(tmp_path)
    log = backlog_log(
        "t.csv", {"arrival": "t", "class": "cls"}, class_map={1: "ad_video", 2: "listing"}
    )
    d["data"] = {"task_logs": [log]}
    _, data = resolve(d)
    assert [r.cls for r in rows(data)] == ["ad_video", "listing"]


def test_norway_in_cells_is_text(tmp_path: Path) -> None:
    """Cells are read as text, never as YAML: NO in JSON, bare or delimited lists is Norway."""
    write_csv(tmp_path, "t.csv", "t,cls,mkt\n-1,listing,NO\n")
    write_csv(tmp_path, "r.csv", 'id,m\na,"[""NO""]"\nb,"[NO, US]"\nc,NO|US\nd,no\n')
    d = scenario(tmp_path, reviewers=[])
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls", "market": "mkt"})],
        "rosters": [
            {
                "path": "r.csv",
                "columns": {"reviewer_id": "id", "markets": "m"},
                "default_classes": "all",
                "market_map": {"no": "NO"},
            }
        ],
    }
    scen, data = resolve(d)
    assert rows(data)[0].market == "NO"
    # a and d (no -> NO by market_map) cover Norway; b and c Norway and the US
    assert [(g.markets, g.count) for g in scen.reviewers] == [(["NO"], 2), (["US", "NO"], 2)]


# --------------------------------------------------------------------------- transforms


@pytest.mark.parametrize(
    ("step", "x", "want"),
    [
        (Logistic(center=2, scale=1), [2.0, np.nan, 2 + np.log(3)], [0.5, np.nan, 0.75]),
        (MinMax(), [10.0, 20.0, 15.0, np.nan], [0.0, 1.0, 0.5, np.nan]),
        (MinMax(low=0, high=10), [-1.0, 5.0, 12.0], [0.0, 0.5, 1.0]),
        (Rank(), [30.0, 10.0, 20.0, 20.0, np.nan], [0.875, 0.125, 0.5, 0.5, np.nan]),
        (Threshold(at=1, above=0.6, below=0.05), [0.0, 1.0, 3.0, np.nan], [0.05, 0.6, 0.6, np.nan]),
        (Clip(low=0.01, high=0.99), [0.0, 0.5, 1.0], [0.01, 0.5, 0.99]),
        (Scale(factor=0.01), [93.0, 70.0], [0.93, 0.7]),
        (Scale(factor=2, offset=1), [1.0, np.nan], [3.0, np.nan]),
    ],
)
def test_each_transform(step: Any, x: list[float], want: list[float]) -> None:
    got, text = apply_transforms([step], np.array(x))
    np.testing.assert_allclose(got, want, equal_nan=True)
    assert text.startswith(step.kind)


def test_transform_errors_are_one_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="minmax needs high > low.*single value"):
        apply_transforms([MinMax()], np.array([3.0, 3.0]))
    with pytest.raises(Exception, match="clip needs low, high or both"):
        Clip()
    with pytest.raises(Exception, match="does not match any of the expected tags"):
        Scenario.model_validate(
            scenario(tmp_path)
            | {
                "data": {
                    "task_logs": [
                        backlog_log(
                            "t.csv",
                            {
                                "arrival": "t",
                                "class": "c",
                                "risk": {"column": "p", "transform": {"kind": "sigmoid"}},
                            },
                        )
                    ]
                }
            }
        )


def punish_scenario(tmp_path: Path, risk: Any) -> dict[str, Any]:
    write_csv(tmp_path, "t.csv", "t,cls,punish_num\n-3,listing,0\n-2,listing,3\n-1,listing,\n")
    d = scenario(tmp_path)
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls", "risk": risk})]
    }
    return d


def test_counts_become_risk_by_a_transform_and_the_report_says_how(tmp_path: Path) -> None:
    with pytest.raises(DataError) as exc:
        resolve(punish_scenario(tmp_path, "punish_num"))
    assert "out of range [0, 1]" in str(exc.value) and "give it a transform" in str(exc.value)

    risk = {"column": "punish_num", "transform": {"kind": "logistic", "center": 2, "scale": 0.7}}
    _, data = resolve(punish_scenario(tmp_path, risk))
    got = [r.risk for r in rows(data)]
    assert got[0] == pytest.approx(1 / (1 + np.exp(2 / 0.7)))
    assert got[1] == pytest.approx(1 / (1 + np.exp(-1 / 0.7)))
    assert np.isnan(got[2])
    (t,) = data.report.transforms
    assert (t.column, t.field, t.count) == ("punish_num", "risk", 2)
    assert (
        "column 'punish_num' -> risk: logistic(center=2, scale=0.7) on 2 values, result 0.054"
        in (data.report.summary())
    )

    chain = {
        "column": "punish_num",
        "transform": [{"kind": "scale", "factor": 0.5}, {"kind": "clip", "high": 0.9}],
    }
    _, data = resolve(punish_scenario(tmp_path, chain))
    assert [r.risk for r in rows(data)][:2] == [0.0, 0.9]
    assert "scale(factor=0.5, offset=0) then clip" in data.report.summary()

    bad = {"column": "punish_num", "transform": {"kind": "scale", "factor": 0.5}}
    with pytest.raises(
        DataError,
        match=r"risk '3' gives 1.5 after scale\(factor=0.5, offset=0\), which is out of range",
    ):
        resolve(punish_scenario(tmp_path, bad))


def test_whole_number_probability_column_warns(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls,flag\n-2,listing,0\n-1,listing,1\n")
    d = scenario(tmp_path)
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls", "risk": "flag"})]
    }
    _, data = resolve(d)
    (w,) = data.report.warnings
    assert "column 'flag' mapped as risk (a probability) holds only whole numbers (0, 1)" in w
    assert "Warnings:\n  t.csv: column 'flag'" in data.report.summary()


def test_text_levels_map_to_numbers(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "t,cls,sev\n-2,listing,low\n-1,listing,5\n")
    d = scenario(tmp_path)
    sev = {"column": "sev", "map": {"low": 1, "high": 10}}
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "t", "class": "cls", "severity": sev})]
    }
    _, data = resolve(d)
    assert [r.severity for r in rows(data)] == [1.0, 5.0]


def test_map_or_transform_on_a_name_column_is_refused(tmp_path: Path) -> None:
    d = scenario(tmp_path)
    cols = {"arrival": "t", "class": {"column": "c", "map": {"a": 1}}}
    d["data"] = {"task_logs": [backlog_log("t.csv", cols)]}
    with pytest.raises(
        Exception, match="columns.class: map and transform do not apply here; use class_map"
    ):
        Scenario.model_validate(d)


# --------------------------------------------------------------------------- headers


def test_bom_and_padded_headers_match_padded_mapping_names(tmp_path: Path) -> None:
    write_csv(tmp_path, "t.csv", "\ufeff  t , Ad Class ,other\n-1,listing,x\n")
    d = scenario(tmp_path)
    d["data"] = {
        "task_logs": [backlog_log("t.csv", {"arrival": "\ufeff t", "class": " Ad Class  "})]
    }
    _, data = resolve(d)
    assert rows(data)[0].cls == "listing"
    f = data.report.files[0]
    assert f.columns_used == ("t", "Ad Class") and f.columns_ignored == ("other",)
    assert "Columns not used:\n  t.csv: other" in data.report.summary()


# --------------------------------------------------------------------------- rosters


ROSTER = 'id,acc,aht,m\na,0.9,60,"[""US""]"\nb,-,30,\nc,0.7,-,US|NO\n'


def roster_scenario(tmp_path: Path, **spec: Any) -> dict[str, Any]:
    write_csv(tmp_path, "r.csv", ROSTER)
    d = scenario(tmp_path, reviewers=[])
    cols = {"reviewer_id": "id", "accuracy": "acc", "mean_handling_time": "aht", "markets": "m"}
    d["data"] = {"rosters": [{"path": "r.csv", "columns": cols, "na_values": ["-"]} | spec]}
    return d


def test_roster_default_classes_all_and_dash_accuracy(tmp_path: Path) -> None:
    scen, data = resolve(roster_scenario(tmp_path, default_classes="all"))
    a, b, c = scen.reviewers
    assert a.classes == b.classes == ["ad_video", "listing"]
    assert b.default_accuracy.sensitivity == pytest.approx(0.8)  # mean of 0.9 and 0.7
    assert b.markets == "all" and c.markets == ["US", "NO"] and c.speed == {}
    summary = data.report.summary()
    assert (
        "classes not mapped for r.csv: all 3 reviewers get default_classes ['ad_video', 'listing']"
        in summary
    )
    assert (
        "1 blank accuracy (column 'acc') values in r.csv: set to the file's mean accuracy 0.8"
        in summary
    )


def test_roster_percent_accuracy_by_transform(tmp_path: Path) -> None:
    write_csv(tmp_path, "r.csv", "id,acc\na,93\nb,70\n")
    d = scenario(tmp_path, reviewers=[])
    acc = {"column": "acc", "transform": {"kind": "scale", "factor": 0.01}}
    d["data"] = {
        "rosters": [
            {
                "path": "r.csv",
                "columns": {"reviewer_id": "id", "accuracy": acc},
                "default_classes": ["listing"],
            }
        ]
    }
    scen, _ = resolve(d)
    assert [g.default_accuracy.sensitivity for g in scen.reviewers] == pytest.approx([0.93, 0.7])
    del acc["transform"]
    with pytest.raises(DataError, match="looks like a percentage.*factor: 0.01"):
        resolve(d)


def test_roster_columns_that_would_be_ignored_are_errors(tmp_path: Path) -> None:
    d = roster_scenario(tmp_path, default_classes="all")
    d["markets"] = ["all"]
    with pytest.raises(ConfigError, match=r"columns\.markets.*'m'.*would be ignored"):
        resolve(d)
    write_csv(tmp_path, "r2.csv", "id,acc_v\na,0.8\n")
    d = scenario(tmp_path, reviewers=[])
    cols = {"reviewer_id": "id", "accuracy_by_class": {"ad_video": "acc_v"}}
    d["data"] = {"rosters": [{"path": "r2.csv", "columns": cols, "default_classes": ["listing"]}]}
    with pytest.raises(
        ConfigError, match=r"accuracy_by_class\.ad_video.*handles class ad_video.*ignored"
    ):
        resolve(d)


# --------------------------------------------------------------------------- the report


def test_report_json_fingerprints_and_changed_data(tmp_path: Path) -> None:
    d = tasks_scenario(tmp_path, na_values=["-"])
    scen = Scenario.model_validate(d)
    rep = import_report(scen)
    assert json.loads(json.dumps(rep)) == rep
    (f,) = rep["files"]
    assert f["rows"] == 3 and f["columns_used"] == ["t", "cls", "mkt", "score"]
    assert rep["mappings"][0]["target"] == "ad_video"
    assert {d["column"] for d in rep["defaults"]} >= {"market (column 'mkt')", "label"}

    prints = data_fingerprints(scen)
    assert list(prints) == ["tasks.csv"] and prints["tasks.csv"] == f["sha256"]
    check_data_unchanged(scen, prints)
    (tmp_path / "tasks.csv").write_text(TASKS + "-1,listing,US,0.1\n")
    with pytest.raises(DataError, match=r"changed since this run started: tasks.csv \(sha256 "):
        check_data_unchanged(scen, prints)

    paths = write_import_report(scen, tmp_path / "out")
    assert [p.name for p in paths] == ["import_report.json", "import_report.txt"]
    saved = json.loads(paths[0].read_text())
    assert saved["files"][0]["rows"] == 4
    assert paths[1].read_text().startswith("Imported data:\n")
    assert import_report(Scenario.model_validate(scenario(tmp_path))) == {
        "files": [],
        "defaults": [],
        "mappings": [],
        "transforms": [],
        "warnings": [],
        "notes": [],
    }


def test_cli_prints_the_report_on_stderr_and_saves_it(tmp_path: Path) -> None:
    d = tasks_scenario(tmp_path, na_values=["-"])
    d.pop("base_dir")
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(d))
    runner = CliRunner()
    res = runner.invoke(app, ["simulate", str(path), "--json", "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    json.loads(res.stdout)  # stdout stays clean JSON
    assert res.stderr.startswith("Imported data:\n  task log 'snap' (tasks.csv): 3 rows read")
    assert (
        "Values mapped:\n  tasks.csv column 'cls' (class): 'Ad (video)' -> ad_video" in res.stderr
    )
    saved = json.loads((tmp_path / "run" / "import_report.json").read_text())
    assert len(saved["files"][0]["sha256"]) == 64
    assert (tmp_path / "run" / "import_report.txt").read_text() == res.stderr

    res = runner.invoke(app, ["simulate", str(path), "--no-import-report"])
    assert res.exit_code == 0 and res.stderr == ""
    # a scenario without data prints no report
    res = runner.invoke(app, ["simulate", str(path), "--json", "--set", "data={}"])
    assert res.exit_code == 0 and res.stderr == ""


def test_loaded_rows_table_from_parquet_lists(tmp_path: Path) -> None:
    df = pd.DataFrame({"id": ["a", "b"], "m": [["NO", "US"], None]})
    df.to_parquet(tmp_path / "r.parquet")
    d = scenario(tmp_path, reviewers=[])
    d["data"] = {
        "rosters": [
            {
                "path": "r.parquet",
                "columns": {"reviewer_id": "id", "markets": "m"},
                "default_classes": "all",
            }
        ]
    }
    scen, _ = resolve(d)
    assert [g.markets for g in scen.reviewers] == [["US", "NO"], "all"]
