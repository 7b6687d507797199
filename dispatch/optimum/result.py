"""What ``dispatch optimum`` found, and its files: a policy table that loads without pickle.

:class:`OptimumResult` holds the optimal long-run holding cost per minute (with the bounds
that certify it), the truncation study, and the **policy table**: for every state (waiting
tasks per queue, clipped at the buffer, and the joint server state) the id of the joint
decision to take, and what each id means (per group, how many idle reviewers start on each
eligible queue). One ``.npz`` file holds it all: the table as an int16 array and the rest as a
JSON string (``numpy.load(..., allow_pickle=False)`` reads it; nothing in it is code).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dispatch.errors import ConfigError

FORMAT = "dispatch-optimum/1"


@dataclass
class OptimumResult:
    """The optimum of a scenario's network (see :func:`dispatch.optimum.solve_optimum`).

    ``value`` is the optimal long-run average holding cost per minute (the ``holding_cost``
    metric) at the largest buffer solved, ``lower``/``upper`` its certified bounds there;
    ``converged`` says whether the last buffer growth changed it by less than the tolerance.
    """

    scenario: str
    digest: str  # of the network (dispatch.optimum.network.network_digest)
    work_conserving: bool
    value: float
    lower: float
    upper: float
    converged: bool
    buffers: tuple[int, ...]
    queue_names: list[str]
    queue_buckets: list[int]
    arrival: list[float]  # external arrival rate per queue
    abandon: list[float]  # abandonment rate per waiting task per queue
    groups: list[dict[str, Any]]  # name, count, eligible queues
    server_states: list[list[list[int]]]  # per joint state: per group, busy per eligible queue
    actions: list[list[list[int]]]  # per decision id: per group, starts per eligible queue
    study: list[dict[str, float]]
    policy: np.ndarray  # decision id per state, shape (*[b + 1 for b in buffers], S)
    seconds: float = 0.0
    meta: dict[str, Any] = field(default_factory=dict)

    # -- lookup ----------------------------------------------------------------------------
    @property
    def trusted(self) -> tuple[int, ...]:
        """Buffers up to which the table's decisions are used: the previous study step's.

        Near a full buffer the truncated MDP may idle a reviewer on purpose (arrivals to a
        full queue are lost, which is cheap): an artefact that, replayed on unbounded queues,
        can leave work undone for ever. Beyond the previous step's buffers (where the study
        saw the value settle) a state is therefore looked up clipped to them.
        """
        if len(self.study) >= 2:
            return tuple(int(b) for b in self.study[-2]["buffers"])
        return self.buffers

    def state_index(self, waiting: list[int], busy: list[list[int]]) -> tuple[int, ...]:
        """Index into :attr:`policy` of a state (waiting counts clipped at :attr:`trusted`)."""
        key = [min(w, b) for w, b in zip(waiting, self.trusted, strict=True)]
        s = self._server_index().get(tuple(tuple(g) for g in busy))
        if s is None:
            raise ValueError(f"server state {busy} is not in the table")
        return (*key, s)

    def decision(self, waiting: list[int], busy: list[list[int]]) -> list[list[int]]:
        """Per group, how many idle reviewers start on each eligible queue now."""
        return self.actions[int(self.policy[self.state_index(waiting, busy)])]

    def _server_index(self) -> dict[tuple[tuple[int, ...], ...], int]:
        idx = self.meta.get("_server_index")
        if idx is None:
            idx = {tuple(tuple(g) for g in s): i for i, s in enumerate(self.server_states)}
            self.meta["_server_index"] = idx
        return idx

    # -- files -----------------------------------------------------------------------------
    def header(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "scenario": self.scenario,
            "digest": self.digest,
            "work_conserving": self.work_conserving,
            "value": self.value,
            "lower": self.lower,
            "upper": self.upper,
            "converged": self.converged,
            "buffers": list(self.buffers),
            "queue_names": self.queue_names,
            "queue_buckets": self.queue_buckets,
            "arrival": self.arrival,
            "abandon": self.abandon,
            "groups": self.groups,
            "server_states": self.server_states,
            "actions": self.actions,
            "study": self.study,
            "seconds": self.seconds,
        }

    def save(self, path: str | Path) -> Path:
        """Write the table and its description to one ``.npz`` file (atomically)."""
        import os
        import tempfile

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".npz")
        os.close(fd)
        try:
            np.savez_compressed(
                tmp, policy=self.policy.astype(np.int16), header=np.array(json.dumps(self.header()))
            )
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    @classmethod
    def load(cls, path: str | Path) -> OptimumResult:
        """Read a table written by :meth:`save` (no pickle: arrays and a JSON string)."""
        path = Path(path)
        if not path.exists():
            raise ConfigError("no such policy table; run dispatch optimum --out", source=str(path))
        try:
            with np.load(path, allow_pickle=False) as z:
                policy = z["policy"]
                head = json.loads(str(z["header"]))
        except (OSError, ValueError, KeyError) as exc:
            raise ConfigError(
                f"not a policy table of dispatch optimum ({exc})", source=str(path)
            ) from None
        if head.get("format") != FORMAT:
            raise ConfigError(f"unknown table format {head.get('format')!r}", source=str(path))
        head.pop("format")
        head["buffers"] = tuple(head["buffers"])
        return cls(policy=policy, **head)


def study_table(rows: list[dict[str, float]]) -> str:
    """The truncation study as a text table (buffer, states, value, change, ...)."""
    lines = [
        f"{'buffer':>14} {'states':>10} {'value':>12} {'bounds gap':>10} {'change':>9} "
        f"{'iters':>6} {'rounds':>6} {'seconds':>8}"
    ]
    for r in rows:
        change = "-" if math.isnan(r["change"]) else f"{100 * r['change']:.4f}%"
        buf = "x".join(str(b) for b in r["buffers"])
        lines.append(
            f"{buf:>14} {int(r['states']):>10,} {r['value']:>12.6f} "
            f"{r['upper'] - r['lower']:>10.2e} {change:>9} {int(r['iterations']):>6} "
            f"{int(r['rounds']):>6} {r['seconds']:>8.1f}"
        )
    return "\n".join(lines)


def write_study(result: OptimumResult, out: str | Path, extra: list[OptimumResult] = ()) -> Path:
    """``out/``: ``study.json``, ``study.csv``, ``policy.npz`` (+ ``policy_wc.npz``) and a
    figure of the value against the buffer (``study.png``)."""
    import pandas as pd

    from dispatch.io import atomic_write_frame, atomic_write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results = [result, *extra]
    payload = {}
    frames = []
    for r in results:
        tag = "work_conserving" if r.work_conserving else "any"
        head = r.header()
        head.pop("server_states")
        head.pop("actions")
        payload[tag] = head
        df = pd.DataFrame(r.study)
        df.insert(0, "policies", tag)
        df["buffers"] = ["x".join(map(str, b)) for b in df["buffers"]]
        frames.append(df)
        r.save(out / ("policy_wc.npz" if r.work_conserving else "policy.npz"))
    atomic_write_json(out / "study.json", payload)
    atomic_write_frame(out / "study.csv", pd.concat(frames, ignore_index=True))
    _figure(results, out / "study.png")
    return out


def _figure(results: list[OptimumResult], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for r in results:
        x = [max(row["buffers"]) for row in r.study]
        y = [row["value"] for row in r.study]
        label = "work-conserving" if r.work_conserving else "idling allowed"
        ax.plot(x, y, marker="o", label=label)
    ax.set_xlabel("buffer (largest queue)")
    ax.set_ylabel("optimal holding cost per minute")
    ax.set_title(f"{results[0].scenario}: optimum vs truncation")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(f".{path.name}.tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    tmp.replace(path)
