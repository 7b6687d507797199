"""The observation features: one definition each (name, range, definition, modes).

The builder's bounds, the environments' docstring tables (:func:`feature_table_rst`,
checked by a test) and export's sidecar notes (:func:`feature_table`) are all generated
from :data:`FEATURES`.
"""

from __future__ import annotations

import math
import textwrap
from dataclasses import dataclass
from typing import Any

from dispatch.policies.base import PolicyMode

__all__ = [
    "AGE_CAP",
    "FEATURES",
    "SPEED_CAP",
    "Feature",
    "feature_table",
    "feature_table_rst",
    "features",
]

LOG_QUEUE = math.log1p(1000.0)
LOG_HARM = math.log1p(1e4)
LOG_BACKLOG = math.log1p(1e4)
AGE_CAP = 5.0
SPEED_CAP = 4.0
MINUTES_PER_DAY = 1440.0

_BOTH = (PolicyMode.PULL, PolicyMode.BATCH)
_PULL = (PolicyMode.PULL,)
_BATCH = (PolicyMode.BATCH,)


@dataclass(frozen=True)
class Feature:
    """One observation feature: a block of ``B`` values (``per_bucket``) or one global."""

    name: str
    low: float
    high: float
    definition: str
    per_bucket: bool
    modes: tuple[PolicyMode, ...]
    binary: bool = False

    @property
    def range(self) -> str:
        return "{0, 1}" if self.binary else f"[{self.low:g}, {self.high:g}]"


FEATURES: tuple[Feature, ...] = (
    Feature(
        "mean_risk",
        0.0,
        1.0,
        "mean upstream risk score of the waiting tasks (the class's prior mean risk, "
        "clipped into the bucket's risk band, when empty)",
        True,
        _BOTH,
    ),
    Feature(
        "severe_share",
        0.0,
        1.0,
        "share of waiting tasks that count against wellbeing caps",
        True,
        _BOTH,
    ),
    Feature(
        "harm_rate",
        0.0,
        2.0,
        "log1p(mean risk x severity x reach per minute) / log1p(1e4)",
        True,
        _BOTH,
    ),
    Feature("queue_len", 0.0, 2.0, "log1p(waiting tasks) / log1p(1000)", True, _BOTH),
    Feature(
        "oldest_age",
        0.0,
        AGE_CAP,
        "(now - arrival of the oldest waiting task) / class SLA",
        True,
        _BOTH,
    ),
    Feature(
        "expiry_pressure",
        0.0,
        1.0,
        "x / (1 + x), x = waiting x mean handling / mean patience: expected expiries "
        "during one handling time (0 without patience)",
        True,
        _BOTH,
    ),
    Feature(
        "eligible",
        0.0,
        1.0,
        "1 if the reviewer's group may take the bucket's class and market",
        True,
        _PULL,
        binary=True,
    ),
    Feature(
        "speed",
        0.0,
        SPEED_CAP,
        "the group's speed factor for the class (0 if not eligible)",
        True,
        _PULL,
    ),
    Feature(
        "accuracy",
        0.0,
        1.0,
        "eligible x (r sens + (1 - r) spec - fatigue), r = mean_risk",
        True,
        _PULL,
    ),
    Feature(
        "free_eligible",
        0.0,
        1.0,
        "log1p(free reviewers eligible for the bucket) / log1p(all reviewers)",
        True,
        _BATCH,
    ),
    Feature(
        "tod_sin", -1.0, 1.0, "sin(2 pi minute-of-day / 1440), minute 0 = midnight", False, _BOTH
    ),
    Feature("tod_cos", -1.0, 1.0, "cos(2 pi minute-of-day / 1440)", False, _BOTH),
    Feature("elapsed", 0.0, 1.0, "now / horizon", False, _BOTH),
    Feature(
        "fatigue", 0.0, 1.0, "the reviewer's accuracy drop / its group's max_drop", False, _PULL
    ),
    Feature(
        "at_cap",
        0.0,
        1.0,
        "1 if the reviewer reached its wellbeing cap (severe buckets are masked)",
        False,
        _PULL,
        binary=True,
    ),
    Feature(
        "free_reviewers",
        0.0,
        1.0,
        "free reviewers (pull: this one included) / all reviewers",
        False,
        _BOTH,
    ),
    Feature("backlog", 0.0, 2.0, "log1p(all waiting tasks) / log1p(1e4)", False, _BOTH),
)
"""Every observation feature, in observation order within its kind (per-bucket, global)."""


def features(mode: PolicyMode | str, per_bucket: bool | None = None) -> list[Feature]:
    """The features of ``mode`` in observation order (``per_bucket`` filters the kind)."""
    mode = PolicyMode(mode)
    out = [f for f in FEATURES if mode in f.modes]
    out = [f for f in out if f.per_bucket] + [f for f in out if not f.per_bucket]
    if per_bucket is not None:
        out = [f for f in out if f.per_bucket == per_bucket]
    return out


def feature_table(mode: PolicyMode | str) -> list[dict[str, Any]]:
    """One row per feature of ``mode``, in observation order, for sidecars and docs.

    Keys: ``name``, ``kind`` ("bucket": a block of B values, or "global"), ``index``
    (``"[kB, (k+1)B)"`` or ``"nB + j"``), ``low``, ``high``, ``range``, ``definition``.
    """
    fs = features(mode)
    n_blocks = sum(f.per_bucket for f in fs)
    rows = []
    for k, f in enumerate(fs):
        if f.per_bucket:
            index = f"[{_b(k)}, {_b(k + 1)})"
        else:
            j = k - n_blocks
            index = f"{_b(n_blocks)}" + (f" + {j}" if j else "")
        rows.append(
            {
                "name": f.name,
                "kind": "bucket" if f.per_bucket else "global",
                "index": index,
                "low": f.low,
                "high": f.high,
                "range": f.range,
                "definition": f.definition,
            }
        )
    return rows


def _b(k: int) -> str:
    return "0" if k == 0 else ("B" if k == 1 else f"{k}B")


def feature_table_rst(mode: PolicyMode | str, width: int = 96) -> str:
    """The feature table of ``mode`` as a reStructuredText simple table (env docstrings)."""
    cols = (17, 16, 9)
    defn = width - sum(cols) - len(cols) * 2
    rule = "  ".join("=" * w for w in (*cols, defn))
    lines = [rule, _row(("index", "feature", "range", "definition"), cols), rule]
    for r in feature_table(mode):
        wrapped = textwrap.wrap(r["definition"], defn) or [""]
        lines.append(_row((f"``{r['index']}``", r["name"], r["range"], wrapped[0]), cols))
        lines += [_row(("", "", "", more), cols) for more in wrapped[1:]]
    lines.append(rule)
    return "\n".join(lines)


def _row(cells: tuple[str, str, str, str], cols: tuple[int, int, int]) -> str:
    head = "  ".join(c.ljust(w) for c, w in zip(cells[:3], cols, strict=True))
    return f"{head}  {cells[3]}".rstrip()
