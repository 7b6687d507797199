"""``report.md`` of a plan folder: the plan in words, tables and figures."""

from __future__ import annotations

from pathlib import Path

from dispatch.plan.pipeline import PlanResult


def report_md(r: PlanResult, summary: dict, figures: list[Path]) -> str:
    sol = summary["solver"]
    lines = [
        f"# Plan `{r.cfg.name}`",
        "",
        f"Scenario `{r.scenario.name}`, {r.cfg.horizon.days} day(s) in "
        f"{r.cfg.horizon.interval}-minute intervals, dispatcher `{r.cfg.dispatcher.name}`, "
        f"objective `{r.cfg.objective.mode}`.",
        "",
        f"- **Cost**: {summary['cost']:,.0f} for **{summary['paid_hours']:,.1f} paid "
        f"reviewer-hours** ({summary['reviewer_hours_per_day']:,.1f} per day), "
        f"{summary['headcount_total']} people.",
        f"- **Roster solver** (CP-SAT): {sol['status']}, objective {sol['objective']:,.0f}, "
        f"bound {sol['bound']:,.0f}, gap {100 * sol['gap']:.2f}%, {sol['wall_s']:.1f} s.",
        f"- **Targets**: {'all met' if summary['targets_met'] else 'some missed (below)'} in "
        f"simulation on {len(summary['seeds'])} seeds "
        f"({int(100 * r.cfg.simulation.confidence)}% CI per class and interval).",
        f"- Simulated means: objective {summary['simulated']['objective']:,.0f}, harm "
        f"exposure {summary['simulated']['harm_exposure']:,.0f}, reviewer-hours on duty "
        f"{summary['simulated']['reviewer_hours']:,.1f}.",
        "",
        "## Headcount per pool",
        "",
        "| pool | people |",
        "| --- | --- |",
    ]
    lines += [f"| {k} | {v} |" for k, v in summary["headcount"].items()]
    lines += [
        "",
        "## Iterations (simulation-based correction)",
        "",
        "| iteration | paid hours | people | solver | gap | missed class x interval | objective |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for it in r.iterations:
        lines.append(
            f"| {it.n} | {it.paid_hours:,.1f} | {it.headcount} | {it.status} | "
            f"{100 * it.gap:.2f}% | {it.misses} | {it.objective:,.0f} |"
        )
    if r.unmet:
        lines += [
            "",
            "## Targets not met",
            "",
            "| class | interval | target | goal | mean [CI] | why |",
            "| --- | --- | --- | --- | --- | --- |",
        ]
        for m, why in r.unmet[:50]:
            lines.append(
                f"| {m.cls} | {r.demand.label(m.interval)} | {m.target} | {m.goal:g} | "
                f"{m.value:.3f} [{m.lo:.3f}, {m.hi:.3f}] | {why} |"
            )
    if r.frontier:
        lines += [
            "",
            "## Cost vs service (budget sweep)",
            "",
            "| budget h | paid h | objective [CI] | harm |",
            "| --- | --- | --- | --- |",
        ]
        for p in r.frontier:
            lines.append(
                f"| {p.budget_hours:g} | {p.paid_hours:,.1f} | {p.objective[0]:,.0f} "
                f"[{p.objective[1]:,.0f}, {p.objective[2]:,.0f}] | {p.harm[0]:,.0f} |"
            )
    if figures:
        lines += ["", "## Figures", ""]
        lines += [f"![{f.stem}](figures/{f.name})" for f in figures]
    lines += [
        "",
        "Files: `roster.yaml`, `requirements.csv`, `demand.csv`, `validation.csv`, "
        "`plan.json`" + (", `frontier.csv`" if r.frontier else "") + ".",
    ]
    return "\n".join(lines) + "\n"
