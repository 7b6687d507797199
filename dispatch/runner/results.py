"""Result tables of a run: one row per cell, mean and CI per policy, paired differences."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dispatch.experiment import ExperimentPlan
from dispatch.runner.execution import score_cell

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ID_COLUMNS", "load_results", "paired_results", "results_frame", "summarise_results"]

ID_COLUMNS = ["scenario", "policy", "seed"]


def results_frame(plan: ExperimentPlan, cells: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: ids, every overall metric, ``class.metric``, ``group.G.metric``.

    ``objective`` (overall and per class) is recomputed with the experiment's weights.
    Rows are in grid order, so the table does not depend on the order cells finished in.
    """
    import pandas as pd

    weights = plan.config.objective
    rows = []
    for cell in cells:
        row: dict[str, Any] = {
            "scenario": cell["scenario"],
            "policy": cell["policy"],
            "seed": int(cell["seed"]),
        }
        scored = score_cell(
            {"overall": dict(cell["overall"]), "per_class": _copy(cell["per_class"])}, weights
        )
        row.update(scored["overall"])
        for cls, m in scored["per_class"].items():
            row.update({f"{cls}.{k}": v for k, v in m.items()})
        for grp, m in cell["per_group"].items():
            row.update({f"group.{grp}.{k}": v for k, v in m.items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = _ordered(df, plan, extra=["seed"]).reset_index(drop=True)
    metric_cols = [c for c in df.columns if c not in ID_COLUMNS]
    df[metric_cols] = df[metric_cols].astype(float)
    return df


def _copy(per_class: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
    return {cls: dict(m) for cls, m in per_class.items()}


def _ordered(df: pd.DataFrame, plan: ExperimentPlan, extra: list[str] = ()) -> pd.DataFrame:
    """Sort a summary-like frame by scenario and policy in config order, then metric."""
    order_s = {s.name: i for i, s in enumerate(plan.scenarios)}
    order_p = {p.label: i for i, p in enumerate(plan.policies)}
    order_m = {m: i for i, m in enumerate(plan.metrics)}
    maps = {"scenario": order_s, "policy": order_p, "metric": order_m}
    cols = [c for c in ("scenario", "policy", *extra, "metric") if c in df.columns]
    return df.sort_values(cols, key=lambda c: c.map(maps[c.name]) if c.name in maps else c)


def summarise_results(plan: ExperimentPlan, results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI of each summary metric per scenario x policy (dispatch.stats)."""
    from dispatch.stats import summarise

    df = summarise(results, ["scenario", "policy"], plan.metrics)
    return _ordered(df, plan).reset_index(drop=True)


def paired_results(plan: ExperimentPlan, results: pd.DataFrame) -> pd.DataFrame:
    """Paired differences (policy - baseline, same seeds) per scenario and metric."""
    from dispatch.stats import paired_summary

    df = paired_summary(
        results,
        by="policy",
        baseline=plan.baseline,
        seed_col="seed",
        metric_cols=plan.metrics,
        group_cols=["scenario"],
    )
    return _ordered(df, plan).reset_index(drop=True)


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """``results.parquet`` of a finished run."""
    import pandas as pd

    return pd.read_parquet(Path(run_dir) / "results.parquet")
