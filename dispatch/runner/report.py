"""The report of a run: tables as Markdown, headline sentences, figures, ``report.md``."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from dispatch.experiment import ExperimentPlan
from dispatch.io import atomic_write_frame, atomic_write_text
from dispatch.runner.execution import cell_specs, load_cells
from dispatch.runner.results import paired_results, results_frame, summarise_results

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["aggregate", "headline", "paired_table", "report_markdown", "summary_table"]


def aggregate(run_dir: Path, plan: ExperimentPlan, wall_seconds: float | None = None) -> None:
    """Write results, summary, paired differences, figures and the report of a run."""
    specs = cell_specs(plan, False)
    cells = load_cells(run_dir, [s["key"] for s in specs])
    results = results_frame(plan, cells)
    atomic_write_frame(run_dir / "results.parquet", results)
    atomic_write_frame(run_dir / "results.csv", results)
    summary = summarise_results(plan, results)
    atomic_write_frame(run_dir / "summary.csv", summary)
    paired = paired_results(plan, results)
    atomic_write_frame(run_dir / "paired.csv", paired)
    figures: dict[str, list[Path]] = {}
    if plan.config.outputs.figures:
        from dispatch.figures import make_figures

        figures = make_figures(
            cells, summary, run_dir / "figures", labels=plan.labels, metrics=plan.metrics
        )
    if plan.config.outputs.report:
        cell_seconds = sum(float(c.get("wall_seconds") or 0.0) for c in cells)
        text = report_markdown(
            plan, results, summary, paired, figures, run_dir, wall_seconds, cell_seconds
        )
        atomic_write_text(run_dir / "report.md", text)


# -- formatting --------------------------------------------------------------------------------
def _num(v: float, decimals: int | None = None) -> str:
    """A number for tables: fixed ``decimals`` if given, else 3 significant digits.

    Values of 100 or more get thousands separators; a value that rounds to zero loses its
    sign (no "-0.00").
    """
    if v is None or not math.isfinite(v):
        return "-"
    if decimals is None:
        a = abs(v)
        if a >= 100 or a == 0:
            decimals = 0
        elif a >= 1:
            decimals = 2
        else:
            decimals = min(6, 2 - math.floor(math.log10(a)))
    text = f"{v:,.{decimals}f}"
    if text.lstrip("-").strip("0.,") == "":
        text = text.lstrip("-")
    return text


def _decimals(half_width: float) -> int | None:
    """Decimals that show two significant digits of a CI half-width (0 to 4)."""
    if half_width is None or not math.isfinite(half_width) or half_width <= 0:
        return None
    return max(0, min(4, 1 - math.floor(math.log10(half_width))))


def _pm(mean: float, half: float) -> str:
    """``mean ± half-width``, both rounded to the precision the interval supports."""
    d = _decimals(half)
    if d is None:
        return _num(mean)
    return f"{_num(mean, d)} ± {_num(half, d)}"


def _interval(mid: float, low: float, high: float) -> str:
    """``mid [low, high]`` rounded to the precision the interval supports."""
    if all(math.isfinite(v) and abs(v) < 1e-12 for v in (mid, low, high)):
        return "0 [0, 0]"  # equal up to floating-point summation noise
    d = _decimals((high - low) / 2.0) if math.isfinite(low) and math.isfinite(high) else None
    if d is None and math.isfinite(low) and low == high:
        d = _decimals(abs(mid)) if mid else 0
    return f"{_num(mid, d)} [{_num(low, d)}, {_num(high, d)}]"


def _percent(rel: float) -> str:
    return f"{100.0 * rel:+.2g}%" if math.isfinite(rel) else ""


def _markdown(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(header), sep, *(line(r) for r in rows)])


def summary_table(summary: pd.DataFrame, metrics: list[str] | None = None) -> str:
    """Markdown table: one row per scenario x policy, ``mean ± 95% half-width`` per metric."""
    metrics = metrics or list(dict.fromkeys(summary["metric"]))
    multi = summary["scenario"].nunique() > 1
    header = (["scenario"] if multi else []) + ["policy", *metrics]
    rows = []
    for (scen, pol), sub in summary.groupby(["scenario", "policy"], sort=False):
        by = sub.set_index("metric")
        vals = [
            _pm(by.at[m, "mean"], by.at[m, "half_width"]) if m in by.index else "-" for m in metrics
        ]
        rows.append(([str(scen)] if multi else []) + [str(pol), *vals])
    return _markdown(header, rows)


def paired_table(paired: pd.DataFrame, metrics: list[str]) -> str:
    """Markdown table of paired differences: ``diff [lo, hi]`` per metric."""
    if paired.empty:
        return "(only one policy: nothing to pair)"
    multi = paired["scenario"].nunique() > 1
    header = (["scenario"] if multi else []) + ["policy - baseline", *metrics]
    rows = []
    for (scen, pol), sub in paired.groupby(["scenario", "policy"], sort=False):
        by = sub.set_index("metric")
        vals = []
        for m in metrics:
            if m not in by.index:
                vals.append("-")
                continue
            r = by.loc[m]
            vals.append(_interval(r["mean_diff"], r["ci_low"], r["ci_high"]))
        rows.append(([str(scen)] if multi else []) + [str(pol), *vals])
    return _markdown(header, rows)


def headline(plan: ExperimentPlan, results: pd.DataFrame) -> list[str]:
    """One sentence per scenario: the best policy on the objective, vs the baseline."""
    from dispatch.stats import mean_ci, paired_difference

    out = []
    n_seeds = len(plan.seeds)
    for scen in plan.scenarios:
        sub = results[results["scenario"] == scen.name]
        if sub.empty:
            continue
        means = sub.groupby("policy", sort=False)["objective"].mean()
        best = str(means.idxmin())
        m, lo, hi = mean_ci(sub.loc[sub["policy"] == best, "objective"].to_numpy())
        dm = _decimals((hi - lo) / 2.0) if math.isfinite(lo) else None
        ci = f" (95% CI {_num(lo, dm)} to {_num(hi, dm)})" if math.isfinite(lo) else ""
        text = (
            f"On **{scen.name}** over {n_seeds} seed{'s' if n_seeds > 1 else ''}, "
            f"**{best}** has the lowest mean objective cost, {_num(m, dm)}{ci}"
        )
        other = plan.baseline if best != plan.baseline else None
        if other is None and len(means) > 1:
            other = str(means.drop(best).idxmin())  # the runner-up
        if other is not None:
            a = sub[sub["policy"] == best].set_index("seed")["objective"]
            b = sub[sub["policy"] == other].set_index("seed")["objective"]
            common = a.index.intersection(b.index)
            d = paired_difference(a[common].to_numpy(), b[common].to_numpy())
            role = "the baseline" if other == plan.baseline else "the runner-up"
            if (a[common] == b[common]).all():
                out.append(f"{text}; {role} **{other}** has the same cost on every seed.")
                continue
            lo, hi = d["lower"], d["upper"]
            dd = _decimals((hi - lo) / 2.0) if math.isfinite(lo) else None
            rel = _percent(d["relative"])
            dci = (
                f" (paired 95% CI {_num(lo, dd)} to {_num(hi, dd)}{', ' + rel if rel else ''})"
                if math.isfinite(lo)
                else ""
            )
            text += (
                f"; its paired difference to {role} **{other}** is {_num(d['mean_diff'], dd)}{dci}"
            )
            if math.isfinite(lo) and lo <= 0 <= hi:
                text += ", an interval that includes zero: not resolved at this number of seeds"
        out.append(text + ".")
    return out


def _configuration(
    plan: ExperimentPlan, n_results: int, wall_seconds: float | None, cell_seconds: float | None
) -> list[str]:
    """The report's configuration section: scenarios, policies, seeds, weights, cells."""
    cfg = plan.config
    lines = ["## Configuration", ""]
    for s in plan.scenarios:
        ov = f" with overrides `{json.dumps(s.overrides)}`" if s.overrides else ""
        lines.append(f"- scenario **{s.name}**: `{s.path}`{ov} (digest `{s.digest}`)")
    for p in plan.policies:
        what = f"train `{p.train}` then `{p.name}`" if p.train else f"`{p.name}`"
        params = f" params `{json.dumps(p.params)}`" if p.params else ""
        base = " (baseline)" if p.label == plan.baseline else ""
        lines.append(f"- policy **{p.label}**: {what}{params}{base}")
    seeds = plan.seeds
    seed_txt = (
        f"{seeds[0]}..{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) else seeds
    )
    lines.append(
        f"- seeds: {len(seeds)} ({seed_txt}), shared by all policies (common random numbers)"
    )
    weights = ", ".join(f"{k}={v:g}" for k, v in cfg.objective.model_dump().items())
    lines.append(f"- objective weights: {weights}")
    n_cells = len(plan.scenarios) * len(plan.policies) * len(seeds)
    timing = ""
    if wall_seconds is not None:
        timing = f"; this invocation took {wall_seconds:.1f} s"
    if cell_seconds:
        timing += f", {cell_seconds:.1f} s of simulation in all"
    return lines + [f"- cells: {n_cells} ({n_results} with results){timing}", ""]


