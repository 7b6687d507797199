"""Figures of an experiment: PNGs that compare policies at a glance.

Every figure uses one colour per policy label, the same in all figures of a run
(:func:`policy_colours`), readable axis labels with units, and 95% confidence intervals over
seeds where a figure shows a mean. Figures are drawn on :class:`matplotlib.figure.Figure`
objects with the Agg canvas, never through ``pyplot``'s global state, so this module works in
worker processes, on servers without a display, and in notebooks without changing their
backend.

The functions take tidy :mod:`pandas` frames, which the ``*_frame`` helpers build from the
cell results of :mod:`dispatch.runner` (``load_cells(run_dir)``):

===================== ====================================================================
builder               columns
===================== ====================================================================
summary (stats)       scenario, policy, metric, mean, ci_low, ci_high, half_width, n
:func:`cdf_frame`     scenario, policy, cls, wait (minutes), share (mean over seeds), sla
:func:`series_frame`  scenario, policy, time (minutes), series, value (mean over seeds)
:func:`group_frame`   scenario, policy, seed, group, utilisation, busy_hours, duty_hours
===================== ====================================================================

Each plotting function writes one PNG per scenario and returns the paths;
:func:`make_figures` draws them all.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

__all__ = [
    "METRIC_LABELS",
    "backlog",
    "cdf_frame",
    "group_frame",
    "harm_over_day",
    "make_figures",
    "metric_bars",
    "pareto",
    "policy_colours",
    "series_frame",
    "utilisation_by_group",
    "wait_cdfs",
]

#: Axis labels with units of the overall metrics (others get their key as label).
METRIC_LABELS: dict[str, str] = {
    "objective": "objective cost (lower is better)",
    "harm_exposure": "harm exposure (severity × views)",
    "sla_attainment": "SLA attainment (share)",
    "mean_wait": "mean wait (min)",
    "p50_wait": "median wait (min)",
    "p95_wait": "p95 wait (min)",
    "p99_wait": "p99 wait (min)",
    "mean_sojourn": "mean time to decision (min)",
    "p95_sojourn": "p95 time to decision (min)",
    "throughput_per_hour": "throughput (tasks / hour)",
    "accuracy": "accuracy (share correct)",
    "precision": "precision of enforcement",
    "recall": "recall of violations",
    "false_enforcements": "false enforcements (tasks)",
    "abandoned": "expired unreviewed (tasks)",
    "abandon_rate": "abandonment rate (share)",
    "utilisation": "reviewer utilisation (share)",
    "sla_breaches": "SLA breaches (tasks)",
    "appeals": "appeals (tasks)",
    "severe_per_reviewer_hour": "severe items / reviewer-hour",
}

DPI = 110


def label_of(metric: str) -> str:
    """Axis label of a metric key (``class.metric`` keys get the class in front)."""
    if "." in metric:
        cls, key = metric.split(".", 1)
        return f"{cls}: {METRIC_LABELS.get(key, key)}"
    return METRIC_LABELS.get(metric, metric)


def policy_colours(labels: Iterable[str]) -> dict[str, Any]:
    """One colour per policy label, in the given order (tab10, then tab20 beyond ten)."""
    from matplotlib import colormaps

    labels = list(dict.fromkeys(labels))
    cmap = colormaps["tab10" if len(labels) <= 10 else "tab20"]
    return {lab: cmap(i % cmap.N) for i, lab in enumerate(labels)}


_STYLES = ["-", "--", "-.", ":"]


def line_styles(labels: Iterable[str]) -> dict[str, str]:
    """A line style per policy, cycling, so that coinciding curves stay distinguishable."""
    return {lab: _STYLES[i % len(_STYLES)] for i, lab in enumerate(dict.fromkeys(labels))}


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-]+", "_", str(text)).strip("_") or "x"


def _save(fig: Figure, path: Path) -> Path:
    from dispatch.io import atomic_path

    FigureCanvasAgg(fig)
    # A temporary name unique to this process and call, renamed when complete: a reader
    # never sees half a PNG, and two processes drawing the same figure never collide.
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, dpi=DPI, bbox_inches="tight", format="png")
    return path


def _colours(colours: dict[str, Any] | None, labels: Sequence[str]) -> dict[str, Any]:
    if colours is None:
        return policy_colours(labels)
    missing = [lab for lab in labels if lab not in colours]
    if missing:
        extra = policy_colours([*colours, *missing])
        return {**colours, **{lab: extra[lab] for lab in missing}}
    return colours


def _grid(n: int, ncols: int = 4, size: tuple[float, float] = (3.6, 2.8)):
    ncols = max(1, min(ncols, n))
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def _legend(
    fig: Figure,
    colours: dict[str, Any],
    labels: Sequence[str],
    styles: dict[str, str] | None = None,
    **kw: Any,
) -> None:
    from matplotlib.lines import Line2D

    styles = styles or {}
    handles = [
        Line2D([], [], color=colours[lab], ls=styles.get(lab, "-"), lw=2.5) for lab in labels
    ]
    fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 6), **kw)


def _policies(df: pd.DataFrame, order: Sequence[str] | None) -> list[str]:
    present = list(dict.fromkeys(df["policy"]))
    if order is None:
        return present
    return [p for p in order if p in present] + [p for p in present if p not in order]


# -- tidy frames from cells --------------------------------------------------------------------
def cdf_frame(cells: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Waiting-time CDF per scenario, policy and class, averaged over seeds point by point."""
    rows = []
    for c in cells:
        w = c["wait_cdf"]
        for cls, share in w["share"].items():
            if share is None:
                continue
            sla = w.get("sla", {}).get(cls, math.nan)
            for x, y in zip(w["grid"], share, strict=True):
                rows.append((c["scenario"], c["policy"], cls, c["seed"], x, y, sla))
    df = pd.DataFrame(rows, columns=["scenario", "policy", "cls", "seed", "wait", "share", "sla"])
    keys = ["scenario", "policy", "cls", "wait"]
    return df.groupby(keys, sort=False, as_index=False).agg(
        share=("share", "mean"), sla=("sla", "first")
    )


