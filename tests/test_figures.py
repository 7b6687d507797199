"""Figures: every plot of a run is a non-empty PNG; colours follow the policy label."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dispatch import figures
from dispatch.runner import load_cells, run_experiment
from tests.conftest import scenario_path

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    cfg = {
        "name": "fig",
        "scenarios": [{"path": str(scenario_path("ecommerce_day")), "overrides": {"horizon": 180}}],
        "policies": [{"name": "fifo"}, {"name": "priority"}],
        "seeds": [0, 1],
        "metrics": ["objective", "mean_wait", "sla_attainment"],
        "outputs": {"figures": True, "report": True},
    }
    return run_experiment(
        cfg, out=tmp_path_factory.mktemp("fig") / "run", workers=1, progress=False
    )


def is_png(path: Path) -> bool:
    data = path.read_bytes()
    return len(data) > 1000 and data.startswith(PNG_MAGIC)


def test_run_draws_every_figure_and_the_report_embeds_them(run_dir):
    pngs = sorted(p.name for p in (run_dir / "figures").glob("*.png"))
    kinds = ["backlog", "bars", "harm", "pareto", "utilisation", "wait_cdf"]
    assert pngs == [f"{k}_ecommerce_day.png" for k in kinds]
    assert all(is_png(run_dir / "figures" / p) for p in pngs)
    report = (run_dir / "report.md").read_text()
    for p in pngs:
        assert f"(figures/{p})" in report
    assert not list((run_dir / "figures").glob(".*"))  # no temporary files left


def test_each_function_returns_its_paths(run_dir, tmp_path):
    cells = load_cells(run_dir)
    summary = pd.read_csv(run_dir / "summary.csv")
    col = figures.policy_colours(["fifo", "priority"])
    series = figures.series_frame(cells)
    drawn = [
        *figures.metric_bars(summary, tmp_path, col),
        *figures.wait_cdfs(figures.cdf_frame(cells), tmp_path, col),
        *figures.backlog(series, tmp_path, col),
        *figures.harm_over_day(series, tmp_path, col),
        *figures.utilisation_by_group(figures.group_frame(cells), tmp_path, col),
    ]
    assert len(drawn) == 5 and all(is_png(p) for p in drawn)


def test_tidy_frames_average_over_seeds(run_dir):
    cells = load_cells(run_dir)
    cdf = figures.cdf_frame(cells)
    assert set(cdf.columns) == {"scenario", "policy", "cls", "wait", "share", "sla"}
    assert cdf["share"].between(0, 1).all()
    # Non-decreasing in the wait within each curve.
    for _, d in cdf.groupby(["policy", "cls"]):
        assert d["share"].is_monotonic_increasing
    series = figures.series_frame(cells)
    harm = series[(series["series"] == "harm_cum") & (series["policy"] == "fifo")]
    per_seed = [c["timeseries"]["harm_cum"] for c in cells if c["policy"] == "fifo"]
    expected = [sum(v) / len(v) for v in zip(*per_seed, strict=True)]
    assert harm["value"].tolist() == pytest.approx(expected)


def test_colours_are_keyed_by_label_and_stable():
    a = figures.policy_colours(["fifo", "priority", "cmu"])
    b = figures.policy_colours(["fifo", "priority", "cmu"])
    assert a == b and len(set(a.values())) == 3
    many = figures.policy_colours([f"p{i}" for i in range(14)])
    assert len(set(many.values())) == 14


def test_pareto_front_by_hand():
    # (throughput, quality): c dominates a; b and c trade off; d is dominated by c.
    x = [10.0, 8.0, 12.0, 11.0]
    y = [0.90, 0.97, 0.92, 0.91]
    assert figures.pareto_front(x, y) == [1, 2]  # sorted by throughput
    assert figures.pareto_front([1.0, 1.0], [0.5, 0.5]) == [0, 1]  # ties: both stay


def test_pareto_figure_on_a_synthetic_summary(tmp_path):
    rows = []
    for pol, (tp, acc) in {"a": (10, 0.9), "b": (8, 0.97), "c": (12, 0.92)}.items():
        for metric, v in (("throughput_per_hour", tp), ("accuracy", acc), ("recall", acc)):
            rows.append(("s", pol, metric, v, v * 0.99, v * 1.01, v * 0.01, 3))
    cols = ["scenario", "policy", "metric", "mean", "ci_low", "ci_high", "half_width", "n"]
    (path,) = figures.pareto(pd.DataFrame(rows, columns=cols), tmp_path)
    assert path.name == "pareto_s.png" and is_png(path)