def report_markdown(
    plan: ExperimentPlan,
    results: pd.DataFrame,
    summary: pd.DataFrame,
    paired: pd.DataFrame,
    figures: dict[str, list[Path]],
    run_dir: Path,
    wall_seconds: float | None = None,
    cell_seconds: float | None = None,
) -> str:
    """The run's ``report.md``: headline, configuration, tables, figures."""
    cfg = plan.config
    lines = [f"# Experiment: {cfg.name}", ""]
    if cfg.description:
        lines += [cfg.description.strip(), ""]
    lines += ["## Headline", "", *(f"- {h}" for h in headline(plan, results)), ""]
    lines += ["Lower objective is better (cost in the units of `dispatch.objective`).", ""]
    lines += _configuration(plan, len(results), wall_seconds, cell_seconds)
    lines += [
        "## Summary (mean ± 95% CI half-width over seeds)",
        "",
        summary_table(summary, plan.metrics),
        "",
        f"## Paired differences against the baseline **{plan.baseline}**",
        "",
        "Mean of (policy - baseline) over the same seeds, with its paired 95% CI; an "
        "interval that excludes 0 is a difference the seeds resolve.",
        "",
        paired_table(paired, plan.metrics),
        "",
    ]
    if figures:
        lines += ["## Figures", ""]
        for kind, paths in figures.items():
            for p in paths:
                rel = p.relative_to(run_dir) if p.is_relative_to(run_dir) else p
                lines += [f"![{kind}: {p.stem}]({rel.as_posix()})", ""]
    return "\n".join(lines)
