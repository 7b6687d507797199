"""Write the synthetic moderation export: ``tasks.csv`` (a start-of-day backlog) and
``moderators.csv`` (the roster), with a fixed seed.

The files imitate a public ad-moderation export (one day, a backlog of review tasks, a
roster of moderators with market lists and accuracy scores; see "Figures from real
operations" in the project's domain notes), at a size a test can load in a second: about
3,000 tasks and 100 moderators. They keep the awkward features of the real thing, so that
``experiments/scenarios/moderation_backlog.yaml`` shows the ``data:`` options that handle
them:

* a UTF-8 byte-order mark and header cells padded with spaces;
* class labels with spaces, parentheses and a slash (``Ad (video)``, ``Merchant / shop``);
* ``-`` for a missing accuracy;
* JSON list cells of markets, including ``NO`` (Norway), which YAML would read as false;
* a count of past punishments (``punish_num``) where the simulator wants a risk probability;
* blank markets (tasks: drawn from the class mix; moderators: every market);
* ``UK`` in some task rows where the roster says ``GB``;
* columns nobody maps (advertiser, revenue, team, hire date).

Run ``python experiments/data/moderation_export/generate.py`` to rewrite the files; the
output is the same bytes every time (tests check it).
"""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

SEED = 20240506
HERE = Path(__file__).resolve().parent
SNAPSHOT = datetime(2024, 5, 6, 8, 0, 0)  # minute 0 of the scenario, UTC

N_TASKS = 3000
N_MODERATORS = 100

MARKETS = ["US", "GB", "DE", "FR", "NO", "SE", "BR", "MX", "JP", "ID", "TR", "PL"]
MARKET_SHARE = [0.22, 0.12, 0.1, 0.09, 0.05, 0.05, 0.1, 0.08, 0.06, 0.06, 0.04, 0.03]
CLASSES = {  # export label -> share of the backlog
    "Ad (video)": 0.34,
    "Ad (image)": 0.36,
    "Product listing": 0.18,
    "Live stream (replay)": 0.07,
    "Merchant / shop": 0.05,
}
REGIONS = [  # regional teams covering several markets
    ["GB", "DE", "FR", "NO", "SE", "PL", "TR", "US"],
    ["US", "BR", "MX", "GB", "JP", "ID", "DE", "FR", "NO", "SE"],
    ["NO", "SE", "DE", "PL", "GB", "FR", "TR", "US", "BR", "MX", "JP", "ID", "ES"],
]


def tasks(rng: np.random.Generator) -> list[list[str]]:
    """Backlog rows: created in the 24 hours before the snapshot, older ones rarer."""
    labels = list(CLASSES)
    cls = rng.choice(len(labels), N_TASKS, p=list(CLASSES.values()))
    market = rng.choice(len(MARKETS), N_TASKS, p=MARKET_SHARE)
    # ages: exponential with mean 6 h, truncated at 24 h (inverse CDF)
    age_min = -360.0 * np.log1p(-rng.random(N_TASKS) * (1.0 - np.exp(-1440.0 / 360.0)))
    flagged = rng.random(N_TASKS) < 0.06  # a prior punishment on about 6% of items
    punish = np.where(flagged, rng.geometric(0.45, N_TASKS), 0)
    blank_market = rng.random(N_TASKS) < 0.03
    uk = rng.random(N_TASKS) < 0.3
    revenue = np.round(rng.lognormal(3.0, 1.2, N_TASKS), 2)
    rows = []
    for i in np.argsort(-age_min, kind="stable"):
        created = SNAPSHOT - timedelta(seconds=int(round(age_min[i] * 60)))
        code = MARKETS[market[i]]
        if blank_market[i]:
            code = ""
        elif code == "GB" and uk[i]:
            code = "UK"
        rows.append(
            [
                f"T{100000 + len(rows)}",
                labels[cls[i]],
                code,
                str(int(punish[i])),
                created.strftime("%Y-%m-%d %H:%M:%S"),
                f"adv_{int(rng.integers(1, 400)):04d}",
                f"{revenue[i]:.2f}",
            ]
        )
    return rows


def moderators(rng: np.random.Generator) -> list[list[str]]:
    """Most moderators cover one market, a few a region; accuracy deciles 0.68..0.97."""
    rows = []
    hired = datetime(2021, 1, 1)
    for k in range(N_MODERATORS):
        u = rng.random()
        if u < 0.04:
            markets = None  # blank: every market
        elif u < 0.12:
            markets = REGIONS[int(rng.integers(len(REGIONS)))]
        else:
            markets = [MARKETS[int(rng.choice(len(MARKETS), p=MARKET_SHARE))]]
        acc = float(np.clip(rng.beta(9.0, 1.2), 0.6, 0.99))
        accuracy = "-" if rng.random() < 0.08 else f"{acc:.2f}"
        rows.append(
            [
                f"mod_{k + 1:03d}",
                "" if markets is None else json.dumps(markets),
                accuracy,
                f"team_{int(rng.integers(1, 9))}",
                (hired + timedelta(days=int(rng.integers(0, 1200)))).strftime("%Y-%m-%d"),
            ]
        )
    return rows


def write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    """UTF-8 with a byte-order mark, padded header cells, Unix line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_bytes(("\ufeff" + buf.getvalue()).encode("utf-8"))


def main(out: Path = HERE) -> None:
    rng = np.random.default_rng(SEED)
    out.mkdir(parents=True, exist_ok=True)
    write(
        out / "tasks.csv",
        [
            " task_id",
            " ad_class ",
            " market ",
            " punish_num ",
            "create_time ",
            " advertiser",
            " ad_revenue",
        ],
        tasks(rng),
    )
    write(
        out / "moderators.csv",
        ["moderator_id ", " market_list ", " accuracy ", " team", " hire_date "],
        moderators(rng),
    )


if __name__ == "__main__":
    main()