def series_frame(cells: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Timeseries (backlog per class, harm, completions) averaged over seeds, long format."""
    parts = []
    for c in cells:
        ts = pd.DataFrame(c["timeseries"])
        long = ts.melt(id_vars="time", var_name="series", value_name="value")
        long.insert(0, "policy", c["policy"])
        long.insert(0, "scenario", c["scenario"])
        parts.append(long)
    if not parts:
        return pd.DataFrame(columns=["scenario", "policy", "time", "series", "value"])
    df = pd.concat(parts, ignore_index=True)
    keys = ["scenario", "policy", "series", "time"]
    return df.groupby(keys, sort=False, as_index=False)["value"].mean()


def group_frame(cells: Iterable[dict[str, Any]]) -> pd.DataFrame:
    """Per reviewer group and cell: utilisation, busy and on-duty hours."""
    rows = []
    for c in cells:
        for g, m in c["per_group"].items():
            rows.append(
                (
                    c["scenario"],
                    c["policy"],
                    c["seed"],
                    g,
                    m.get("utilisation", math.nan),
                    m.get("busy_hours", math.nan),
                    m.get("duty_hours", math.nan),
                )
            )
    cols = ["scenario", "policy", "seed", "group", "utilisation", "busy_hours", "duty_hours"]
    return pd.DataFrame(rows, columns=cols)


# -- figures -----------------------------------------------------------------------------------
def metric_bars(
    summary: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    metrics: Sequence[str] | None = None,
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Bars of each metric's mean per policy with 95% CI whiskers; one panel per metric."""
    paths = []
    metrics = list(metrics or dict.fromkeys(summary["metric"]))
    for scen, sdf in summary.groupby("scenario", sort=False):
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        fig, axes = _grid(len(metrics), ncols=4, size=(3.4, 2.9))
        x = np.arange(len(labels))
        for ax, metric in zip(axes, metrics, strict=True):
            m = sdf[sdf["metric"] == metric].set_index("policy").reindex(labels)
            mean = m["mean"].to_numpy(float)
            err = np.vstack([mean - m["ci_low"].to_numpy(float), m["ci_high"] - mean])
            err = np.nan_to_num(err, nan=0.0)
            ax.bar(x, mean, color=[col[p] for p in labels], yerr=err, capsize=3)
            ax.set_title(label_of(metric), fontsize=9)
            ax.set_xticks(x, labels, rotation=35, ha="right", fontsize=8)
            ax.tick_params(axis="y", labelsize=8)
            ax.grid(axis="y", alpha=0.3)
        fig.suptitle(f"{scen}: mean over seeds with 95% CI", fontsize=11)
        paths.append(_save(fig, Path(out_dir) / f"bars_{_slug(scen)}.png"))
    return paths


def wait_cdfs(
    cdf: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Waiting-time CDF per class (one panel each), one line per policy, log minutes.

    The dotted vertical line is the class's SLA; the curve's height there is roughly the
    share of its tasks that started review within the SLA.
    """
    paths = []
    for scen, sdf in cdf.groupby("scenario", sort=False):
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        ls = line_styles(policies or labels)
        classes = list(dict.fromkeys(sdf["cls"]))
        fig, axes = _grid(len(classes), ncols=4, size=(3.4, 2.7))
        for ax, cls in zip(axes, classes, strict=True):
            cdf_c = sdf[sdf["cls"] == cls]
            for pol in labels:
                d = cdf_c[cdf_c["policy"] == pol]
                if not d.empty:
                    ax.step(d["wait"], d["share"], where="post", color=col[pol], ls=ls[pol], lw=1.5)
            sla = cdf_c["sla"].iloc[0]
            if math.isfinite(sla):
                ax.axvline(sla, color="grey", ls=":", lw=1)
            ax.set_xscale("log")
            ax.set_ylim(0, 1.02)
            ax.set_title(cls, fontsize=9)
            ax.set_xlabel("wait before review (min)", fontsize=8)
            ax.set_ylabel("share started", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        _legend(fig, col, labels, ls)
        fig.suptitle(f"{scen}: waiting-time CDF per class (dotted: SLA)", fontsize=11)
        paths.append(_save(fig, Path(out_dir) / f"wait_cdf_{_slug(scen)}.png"))
    return paths


def backlog(
    series: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Tasks waiting per class over the day (mean over seeds), one panel per class."""
    paths = []
    for scen, sdf in series.groupby("scenario", sort=False):
        sdf = sdf[sdf["series"].str.startswith("backlog_")]
        if sdf.empty:
            continue
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        ls = line_styles(policies or labels)
        names = list(dict.fromkeys(sdf["series"]))
        fig, axes = _grid(len(names), ncols=4, size=(3.4, 2.6))
        for ax, name in zip(axes, names, strict=True):
            d_s = sdf[sdf["series"] == name]
            for pol in labels:
                d = d_s[d_s["policy"] == pol]
                ax.plot(d["time"] / 60.0, d["value"], color=col[pol], ls=ls[pol], lw=1.4)
            ax.set_title(name.removeprefix("backlog_"), fontsize=9)
            ax.set_xlabel("time of day (h)", fontsize=8)
            ax.set_ylabel("tasks waiting", fontsize=8)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        _legend(fig, col, labels, ls)
        fig.suptitle(f"{scen}: backlog per class (mean over seeds)", fontsize=11)
        paths.append(_save(fig, Path(out_dir) / f"backlog_{_slug(scen)}.png"))
    return paths


def harm_over_day(
    series: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Harm exposure accumulated over the day (mean over seeds), one line per policy."""
    paths = []
    for scen, sdf in series.groupby("scenario", sort=False):
        sdf = sdf[sdf["series"] == "harm_cum"]
        if sdf.empty:
            continue
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        ls = line_styles(policies or labels)
        fig = Figure(figsize=(6.4, 3.8), layout="constrained")
        ax = fig.subplots()
        for pol in labels:
            d = sdf[sdf["policy"] == pol]
            ax.plot(
                d["time"] / 60.0,
                d["value"] / 1000.0,
                color=col[pol],
                ls=ls[pol],
                lw=1.8,
                label=pol,
            )
        ax.set_xlabel("time of day (h)")
        ax.set_ylabel("harm exposure so far\n(thousand severity-weighted views)")
        ax.set_title(f"{scen}: accumulated harm exposure (mean over seeds)", fontsize=11)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        paths.append(_save(fig, Path(out_dir) / f"harm_{_slug(scen)}.png"))
    return paths


def pareto_front(x: Sequence[float], y: Sequence[float]) -> list[int]:
    """Indices of points not dominated when both x and y are to be maximised, by x."""
    pts = [(float(a), float(b), i) for i, (a, b) in enumerate(zip(x, y, strict=True))]
    pts = [p for p in pts if math.isfinite(p[0]) and math.isfinite(p[1])]
    front = []
    for a, b, i in pts:
        dominated = any((a2 >= a and b2 >= b) and (a2 > a or b2 > b) for a2, b2, _ in pts)
        if not dominated:
            front.append((a, i))
    return [i for _, i in sorted(front)]


def pareto(
    summary: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    quality: Sequence[str] = ("accuracy", "recall"),
    throughput: str = "throughput_per_hour",
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Throughput vs audit quality, one point per policy with 95% CI whiskers.

    One panel per quality metric; the non-dominated policies (no other policy is at least
    as good on both axes and better on one) are ringed, named, and joined by the dashed
    front. The other policies are told apart by their colour in the legend.
    """
    paths = []
    for scen, sdf in summary.groupby("scenario", sort=False):
        qual = [q for q in quality if (sdf["metric"] == q).any()]
        if not qual or not (sdf["metric"] == throughput).any():
            continue
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        fig, axes = _grid(len(qual), ncols=len(qual), size=(4.4, 3.6))
        xs = sdf[sdf["metric"] == throughput].set_index("policy").reindex(labels)
        for ax, q in zip(axes, qual, strict=True):
            ys = sdf[sdf["metric"] == q].set_index("policy").reindex(labels)
            for pol in labels:
                xm, ym = xs.at[pol, "mean"], ys.at[pol, "mean"]
                xe = np.nan_to_num([[xm - xs.at[pol, "ci_low"]], [xs.at[pol, "ci_high"] - xm]])
                ye = np.nan_to_num([[ym - ys.at[pol, "ci_low"]], [ys.at[pol, "ci_high"] - ym]])
                ax.errorbar(xm, ym, xerr=xe, yerr=ye, fmt="o", color=col[pol], capsize=3, ms=6)
            front = pareto_front(xs["mean"].to_numpy(), ys["mean"].to_numpy())
            on_front = xs.index[front]
            _annotate_points(ax, xs.loc[on_front, "mean"], ys.loc[on_front, "mean"])
            if front:
                fx = xs["mean"].to_numpy()[front]
                fy = ys["mean"].to_numpy()[front]
                ax.plot(fx, fy, "--", color="black", lw=1, alpha=0.7, zorder=0)
                ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", lw=1.2)
            ax.set_xlabel(label_of(throughput), fontsize=9)
            ax.set_ylabel(label_of(q), fontsize=9)
            ax.tick_params(labelsize=8)
            ax.grid(alpha=0.3)
        _legend(fig, col, labels)
        fig.suptitle(f"{scen}: throughput vs audit quality (ringed: Pareto front)", fontsize=11)
        paths.append(_save(fig, Path(out_dir) / f"pareto_{_slug(scen)}.png"))
    return paths


def _annotate_points(ax, x: pd.Series, y: pd.Series) -> None:
    """Label points with their policy; coinciding points share one label."""
    spots: dict[tuple[float, float], list[str]] = {}
    for pol in x.index:
        if math.isfinite(x[pol]) and math.isfinite(y[pol]):
            spots.setdefault((float(x[pol]), float(y[pol])), []).append(str(pol))
    for (px, py), names in spots.items():
        ax.annotate(
            ", ".join(names),
            (px, py),
            xytext=(6, 6),
            textcoords="offset points",
            fontsize=7,
            color="0.25",
        )


def utilisation_by_group(
    groups: pd.DataFrame,
    out_dir: Path,
    colours: dict[str, Any] | None = None,
    policies: Sequence[str] | None = None,
) -> list[Path]:
    """Reviewer utilisation per group: grouped bars (one per policy) with 95% CI."""
    from dispatch.stats import summarise

    paths = []
    for scen, sdf in groups.groupby("scenario", sort=False):
        labels = _policies(sdf, policies)
        col = _colours(colours, labels)
        names = list(dict.fromkeys(sdf["group"]))
        summ = summarise(sdf, ["group", "policy"], ["utilisation"])
        fig = Figure(figsize=(max(6.0, 0.9 * len(names) + 2), 3.8), layout="constrained")
        ax = fig.subplots()
        width = 0.8 / max(len(labels), 1)
        x = np.arange(len(names))
        for k, pol in enumerate(labels):
            m = summ[summ["policy"] == pol].set_index("group").reindex(names)
            mean = m["mean"].to_numpy(float)
            err = np.nan_to_num(
                np.vstack([mean - m["ci_low"].to_numpy(float), m["ci_high"] - mean])
            )
            ax.bar(
                x + (k - (len(labels) - 1) / 2) * width,
                mean,
                width,
                yerr=err,
                capsize=2,
                color=col[pol],
                label=pol,
            )
        ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
        ax.set_xlim(-0.6, len(names) - 0.4)
        ax.set_ylabel("utilisation (busy / on duty)")
        ax.set_ylim(0, max(1.05, float(np.nanmax(summ["ci_high"].fillna(0))) * 1.05))
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(f"{scen}: reviewer utilisation by group (95% CI)", fontsize=11)
        ax.grid(axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncols=min(len(labels), 4))
        paths.append(_save(fig, Path(out_dir) / f"utilisation_{_slug(scen)}.png"))
    return paths


def make_figures(
    cells: list[dict[str, Any]],
    summary: pd.DataFrame,
    out_dir: Path,
    labels: Sequence[str] | None = None,
    metrics: Sequence[str] | None = None,
) -> dict[str, list[Path]]:
    """Every figure of a run; ``labels`` fixes the policy order and colours."""
    out_dir = Path(out_dir)
    labels = list(labels or dict.fromkeys(c["policy"] for c in cells))
    col = policy_colours(labels)
    series = series_frame(cells)
    full = summary
    needed = {"throughput_per_hour", "accuracy", "recall"} - set(summary["metric"])
    if needed and cells:
        full = pd.concat([summary, _summary_of(cells, sorted(needed))], ignore_index=True)
    return {
        "metrics": metric_bars(summary, out_dir, col, metrics, labels),
        "wait_cdf": wait_cdfs(cdf_frame(cells), out_dir, col, labels),
        "backlog": backlog(series, out_dir, col, labels),
        "harm": harm_over_day(series, out_dir, col, labels),
        "pareto": pareto(full, out_dir, col, policies=labels),
        "utilisation": utilisation_by_group(group_frame(cells), out_dir, col, labels),
    }


def _summary_of(cells: list[dict[str, Any]], metrics: list[str]) -> pd.DataFrame:
    """Summary rows for overall metrics the experiment did not list (for the Pareto view)."""
    from dispatch.stats import summarise

    df = pd.DataFrame(
        [
            {"scenario": c["scenario"], "policy": c["policy"], "seed": c["seed"]}
            | {m: c["overall"].get(m, math.nan) for m in metrics}
            for c in cells
        ]
    )
    return summarise(df, ["scenario", "policy"], metrics)
