"""Figures of a calibration: fitted against observed, at sizes that stay readable.

Drawn on :class:`matplotlib.figure.Figure` with the Agg canvas (no pyplot state), like
:mod:`dispatch.figures`. At most :data:`MAX_PANELS` classes are drawn (the largest); the
CSV tables hold all of them.
"""

from __future__ import annotations

import math

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from dispatch.calibrate.build import Calibration

MAX_PANELS = 12
_FAMILY_STYLE = {"exponential": ":", "lognormal": "--", "gamma": "-."}


def _grid(n: int) -> tuple[Figure, list]:
    cols = min(3, max(n, 1))
    rows = math.ceil(max(n, 1) / cols)
    fig = Figure(figsize=(4.6 * cols, 3.1 * rows), layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(rows, cols, squeeze=False).ravel().tolist()
    for ax in axes[n:]:
        ax.set_visible(False)
    return fig, axes[:n]


def arrival_profile(cal: Calibration) -> Figure:
    """Per class: observed arrivals per hour in fine bins (dots) and the fitted profile (steps)."""
    prof = cal.profiles
    classes = list(prof.classes)[:MAX_PANELS]
    fig, axes = _grid(len(classes))
    hours = prof.period / 60.0
    for ax, c in zip(axes, classes, strict=True):
        p = prof.classes[c]
        fe = prof.fine_exposure
        observed = np.divide(prof.fine_counts[c], fe, out=np.full(len(fe), np.nan), where=fe > 0)
        centres = (np.arange(len(fe)) + 0.5) * prof.fine / 60.0
        ax.plot(
            centres,
            observed * 60.0,
            ".",
            ms=3,
            color="0.55",
            label=f"observed ({prof.fine:g}-min bins)",
        )
        edges = np.arange(len(p.rates) + 1) * prof.slot / 60.0
        ax.stairs(p.rates * 60.0, edges, color="C0", lw=1.8, label="fitted profile")
        ax.set_title(f"{c} ({p.total} arrivals)", fontsize=10)
        ax.set_xlim(0, hours)
        ax.set_xticks(np.arange(0, hours + 1e-9, 24 if hours > 24 else 6))
        ax.set_xlabel("hour of the week" if hours > 24 else "hour of the day")
        ax.set_ylabel("arrivals per hour")
        ax.set_ylim(bottom=0)
    if axes:
        axes[0].legend(fontsize=8, loc="upper left")
    fig.suptitle("Arrival profile: fitted vs observed")
    return fig


def handling_times(cal: Calibration) -> Figure:
    """Per class: histogram of (speed-normalised) handling times and the fitted densities."""
    fits = [f for f in cal.handling.classes.values() if f.sample.size][:MAX_PANELS]
    fig, axes = _grid(len(fits))
    for ax, s in zip(axes, fits, strict=True):
        top = float(np.quantile(s.sample, 0.99))
        ax.hist(
            s.sample[s.sample <= top],
            bins=40,
            density=True,
            color="0.8",
            label=f"observed (n={s.n})",
        )
        x = np.linspace(top / 400.0, top, 300)
        for f in s.fits:
            chosen = s.chosen is not None and f.family == s.chosen.family
            ax.plot(
                x,
                f.dist.pdf(x),
                _FAMILY_STYLE[f.family] if not chosen else "-",
                lw=2.2 if chosen else 1.2,
                label=f"{f.family}{' (chosen)' if chosen else ''}",
            )
        ax.set_title(f"{s.cls}: mean {s.mean:.3g} min, cv {s.cv:.2g}", fontsize=10)
        ax.set_xlabel("handling time (min, reference speed)")
        ax.set_ylabel("density")
        ax.legend(fontsize=7)
    fig.suptitle("Handling times: fitted densities")
    return fig
