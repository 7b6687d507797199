"""Tests of ``dispatch calibrate``: estimators against closed forms, a real-export config,
and the round trip simulate -> export -> calibrate -> recover the scenario's parameters."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from typer.testing import CliRunner

from dispatch.calibrate import calibrate, load_spec, run_calibration
from dispatch.calibrate.arrivals import exposure
from dispatch.calibrate.handling import choose, fit_families
from dispatch.calibrate.outcomes import Rate, fit_patience, peak_in_service
from dispatch.cli import app
from dispatch.errors import ConfigError, DataError
from dispatch.scenario import load_scenario, scenario_from_dict
from dispatch.simulator import simulate

# --------------------------------------------------------------------------- estimators


def test_exposure_counts_window_minutes_per_slot() -> None:
    window = (360.0, 2 * 1440.0 + 720.0 + 30.0)  # Mon 06:00 to Wed 12:30
    got = exposure(window, 60.0, 1440.0)
    minutes = np.arange(window[0], window[1])
    want = np.bincount((minutes % 1440 // 60).astype(int), minlength=24).astype(float)
    np.testing.assert_allclose(got, want)
    assert got[6] == 180 and got[12] == 150 and got[20] == 120 and got[3] == 120


@pytest.mark.parametrize(
    ("dist", "family", "mean", "cv"),
    [
        (stats.expon(scale=2.0), "exponential", 2.0, 1.0),
        (
            stats.lognorm(s=np.sqrt(np.log1p(0.5**2)), scale=2.0 / np.sqrt(1 + 0.5**2)),
            "lognormal",
            2.0,
            0.5,
        ),
        (stats.gamma(1 / 0.4**2, scale=3.0 * 0.4**2), "gamma", 3.0, 0.4),
    ],
)
def test_family_fits_recover_parameters_and_pick_the_family(dist, family, mean, cv) -> None:
    x = dist.rvs(size=20000, random_state=np.random.default_rng(5))
    fits = fit_families(x)
    by = {f.family: f for f in fits}
    assert by[family].mean == pytest.approx(mean, rel=0.03)
    assert by[family].cv == pytest.approx(cv, rel=0.05)
    for criterion in ("aic", "ks"):
        best = choose(fits, criterion)
        if family == "exponential":  # the gamma family nests it: either fits, with cv ~ 1
            assert best.family in ("exponential", "gamma") and best.cv == pytest.approx(1, rel=0.05)
        else:
            assert best.family == family
    # the exponential fit's mean is the sample mean exactly
    assert by["exponential"].mean == pytest.approx(float(np.mean(x)))


def test_censored_patience_is_time_at_risk_over_expiries() -> None:
    frame = pd.DataFrame(
        {
            "cls": ["a"] * 5 + ["b"],
            "arrival": [0.0, 1.0, 2.0, 3.0, 4.0, 0.0],
            "start": [2.0, np.nan, 2.5, np.nan, 10.0, 1.0],
            "end": [3.0, 7.0, 3.0, 4.0, 11.0, 2.0],
            "expired": [False, True, False, True, False, False],
        }
    )
    (fit,) = fit_patience(frame, ["a", "b"]).values()  # b has no expiries: no fit
    # waits 2, 0.5, 6 (censored) + times to expiry 6, 1 -> 15.5 at risk, 2 expiries
    assert (fit.cls, fit.expired, fit.time_at_risk, fit.mean) == ("a", 2, 15.5, 7.75)
    assert fit.low < 7.75 < fit.high


def test_jeffreys_rate_and_peak_in_service() -> None:
    r = Rate(9, 10)
    assert r.estimate == pytest.approx(9.5 / 11)
    lo, hi = r.interval
    assert lo == pytest.approx(stats.beta(9.5, 1.5).ppf(0.025)) and hi < 1
    frame = pd.DataFrame(
        {"start": [0.0, 1.0, 2.0, 5.0], "end": [3.0, 2.0, 4.0, 6.0], "expired": [False] * 4}
    )
    assert peak_in_service(frame) == 2  # the task ending at 2 frees its place for the one at 2


# --------------------------------------------------------------------------- a real export


EXPORT = """\ufeff queue ,site,created,picked,decided,status,agent,team,action,qa
Ad (video),US,2024-05-06 00:10:00,2024-05-06 00:11:00,2024-05-06 00:13:00,done,a1,Team A,enforce,violating
Ad (video),UK,2024-05-06 00:20:00,2024-05-06 00:20:30,2024-05-06 00:22:30,done,a1,Team A,keep,-
Ad (video),US,2024-05-06 01:05:00,-,2024-05-06 01:25:00,expired,-,-,-,-
Listing,US,2024-05-06 01:30:00,2024-05-06 01:30:00,2024-05-06 01:31:00,done,b1,Team B,keep,clean
Listing,US,2024-05-06 23:50:00,2024-05-06 23:55:00,2024-05-06 23:58:00,done,b2,Team B,enforce,clean
Listing,UK,2024-05-07 00:40:00,2024-05-07 00:41:00,2024-05-07 00:43:00,done,b2,Team B,keep,violating
"""


def export_config(tmp_path: Path, **extra) -> Path:
    (tmp_path / "log.csv").write_text(EXPORT, encoding="utf-8")
    cfg = {
        "name": "ops",
        "task_log": {
            "path": "log.csv",
            "na_values": ["-"],
            "market_map": {"UK": "GB"},
            "columns": {
                "arrival": "created",
                "class": "queue",
                "market": "site",
                "start": "picked",
                "end": "decided",
                "outcome": "status",
                "reviewer": "agent",
                "group": "team",
                "decision": "action",
                "truth": "qa",
            },
            "positive_values": ["enforce"],
        },
        "min_samples": 2,
    } | extra
    path = tmp_path / "calib.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_calibrating_a_real_export_from_a_config(tmp_path: Path) -> None:
    cal = calibrate(load_spec(export_config(tmp_path)))
    obs = cal.obs
    assert obs.classes == ["ad_video", "listing"] and obs.markets == ["GB", "US"]
    assert obs.minute0.startswith("minute 0 = 2024-05-06 00:00:00+00:00 (midnight")
    assert obs.window == (0.0, 1500.0)  # 00:00 Monday to 01:00 Tuesday, whole slots
    frame = obs.frame
    assert frame["arrival"].tolist() == [10.0, 20.0, 65.0, 90.0, 1430.0, 1480.0]
    assert frame["handling"].tolist()[:2] == [2.0, 2.0] and np.isnan(frame["handling"][2])

    prof = cal.profiles
    assert prof.exposure[0] == 120.0 and prof.exposure[1] == 60.0  # 00:00 seen twice
    ad = prof.classes["ad_video"]
    assert ad.rates[0] == pytest.approx(2 / 120.0) and ad.rates[1] == pytest.approx(1 / 60.0)
    assert ad.market_mix == pytest.approx({"GB": 1 / 3, "US": 2 / 3})
    assert cal.patience["ad_video"].mean == pytest.approx((1 + 0.5 + 20) / 1)
    assert cal.handling.speeds == {"Team A": {"ad_video": 1.0}, "Team B": {"listing": 1.0}}

    acc = {(f.group, f.cls): f for f in cal.accuracy}
    b = acc[("Team B", "(all)")]  # QA'd: clean kept, clean enforced, violating kept
    assert (b.sensitivity.k, b.sensitivity.n, b.specificity.k, b.specificity.n) == (0, 1, 1, 2)
    a = acc[("Team A", "(all)")]  # the row with qa '-' is not QA'd
    assert (a.sensitivity.n, a.specificity.n) == (1, 0)

    groups = {g["name"]: g for g in cal.scenario["reviewers"]}
    assert list(groups) == ["team_a", "team_b"]  # safe names of 'Team A', 'Team B'
    assert groups["team_a"]["count"] == 1 and groups["team_b"]["count"] == 2
    assert groups["team_a"]["classes"] == ["ad_video"] and groups["team_b"]["classes"] == [
        "listing"
    ]
    assert groups["team_a"]["markets"] == "all" and groups["team_b"]["markets"] == "all"
    assert "default_accuracy" in groups["team_b"] and "default_accuracy" not in groups["team_a"]
    mappings = {m.source: m.target for m in obs.report.mappings}
    assert mappings == {"Ad (video)": "ad_video", "Listing": "listing", "UK": "GB"}
    scen = scenario_from_dict(cal.scenario)
    assert [c.name for c in scen.classes] == ["ad_video", "listing"]


def test_weekly_profile_when_the_log_spans_a_week(tmp_path: Path) -> None:
    days = pd.date_range("2024-05-01", periods=9 * 24, freq="h", tz="UTC")  # a Wednesday
    rows = [
        (t + pd.Timedelta(minutes=5 * (k % 3)), "a")
        for t in days
        for k in range(3 if t.day_of_week < 5 else 1)
    ]
    df = pd.DataFrame(rows, columns=["t", "c"])
    df.to_parquet(tmp_path / "log.parquet")
    cfg = {"task_log": {"path": "log.parquet", "columns": {"arrival": "t", "class": "c"}}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    cal = calibrate(load_spec(tmp_path / "c.yaml"))
    assert cal.obs.weekly and cal.obs.minute0.endswith("(the Monday before the first arrival)")
    rates = cal.profiles.classes["a"].rates * 60
    assert len(rates) == 168
    assert rates[2 * 24 + 10] == pytest.approx(3.0)  # Wednesday 10:00: 3 per hour
    assert rates[5 * 24 + 10] == pytest.approx(1.0)  # Saturday 10:00: 1 per hour
    assert rates[0] == pytest.approx(3.0)  # Monday 00:00, seen once (May 6)


def test_config_and_source_errors_are_one_line(tmp_path: Path) -> None:
    path = export_config(tmp_path, slot=7)
    with pytest.raises(ConfigError, match="slot must divide a day"):
        load_spec(path)
    pd.DataFrame({"x": [1]}).to_parquet(tmp_path / "other.parquet")
    with pytest.raises(
        ConfigError, match=r"not a task log of dispatch simulate --records.*'class'"
    ):
        load_spec(tmp_path / "other.parquet")
    bad = EXPORT.replace("2024-05-06 01:30:00,2024", "yesterday,2024")
    (tmp_path / "log.csv").write_text(bad)
    cfg = yaml.safe_load(path.read_text()) | {"slot": 60}
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(
        DataError, match=r"row 4, column 'created': unparsable timestamp 'yesterday'"
    ):
        calibrate(load_spec(path))


# --------------------------------------------------------------------------- round trip

ROUND_TRIP = {
    "name": "round_trip",
    "horizon": 1440.0,
    "markets": ["US", "UK"],
    "classes": [
        {
            "name": "listing",
            "arrivals": {
                "kind": "profile",
                "slot": 60.0,
                "rates": [0.4, 0.3, 0.3, 0.3, 0.4, 0.6, 0.9, 1.2, 1.4, 1.5, 1.5, 1.4]
                + [1.3, 1.3, 1.4, 1.5, 1.5, 1.4, 1.2, 1.0, 0.9, 0.8, 0.6, 0.5],
            },
            "handling": {"kind": "lognormal", "mean": 2.0, "cv": 0.5},
            "market_mix": {"US": 0.7, "UK": 0.3},
            "harm": {"risk": {"kind": "beta", "a": 2.0, "b": 5.0}},
        },
        {
            "name": "stream",
            "arrivals": {
                "kind": "profile",
                "slot": 60.0,
                "rates": [0.2] * 8 + [0.3] * 8 + [0.5] * 8,
            },
            "handling": {"kind": "gamma", "mean": 4.0, "cv": 0.8},
            "patience": {"kind": "exponential", "mean": 5.0},
            "harm": {"risk": {"kind": "beta", "a": 2.0, "b": 5.0}},
        },
    ],
    "reviewers": [
        {
            "name": "fast",
            "count": 3,
            "classes": ["listing"],
            "default_accuracy": {"sensitivity": 0.9, "specificity": 0.95},
        },
        {
            "name": "slow",
            "count": 4,
            "classes": ["listing"],
            "speed": {"listing": 0.5},
            "default_accuracy": {"sensitivity": 0.8, "specificity": 0.99},
        },
        {"name": "live", "count": 2, "classes": ["stream"]},
    ],
}


def round_trip(tmp_path: Path, days: int, seed: int):
    d = json.loads(json.dumps(ROUND_TRIP))
    d["horizon"] = 1440.0 * days
    rec = simulate(scenario_from_dict(d), "fifo", seed=seed, record_tasks=True).records
    path = tmp_path / "tasks.parquet"
    rec.to_parquet(path)
    cal = run_calibration(path, tmp_path / "cal", {"profile": "daily"})
    return cal, rec


Z = 4.0  # every check allows 4 standard errors: a false alarm is a 1-in-15,000 event


def assert_recovered(cal, days: int) -> None:
    """Each estimate within Z standard errors of the scenario's value (errors from the
    sample sizes the log gave), and the profile passes a chi-square test against the truth."""
    expo = cal.profiles.exposure
    assert expo.sum() == pytest.approx(1440.0 * days)
    for spec in ROUND_TRIP["classes"]:
        c = spec["name"]
        want = np.array(spec["arrivals"]["rates"]) * expo
        got = cal.profiles.classes[c].counts
        chi2 = float(np.sum((got - want) ** 2 / want))
        assert stats.chi2.sf(chi2, len(want)) > 1e-4, (c, chi2)
        fit = cal.handling.classes[c]
        h = spec["handling"]
        se_mean = h["cv"] / np.sqrt(fit.n)
        assert fit.chosen.mean == pytest.approx(h["mean"], rel=Z * se_mean), c
        assert fit.chosen.cv == pytest.approx(
            h["cv"], rel=Z * np.sqrt(1.5 / fit.n) * (1 + h["cv"])
        ), c
    mix = cal.profiles.classes["listing"].market_mix
    n_listing = cal.profiles.classes["listing"].total
    assert mix["US"] == pytest.approx(0.7, abs=Z * np.sqrt(0.21 / n_listing))
    assert cal.handling.reference["listing"] == "fast"
    by_group = {(g.cls, g.group): g.n for g in cal.handling.groups}
    se_speed = 0.5 * np.sqrt(1 / by_group[("listing", "slow")] + 1 / by_group[("listing", "fast")])
    assert cal.handling.speeds["slow"]["listing"] == pytest.approx(0.5, rel=Z * se_speed)
    pat = cal.patience["stream"]
    assert pat.mean == pytest.approx(5.0, rel=Z / np.sqrt(pat.expired))
    assert pat.low < 5.0 < pat.high or days == 1  # the 95% interval (1 day: may miss)
    acc = {(f.group, f.cls): f for f in cal.accuracy}
    sens = acc[("fast", "(all)")].sensitivity
    assert sens.estimate == pytest.approx(0.9, abs=Z * np.sqrt(0.09 / sens.n))
    spec_ = acc[("slow", "(all)")].specificity
    assert spec_.estimate == pytest.approx(0.99, abs=Z * np.sqrt(0.0099 / spec_.n) + 0.5 / spec_.n)


def test_round_trip_recovers_profile_and_handling(tmp_path: Path) -> None:
    cal, rec = round_trip(tmp_path, days=1, seed=3)
    assert_recovered(cal, days=1)

    out = tmp_path / "cal"
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "accuracy_by_reviewer.csv",
        "accuracy_fit.csv",
        "arrival_profile.csv",
        "calibration.json",
        "figures",
        "handling_fit.csv",
        "patience_fit.csv",
        "report.md",
        "scenario.yaml",
    ]
    assert sorted(p.name for p in (out / "figures").iterdir()) == [
        "arrival_profile.png",
        "handling_times.png",
    ]
    report = (out / "report.md").read_text()
    assert "chosen by the lowest AIC" in report and "## To edit" in report
    fit_table = pd.read_csv(out / "handling_fit.csv")
    assert set(fit_table["family"]) == {"exponential", "lognormal", "gamma"}
    assert fit_table.groupby(["class", "group"])["chosen"].sum().eq(1).all()

    # the written scenario is plain YAML that simulates on new seeds
    scen = load_scenario(out / "scenario.yaml")
    groups = {g.name: g for g in scen.reviewers}
    assert groups["fast"].count == 3 and groups["slow"].count == 4 and groups["live"].count == 2
    assert groups["slow"].speed["listing"] == pytest.approx(
        cal.handling.speeds["slow"]["listing"], rel=1e-5
    )
    again = simulate(scen, "fifo", seed=11)
    assert again.overall["arrivals"] == pytest.approx(len(rec), rel=0.1)


@pytest.mark.slow
def test_round_trip_over_a_week_is_tighter(tmp_path: Path) -> None:
    cal, _ = round_trip(tmp_path, days=7, seed=4)
    assert_recovered(cal, days=7)
    for spec in ROUND_TRIP["classes"]:  # and within fixed bounds a week of data meets
        c, h = spec["name"], spec["handling"]
        got = cal.profiles.classes[c].rates
        want = np.array(spec["arrivals"]["rates"])
        assert np.mean(np.abs(got - want) / want) < 0.15, c
        assert cal.handling.classes[c].chosen.mean == pytest.approx(h["mean"], rel=0.04), c
        assert cal.handling.classes[c].chosen.cv == pytest.approx(h["cv"], rel=0.08), c
    assert cal.handling.speeds["slow"]["listing"] == pytest.approx(0.5, rel=0.08)
    assert cal.patience["stream"].mean == pytest.approx(5.0, rel=0.15)
    assert cal.handling.classes["listing"].chosen.family == "lognormal"
    assert cal.handling.classes["stream"].chosen.family == "gamma"


# --------------------------------------------------------------------------- CLI and output


def test_cli_calibrate_writes_atomically_and_refuses_to_overwrite(
    tmp_path: Path, monkeypatch
) -> None:
    d = json.loads(json.dumps(ROUND_TRIP)) | {"horizon": 480.0}
    rec = simulate(scenario_from_dict(d), "fifo", seed=1, record_tasks=True).records
    rec.to_parquet(tmp_path / "tasks.parquet")
    runner = CliRunner()
    out = tmp_path / "cal"
    res = runner.invoke(
        app, ["calibrate", str(tmp_path / "tasks.parquet"), "--out", str(out), "--name", "mine"]
    )
    assert res.exit_code == 0, res.output
    assert "listing:" in res.stdout and "wrote" in res.stdout
    assert res.stderr.startswith("Imported data:")
    assert yaml.safe_load((out / "scenario.yaml").read_text())["name"] == "mine"

    res = runner.invoke(app, ["calibrate", str(tmp_path / "tasks.parquet"), "--out", str(out)])
    assert (
        res.exit_code == 2
        and "exists and is not empty" in res.stderr
        and "--overwrite" in res.stderr
    )

    import dispatch.calibrate.write as write

    def boom(cal):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(write, "handling_times", boom)
    with pytest.raises(RuntimeError):
        run_calibration(tmp_path / "tasks.parquet", out, {"name": "second"}, overwrite=True)
    assert yaml.safe_load((out / "scenario.yaml").read_text())["name"] == "mine"  # untouched
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []

    monkeypatch.undo()
    res = runner.invoke(
        app,
        [
            "calibrate",
            str(tmp_path / "tasks.parquet"),
            "--out",
            str(out),
            "--overwrite",
            "--slot",
            "30",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (
        yaml.safe_load((out / "scenario.yaml").read_text())["classes"][0]["arrivals"]["slot"] == 30
    )
    res = runner.invoke(
        app,
        [
            "calibrate",
            str(tmp_path / "tasks.parquet"),
            "--out",
            str(tmp_path / "x"),
            "--criterion",
            "bic",
        ],
    )
    assert res.exit_code == 2 and "criterion" in res.stderr


def test_a_roster_gives_the_written_scenario_its_reviewers(tmp_path: Path) -> None:
    (tmp_path / "people").mkdir()
    (tmp_path / "people" / "roster.csv").write_text("id,sites\na1,US|GB\nb1,US\nb2,\n")
    cfg = yaml.safe_load(export_config(tmp_path).read_text())
    cfg["roster"] = {
        "path": "people/roster.csv",
        "columns": {"reviewer_id": "id", "markets": "sites"},
        "default_classes": "all",
    }
    (tmp_path / "calib.yaml").write_text(yaml.safe_dump(cfg))
    out = tmp_path / "runs" / "fit"
    run_calibration(tmp_path / "calib.yaml", out)
    written = yaml.safe_load((out / "scenario.yaml").read_text())
    assert written["reviewers"] == []
    assert written["data"]["rosters"][0]["path"] == "../../people/roster.csv"
    scen = load_scenario(out / "scenario.yaml")
    result = simulate(scen, "fifo", seed=0)
    assert set(result.per_group) == {"roster_a1", "roster_b1", "roster_b2"}
    assert "team_a" not in (out / "scenario.yaml").read_text()  # no fitted groups as well
