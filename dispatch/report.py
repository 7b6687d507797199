"""Human-readable tables of simulation results (rich when on a terminal, plain otherwise)."""

from __future__ import annotations

import math

from dispatch.metrics import SimResult

CLASS_COLUMNS = [
    ("arrivals", "arrivals", "{:.0f}"),
    ("completed", "done", "{:.0f}"),
    ("abandoned", "expired", "{:.0f}"),
    ("in_system", "left", "{:.0f}"),
    ("mean_wait", "wait", "{:.1f}"),
    ("p95_wait", "p95 wait", "{:.1f}"),
    ("sla_attainment", "SLA", "{:.1%}"),
    ("precision", "prec", "{:.2f}"),
    ("recall", "recall", "{:.2f}"),
    ("harm_exposure", "harm", "{:.3g}"),
]

OVERALL_KEYS = [
    ("arrivals", "{:.0f}"),
    ("completed", "{:.0f}"),
    ("abandoned", "{:.0f}"),
    ("in_system", "{:.0f}"),
    ("throughput_per_hour", "{:.1f}"),
    ("mean_wait", "{:.2f} min"),
    ("p95_wait", "{:.2f} min"),
    ("sla_attainment", "{:.1%}"),
    ("accuracy", "{:.3f}"),
    ("recall", "{:.3f}"),
    ("false_enforcements", "{:.0f}"),
    ("harm_exposure", "{:.4g}"),
    ("utilisation", "{:.1%}"),
    ("severe_per_reviewer_hour", "{:.2f}"),
    ("objective", "{:.1f}"),
]


def _fmt(fmt: str, v: float) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    return fmt.format(v)


def metrics_table(result: SimResult) -> str:
    """A plain-text report: one row per class, then the overall figures."""
    head = ["class"] + [c[1] for c in CLASS_COLUMNS]
    rows = [head]
    for name, m in result.per_class.items():
        rows.append([name] + [_fmt(f, m[k]) for k, _, f in CLASS_COLUMNS])
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [f"{result.scenario} | policy {result.policy} | seed {result.seed}", ""]
    for i, r in enumerate(rows):
        lines.append(
            "  ".join(
                c.rjust(w) if j else c.ljust(w)
                for j, (c, w) in enumerate(zip(r, widths, strict=True))
            )
        )
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    o = result.overall
    for k, f in OVERALL_KEYS:
        lines.append(f"{k:>26}: {_fmt(f, o[k])}")
    return "\n".join(lines)
