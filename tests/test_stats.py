"""Tests for replication statistics in :mod:`dispatch.stats`.

Hand-computed cases use literal Student-t quantiles so that a wrong degrees
of freedom or a one-sided quantile is caught; coverage tests check that the
intervals mean what they claim on data with a known true mean.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import signal
from scipy import stats as sps

from dispatch.stats import batch_means_ci, mean_ci, paired_difference, paired_summary, summarise

T975_DF1 = 12.706204736174694
T975_DF2 = 4.302652729749462
T975_DF3 = 3.1824463052837078
T975_DF4 = 2.7764451051977987

# --------------------------------------------------------------------------- mean_ci


def test_mean_ci_hand_case() -> None:
    mean, low, high = mean_ci([1, 2, 3, 4, 5])
    half = T975_DF4 * math.sqrt(2.5) / math.sqrt(5)  # sample variance 2.5, n = 5
    assert mean == 3.0
    assert low == pytest.approx(3.0 - half, rel=1e-12)
    assert high == pytest.approx(3.0 + half, rel=1e-12)


def test_mean_ci_confidence_level_changes_width() -> None:
    _, low95, high95 = mean_ci([1, 2, 3, 4, 5], confidence=0.95)
    _, low80, high80 = mean_ci([1, 2, 3, 4, 5], confidence=0.80)
    assert (high80 - low80) < (high95 - low95)
    with pytest.raises(ValueError):
        mean_ci([1, 2], confidence=95)


def test_mean_ci_degenerate_sizes() -> None:
    mean, low, high = mean_ci([4.2])
    assert mean == 4.2 and math.isnan(low) and math.isnan(high)
    assert all(math.isnan(v) for v in mean_ci([]))
    assert mean_ci([2.0, 2.0, 2.0]) == (2.0, 2.0, 2.0)
    assert math.isnan(mean_ci([1.0, float("nan"), 3.0])[0])  # NaN is not silently dropped


def test_mean_ci_coverage_on_normal_samples() -> None:
    rng = np.random.default_rng(123)
    data = rng.normal(10.0, 3.0, size=(4000, 5))
    covered = [low <= 10.0 <= high for _, low, high in map(mean_ci, data)]
    assert 0.935 <= np.mean(covered) <= 0.965


# --------------------------------------------------------------------------- paired


def test_paired_difference_hand_case() -> None:
    x = [10.0, 12.0, 9.0, 11.0]
    y = [8.0, 11.0, 9.0, 8.0]
    # d = [2, 1, 0, 3]: mean 1.5, sample variance 5/3, t = 1.5 / sqrt(5/3 / 4).
    res = paired_difference(x, y)
    half = T975_DF3 * math.sqrt(5 / 3) / 2
    assert res["n"] == 4
    assert res["mean_diff"] == pytest.approx(1.5)
    assert res["lower"] == pytest.approx(1.5 - half, rel=1e-12)
    assert res["upper"] == pytest.approx(1.5 + half, rel=1e-12)
    assert res["relative"] == pytest.approx(1.5 / 9.0)
    assert res["p_value"] == pytest.approx(0.10272807885839899, rel=1e-9)
    assert res["p_value"] == pytest.approx(sps.ttest_rel(x, y).pvalue, rel=1e-9)


def test_paired_difference_is_tighter_than_unpaired_under_crn() -> None:
    # Shared noise (common random numbers) cancels in the paired differences.
    rng = np.random.default_rng(5)
    common = rng.normal(0.0, 5.0, size=30)
    y = 20.0 + common + rng.normal(0.0, 0.2, size=30)
    x = 19.5 + common + rng.normal(0.0, 0.2, size=30)
    res = paired_difference(x, y)
    assert res["lower"] < -0.5 < res["upper"]
    assert res["upper"] < 0.0 and res["p_value"] < 1e-6
    _, low_x, high_x = mean_ci(x)
    assert (res["upper"] - res["lower"]) < 0.1 * (high_x - low_x)


def test_paired_difference_degenerate_cases() -> None:
    same = paired_difference([1.0, 2.0, 3.0], [1.0, 2.0, 3.0])
    assert same["mean_diff"] == 0.0 and same["p_value"] == 1.0
    shifted = paired_difference([2.0, 3.0, 4.0], [1.0, 2.0, 3.0])
    assert shifted["p_value"] == 0.0 and shifted["lower"] == shifted["upper"] == 1.0
    single = paired_difference([2.0], [1.0])
    assert single["n"] == 1 and math.isnan(single["p_value"]) and math.isnan(single["lower"])
    assert math.isnan(paired_difference([1.0, 2.0], [0.0, 0.0])["relative"])
    with pytest.raises(ValueError):
        paired_difference([1.0, 2.0], [1.0])


# --------------------------------------------------------------------------- batch means


def test_batch_means_covers_true_mean_on_iid_normal() -> None:
    rng = np.random.default_rng(2024)
    mean, low, high = batch_means_ci(rng.normal(5.0, 2.0, size=20_000), n_batches=20)
    assert low <= 5.0 <= high
    assert mean == pytest.approx(5.0, abs=0.1)
    assert high - low < 0.2


def test_batch_means_hand_case_and_remainder() -> None:
    # 11 samples, 2 batches of 5: the first sample (nearest warm-up) is dropped.
    samples = [100.0, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3]
    mean, low, high = batch_means_ci(samples, n_batches=2)
    half = T975_DF1 * math.sqrt(2.0) / math.sqrt(2)  # batch means 1 and 3
    assert mean == pytest.approx(2.0)
    assert (low, high) == pytest.approx((2.0 - half, 2.0 + half), rel=1e-12)
    with pytest.raises(ValueError):
        batch_means_ci([1.0, 2.0], n_batches=3)
    with pytest.raises(ValueError):
        batch_means_ci([1.0, 2.0], n_batches=1)


def test_batch_means_coverage_on_autocorrelated_series() -> None:
    # AR(1) with phi = 0.9 mimics correlated successive waiting times.  Batch
    # means should keep ~95% coverage; a naive iid interval should not.
    rng = np.random.default_rng(99)
    phi, true_mean, reps, n = 0.9, 3.0, 300, 10_000
    noise = rng.normal(size=(reps, n))
    series = true_mean + signal.lfilter([1.0], [1.0, -phi], noise, axis=1)
    series = series[:, 200:]  # drop the start-up transient from 0
    batch_cov = np.mean([lo <= true_mean <= hi for _, lo, hi in map(batch_means_ci, series)])
    naive_cov = np.mean([lo <= true_mean <= hi for _, lo, hi in map(mean_ci, series)])
    assert 0.90 <= batch_cov <= 0.99
    assert naive_cov < 0.6


# --------------------------------------------------------------------------- data frames


@pytest.fixture
def runs() -> pd.DataFrame:
    """Two scenarios x three policies x three seeds, with one missing value."""
    rows = []
    waits = {"fifo": [10.0, 12.0, 11.0], "edf": [9.0, 11.0, 9.5], "cmu": [8.0, 12.0, 10.0]}
    for scenario, scale in (("low", 1.0), ("high", 2.0)):
        for policy, values in waits.items():
            for seed, w in enumerate(values):
                rows.append(
                    {
                        "scenario": scenario,
                        "policy": policy,
                        "seed": seed,
                        "wait": scale * w,
                        "late": scale * w / 10.0,
                    }
                )
    df = pd.DataFrame(rows)
    mask = (df.scenario == "low") & (df.policy == "cmu") & (df.seed == 2)
    df.loc[mask, "late"] = np.nan
    return df


def test_summarise_tidy_output(runs: pd.DataFrame) -> None:
    out = summarise(runs, ["scenario", "policy"], ["wait", "late"])
    assert list(out.columns) == [
        "scenario",
        "policy",
        "metric",
        "mean",
        "ci_low",
        "ci_high",
        "half_width",
        "n",
    ]
    assert len(out) == 2 * 3 * 2
    row = out[(out.scenario == "low") & (out.policy == "fifo") & (out.metric == "wait")].iloc[0]
    sd = math.sqrt(((10 - 11) ** 2 + (12 - 11) ** 2 + 0) / 2)  # = 1
    half = T975_DF2 * sd / math.sqrt(3)
    assert row["mean"] == pytest.approx(11.0)
    assert row["half_width"] == pytest.approx(half, rel=1e-12)
    assert row["ci_low"] == pytest.approx(11.0 - half, rel=1e-12)
    assert row["n"] == 3
    nan_row = out[(out.scenario == "low") & (out.policy == "cmu") & (out.metric == "late")].iloc[0]
    assert nan_row["n"] == 2
    assert nan_row["mean"] == pytest.approx(1.0)  # (0.8 + 1.2) / 2, NaN seed dropped


def test_summarise_without_groups(runs: pd.DataFrame) -> None:
    out = summarise(runs, [], ["wait"])
    assert list(out.columns) == ["metric", "mean", "ci_low", "ci_high", "half_width", "n"]
    assert out.iloc[0]["n"] == len(runs)
    assert out.iloc[0]["mean"] == pytest.approx(runs["wait"].mean())


def test_paired_summary_matches_paired_difference(runs: pd.DataFrame) -> None:
    out = paired_summary(runs, "policy", "fifo", "seed", ["wait", "late"], group_cols=["scenario"])
    assert list(out.columns) == [
        "scenario",
        "policy",
        "metric",
        "mean_diff",
        "ci_low",
        "ci_high",
        "relative",
        "p_value",
        "n",
    ]
    assert set(out.policy) == {"edf", "cmu"}
    assert len(out) == 2 * 2 * 2
    row = out[(out.scenario == "high") & (out.policy == "edf") & (out.metric == "wait")].iloc[0]
    expected = paired_difference([18.0, 22.0, 19.0], [20.0, 24.0, 22.0])
    assert row["mean_diff"] == pytest.approx(expected["mean_diff"])
    assert row["mean_diff"] == pytest.approx(-7.0 / 3.0)
    assert row["ci_low"] == pytest.approx(expected["lower"])
    assert row["ci_high"] == pytest.approx(expected["upper"])
    assert row["p_value"] == pytest.approx(expected["p_value"])
    assert row["relative"] == pytest.approx((-7.0 / 3.0) / 22.0)
    nan_row = out[(out.scenario == "low") & (out.policy == "cmu") & (out.metric == "late")].iloc[0]
    assert nan_row["n"] == 2


def test_paired_summary_pairs_on_seed_not_row_order(runs: pd.DataFrame) -> None:
    shuffled = runs.sample(frac=1.0, random_state=0)
    a = paired_summary(runs, "policy", "fifo", "seed", ["wait"], group_cols=["scenario"])
    b = paired_summary(shuffled, "policy", "fifo", "seed", ["wait"], group_cols=["scenario"])
    key = ["scenario", "policy", "metric"]
    a = a.sort_values(key).reset_index(drop=True)
    b = b.sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(a, b)


def test_paired_summary_drops_unmatched_seeds(runs: pd.DataFrame) -> None:
    extra = pd.DataFrame(
        [{"scenario": "low", "policy": "edf", "seed": 99, "wait": 1e6, "late": 1e6}]
    )
    out = paired_summary(pd.concat([runs, extra]), "policy", "fifo", "seed", ["wait"], ["scenario"])
    row = out[(out.scenario == "low") & (out.policy == "edf")].iloc[0]
    assert row["n"] == 3
    assert row["mean_diff"] == pytest.approx((-1.0 - 1.0 - 1.5) / 3)


def test_paired_summary_errors(runs: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="baseline"):
        paired_summary(runs, "policy", "random", "seed", ["wait"], ["scenario"])
    with pytest.raises(ValueError, match="duplicate"):
        paired_summary(runs, "policy", "fifo", "seed", ["wait"])  # scenarios collide
    lonely = pd.DataFrame(
        [{"scenario": "new", "policy": "edf", "seed": 0, "wait": 1.0, "late": 0.1}]
    )
    with pytest.raises(ValueError, match="no seed"):
        paired_summary(pd.concat([runs, lonely]), "policy", "fifo", "seed", ["wait"], ["scenario"])
