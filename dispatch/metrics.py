"""What a run measured: throughput, timeliness, audit quality, harm, fairness, wellbeing.

The :class:`Collector` is fed by the simulator at each event; :meth:`Collector.finish`
turns the counters into a :class:`SimResult`. Only tasks that arrive after the warm-up are
counted; memory is constant per task unless per-task records were requested.

Metric keys (``per_class[name]`` and ``overall``):

========================= ===============================================================
key                        meaning
========================= ===============================================================
arrivals                   tasks that arrived after the warm-up (routed follow-ups included)
completed                  of those, decided by a reviewer before the horizon
abandoned                  of those, expired unreviewed (a live stream ended)
in_system                  of those, still waiting or in review at the horizon
conservation_gap           arrivals - completed - abandoned - in_system (always 0)
throughput_per_hour        completed per hour of the measured window
mean_wait, p50/p95/p99_wait  minutes from arrival to start of review (completed tasks)
mean_sojourn, p50/p95/p99_sojourn  minutes from arrival to decision (completed tasks)
p_wait                     share of started tasks that waited at all
sla_attainment             decided within SLA / (completed + abandoned + still waiting
                           past the deadline at the horizon)
sla_breaches               the denominator minus those decided within SLA
abandon_rate               abandoned / (completed + abandoned)
accuracy, precision, recall  of enforcement decisions (positive = enforce)
tp, fp, tn, fn             decision counts
false_enforcements         positive decisions on non-violating content (= fp)
harm_exposure              severity x reach x minutes of violating content up, until
                           correct enforcement or end of life (items, by class of origin)
violating_items            violating content items counted
holding_cost               time-average over the measured window of holding_cost x tasks of
                           the class waiting or in review (every task present counts, also
                           those that arrived during the warm-up); each leg of a routed task
                           counts as a task of its own class; overall: the sum over classes
========================= ===============================================================

Overall only: ``utilisation`` (busy / on-duty reviewer time), ``reviewer_hours``,
``severe_per_reviewer_hour``, ``max_severe_in_hour`` (peak per reviewer rolling hour),
``littles_L`` (time-average tasks in system) and ``littles_lambda_W``, ``littles_gap``,
``objective`` (the weighted cost of :mod:`dispatch.objective`, lower is better).

Per group (``per_group[name]``): ``reviewers``, ``busy_hours`` and ``duty_hours`` (in the
measured window), ``utilisation`` (busy / duty), ``completed`` (of the tasks counted in
``overall.completed``, those this group decided: the groups' figures sum to it).

``holding_cost`` is exact: the per-class counts of tasks in the system are piecewise constant
between events, and their areas are integrated at each arrival, completion and expiry, as
``littles_L`` is (which counts only tasks that arrived after the warm-up). It is the long-run
average cost that ``dispatch optimum`` minimises, so the two can be compared directly.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.model import Item, Reviewer, Task
from dispatch.quantiles import LogHistogram

if TYPE_CHECKING:
    from dispatch.simulator import Simulation


#: Additive counters of a class; the overall figures are their sums.
COUNTERS = (
    "arrivals",
    "completed",
    "abandoned",
    "started",
    "waited",
    "on_time",
    "tp",
    "fp",
    "tn",
    "fn",
    "harm",
    "violating_items",
    "time_in_system",
    "abandon_wait",
    "late_in_system",
)


class ClassStats:
    """Counters and waiting-time histograms of one task class (or of all, summed)."""

    __slots__ = (*COUNTERS, "wait", "sojourn")

    def __init__(self) -> None:
        self.arrivals = 0
        self.completed = 0
        self.abandoned = 0
        self.started = 0
        self.waited = 0
        self.on_time = 0
        self.tp = self.fp = self.tn = self.fn = 0
        self.harm = 0.0
        self.violating_items = 0
        self.wait = LogHistogram()
        self.sojourn = LogHistogram()
        self.time_in_system = 0.0
        self.abandon_wait = 0.0
        self.late_in_system = 0


@dataclass
class SimResult:
    """Metrics of one run. ``overall``/``per_class``/``per_group`` are flat float dicts."""

    scenario: str
    policy: str
    seed: int
    overall: dict[str, float]
    per_class: dict[str, dict[str, float]]
    per_group: dict[str, dict[str, float]]
    timeseries: dict[str, list[float]] = field(default_factory=dict)
    wait_cdf: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)
    records: Any = None  # pandas.DataFrame when per-task records were requested

    def to_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "policy": self.policy,
            "seed": self.seed,
            "overall": self.overall,
            "per_class": self.per_class,
            "per_group": self.per_group,
        }

    def to_json(self, **kw: Any) -> str:
        return json.dumps(_clean(self.to_dict()), **kw)

    def timeseries_frame(self):
        import pandas as pd

        return pd.DataFrame(self.timeseries)


def _clean(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


class Collector:
    """Accumulates counters during a run (called by the simulator only)."""

    def __init__(self, sim: Simulation, record_tasks: bool = False):
        self.sim = sim
        self.warmup = sim.warmup
        self.cls = [ClassStats() for _ in sim.class_names]
        self.record_tasks = record_tasks
        self.records: list[tuple] = []
        self.n_sys = 0
        self.area = 0.0
        self.last_t = sim.warmup
        interval = sim.scenario.sample_interval
        self.interval = interval
        n_bins = int(math.ceil(sim.horizon / interval))
        self.harm_bins = np.zeros(n_bins)
        self.samples: dict[str, list[float]] = {"time": []}
        for c in sim.class_names:
            self.samples[f"backlog_{c}"] = []
        self.samples["in_service"] = []
        self.samples["completed_cum"] = []
        self.samples["reviewers_on_duty"] = []
        self.completed_total = 0
        self.max_severe = 0
        # Holding cost: tasks of each class in the system (waiting or in review, counted or
        # not) and the area under that count since the warm-up, integrated at each event.
        self.holding = [c.holding_cost for c in sim.scenario.classes]
        self.n_cls = [0] * len(sim.class_names)
        self.cls_area = [0.0] * len(sim.class_names)
        self.cls_last = [sim.warmup] * len(sim.class_names)
        self.group_completed = [0] * len(sim.groups)

    # -- events ----------------------------------------------------------------------------
    def start(self) -> None:
        self._sample_event(None)

    def _sample_event(self, _ev) -> None:
        sim = self.sim
        now = sim.now
        s = self.samples
        s["time"].append(now)
        per_cls = [0] * len(sim.class_names)
        for b in sim.buckets:
            per_cls[b.cls] += b.n
        for name, n in zip(sim.class_names, per_cls, strict=True):
            s[f"backlog_{name}"].append(float(n))
        busy = 0
        on = 0
        for r in sim.reviewers:
            busy += r.busy
            on += r.on_duty
        s["in_service"].append(float(busy))
        s["completed_cum"].append(float(self.completed_total))
        s["reviewers_on_duty"].append(float(on))
        if now + self.interval < sim.horizon:
            sim.schedule(now + self.interval, self._sample_event)

    def _tick(self, now: float) -> None:
        if now > self.last_t:
            self.area += self.n_sys * (now - self.last_t)
            self.last_t = now

    def _tick_class(self, ci: int, now: float) -> None:
        """Add the area of class ``ci``'s count up to ``now`` (clipped to the window)."""
        if now > self.cls_last[ci]:
            self.cls_area[ci] += self.n_cls[ci] * (now - self.cls_last[ci])
            self.cls_last[ci] = now

    def on_arrival(self, task: Task, now: float) -> None:
        ci = task.cls
        if now > self.cls_last[ci]:
            self.cls_area[ci] += self.n_cls[ci] * (now - self.cls_last[ci])
            self.cls_last[ci] = now
        self.n_cls[ci] += 1
        if task.counted:
            self.cls[task.cls].arrivals += 1
            t = max(now, self.warmup)
            if t > self.last_t:
                self.area += self.n_sys * (t - self.last_t)
                self.last_t = t
            self.n_sys += 1

    def on_start(self, task: Task, r: Reviewer, now: float) -> None:
        if task.counted:
            cs = self.cls[task.cls]
            cs.started += 1
            w = now - task.arrival
            if w > 0:
                cs.waited += 1
            cs.wait.add(w)
        if task.severe:
            n = r.severe_in_last_hour(now)
            if n > self.max_severe:
                self.max_severe = n

    def on_complete(self, task: Task, r: Reviewer, positive: bool, now: float) -> None:
        self.completed_total += 1
        ci = task.cls
        if now > self.cls_last[ci]:
            self.cls_area[ci] += self.n_cls[ci] * (now - self.cls_last[ci])
            self.cls_last[ci] = now
        self.n_cls[ci] -= 1
        if now > self.warmup:
            r.busy_time += now - (task.start if task.start > self.warmup else self.warmup)
        if task.counted:
            cs = self.cls[task.cls]
            cs.completed += 1
            self.group_completed[r.group.index] += 1
            soj = now - task.arrival
            cs.sojourn.add(soj)
            cs.time_in_system += now - (task.arrival if task.arrival > self.warmup else self.warmup)
            if now <= task.deadline:
                cs.on_time += 1
            if task.item.violating:
                if positive:
                    cs.tp += 1
                else:
                    cs.fn += 1
            elif positive:
                cs.fp += 1
            else:
                cs.tn += 1
            if now > self.last_t:
                self.area += self.n_sys * (now - self.last_t)
                self.last_t = now
            self.n_sys -= 1
        if self.record_tasks:
            self._record(task, now, "completed", positive)

    def on_expire(self, task: Task, now: float) -> None:
        self._tick_class(task.cls, now)
        self.n_cls[task.cls] -= 1
        if task.counted:
            cs = self.cls[task.cls]
            cs.abandoned += 1
            cs.time_in_system += now - max(task.arrival, self.warmup)
            cs.abandon_wait += now - task.arrival
            self._tick(now)
            self.n_sys -= 1
        if self.record_tasks:
            self._record(task, now, "expired", None)

    def on_item_closed(self, item: Item, now: float) -> None:
        """Harm of a violating item whose tasks are all resolved (or at the horizon)."""
        if not item.counted:
            return
        horizon = self.sim.horizon
        end = min(item.end_of_life, horizon)
        if item.enforced_at is not None:
            end = min(end, item.enforced_at)
        start = item.arrival if item.arrival > 0.0 else 0.0  # backlog: from minute 0
        if end <= start:
            return
        rate = item.severity * item.reach
        cs = self.cls[item.cls]
        cs.harm += rate * (end - start)
        cs.violating_items += 1
        w = self.interval
        bins = self.harm_bins
        i0 = int(start // w)
        i1 = min(int(end // w), len(bins) - 1)
        if i0 == i1:
            bins[i0] += rate * (end - start)
        else:
            bins[i0] += rate * ((i0 + 1) * w - start)
            if i1 > i0 + 1:
                bins[i0 + 1 : i1] += rate * w
            bins[i1] += rate * (end - i1 * w)

    def on_duty_change(self, group, on: bool, now: float) -> None:
        pass

    def holding_costs(self, now: float) -> list[float]:
        """Holding cost of each class accrued from the warm-up to ``now``, per minute of the
        measured window (at the horizon: the ``holding_cost`` metric of each class)."""
        window = self.sim.horizon - self.warmup
        out = []
        for ci, h in enumerate(self.holding):
            area = self.cls_area[ci]
            if now > self.cls_last[ci]:
                area += self.n_cls[ci] * (now - self.cls_last[ci])
            out.append(h * area / window if window > 0 else math.nan)
        return out

    def _record(self, task: Task, now: float, outcome: str, positive: bool | None) -> None:
        r = task.reviewer
        parent_root = task.root.id if task.root is not task else -1
        self.records.append(
            (
                task.id,
                task.cls,
                task.market,
                task.bucket,
                task.arrival,
                task.start if task.start >= 0 else math.nan,
                now,
                outcome,
                r.id if r is not None else -1,
                r.group.index if r is not None else -1,
                task.item.violating,
                positive,
                task.risk,
                task.item.severity,
                task.item.reach,
                task.severe,
                parent_root,
                task.counted,
            )
        )

    # -- results ---------------------------------------------------------------------------
    def finish(self, now: float) -> SimResult:
        from dispatch.objective import score

        sim = self.sim
        window = sim.horizon - self.warmup
        hours = window / 60.0
        self._tick(now)
        # Tasks still in the system: time in system truncated at the horizon.
        in_sys = [0] * len(self.cls)
        trunc_time = [0.0] * len(self.cls)
        late = [0] * len(self.cls)
        pending = [t for b in sim.buckets for t in b.tasks if t.state == 0]
        pending += [r.task for r in sim.reviewers if r.task is not None]
        for t in pending:
            if t.counted:
                in_sys[t.cls] += 1
                trunc_time[t.cls] += now - max(t.arrival, self.warmup)
                if t.deadline < now:
                    late[t.cls] += 1
        for ci, n in enumerate(late):
            self.cls[ci].late_in_system = n
        per_class: dict[str, dict[str, float]] = {}
        for ci, name in enumerate(sim.class_names):
            per_class[name] = self._class_metrics(
                self.cls[ci], in_sys[ci], hours, sim.scenario.classes[ci].sla
            )
        holding = self.holding_costs(now)
        for ci, name in enumerate(sim.class_names):
            per_class[name]["holding_cost"] = holding[ci]
        overall = self._overall(per_class, in_sys, trunc_time, hours, window)
        overall["holding_cost"] = float(sum(holding))
        per_group = self._groups(now)
        util_num = sum(g["busy_hours"] for g in per_group.values())
        util_den = sum(g["duty_hours"] for g in per_group.values())
        overall["utilisation"] = util_num / util_den if util_den > 0 else math.nan
        overall["reviewer_hours"] = util_den
        severe = sum(r.severe_done for r in sim.reviewers)
        overall["severe_per_reviewer_hour"] = severe / util_den if util_den > 0 else math.nan
        overall["max_severe_in_hour"] = float(self.max_severe)
        score(overall)  # default weights; experiments re-score with theirs
        ts = dict(self.samples)
        ts = {k: list(v) for k, v in ts.items()}
        times = ts["time"]
        w = self.interval
        cum_harm = np.cumsum(self.harm_bins)
        ts["harm_cum"] = [
            float(cum_harm[min(int(t // w), len(cum_harm) - 1)]) if t > 0 else 0.0 for t in times
        ]
        wait_cdf = {}
        for ci, name in enumerate(sim.class_names):
            x, y = self.cls[ci].wait.cdf()
            wait_cdf[name] = (x.tolist(), y.tolist())
        records = self._records_frame() if self.record_tasks else None
        return SimResult(
            scenario=sim.scenario.name,
            policy=sim.policy.describe(),
            seed=sim.seed,
            overall=overall,
            per_class=per_class,
            per_group=per_group,
            timeseries=ts,
            wait_cdf=wait_cdf,
            records=records,
        )

    @staticmethod
    def _class_metrics(cs: ClassStats, in_sys: int, hours: float, sla: float) -> dict:
        nan = math.nan
        closed = cs.completed + cs.abandoned + cs.late_in_system
        decided = cs.tp + cs.fp + cs.tn + cs.fn
        return {
            "arrivals": float(cs.arrivals),
            "completed": float(cs.completed),
            "abandoned": float(cs.abandoned),
            "in_system": float(in_sys),
            "conservation_gap": float(cs.arrivals - cs.completed - cs.abandoned - in_sys),
            "throughput_per_hour": cs.completed / hours if hours > 0 else nan,
            "mean_wait": cs.wait.mean,
            "p50_wait": cs.wait.quantile(0.5),
            "p95_wait": cs.wait.quantile(0.95),
            "p99_wait": cs.wait.quantile(0.99),
            "mean_sojourn": cs.sojourn.mean,
            "p50_sojourn": cs.sojourn.quantile(0.5),
            "p95_sojourn": cs.sojourn.quantile(0.95),
            "p99_sojourn": cs.sojourn.quantile(0.99),
            "p_wait": cs.waited / cs.started if cs.started else nan,
            "sla_attainment": cs.on_time / closed if closed else nan,
            "sla_breaches": float(closed - cs.on_time),
            "late_in_system": float(cs.late_in_system),
            "abandon_rate": cs.abandoned / (cs.completed + cs.abandoned)
            if cs.completed + cs.abandoned
            else nan,
            "accuracy": (cs.tp + cs.tn) / decided if decided else nan,
            "precision": cs.tp / (cs.tp + cs.fp) if cs.tp + cs.fp else nan,
            "recall": cs.tp / (cs.tp + cs.fn) if cs.tp + cs.fn else nan,
            "tp": float(cs.tp),
            "fp": float(cs.fp),
            "tn": float(cs.tn),
            "fn": float(cs.fn),
            "false_enforcements": float(cs.fp),
            "wrong_decisions": float(cs.fp + cs.fn),
            "harm_exposure": cs.harm,
            "violating_items": float(cs.violating_items),
        }

    def _overall(self, per_class, in_sys, trunc_time, hours, window) -> dict[str, float]:
        tot = ClassStats()
        for cs in self.cls:
            for k in COUNTERS:
                setattr(tot, k, getattr(tot, k) + getattr(cs, k))
            _merge_hist(tot.wait, cs.wait)
            _merge_hist(tot.sojourn, cs.sojourn)
        out = self._class_metrics(tot, sum(in_sys), hours, math.nan)
        lam = tot.arrivals / window if window > 0 else math.nan
        total_time = tot.time_in_system + sum(trunc_time)
        W = total_time / tot.arrivals if tot.arrivals else 0.0
        L = self.area / window if window > 0 else math.nan
        out["abandon_wait_total"] = sum(cs.abandon_wait for cs in self.cls)
        out["littles_L"] = L
        out["littles_lambda_W"] = lam * W
        out["littles_gap"] = abs(L - lam * W) / max(L, 1e-12)
        out["appeals"] = float(
            sum(per_class[n]["arrivals"] for n in per_class if n.startswith("appeal"))
        )
        return out

    def _groups(self, now: float) -> dict[str, dict[str, float]]:
        from dispatch.schedule import duty_minutes

        sim = self.sim
        out = {}
        for g in sim.groups:
            busy = 0.0
            for r in g.members:
                busy += r.busy_time
                if r.busy and r.task is not None and now > self.warmup:
                    busy += now - max(r.task.start, self.warmup)
            done = self.group_completed[g.index]
            duty = duty_minutes(g.spec.shifts, self.warmup, sim.horizon, sim.horizon) * len(
                g.members
            )
            out[g.name] = {
                "reviewers": float(len(g.members)),
                "busy_hours": busy / 60.0,
                "duty_hours": duty / 60.0,
                "utilisation": busy / duty if duty > 0 else math.nan,
                "completed": float(done),
            }
        return out

    def _records_frame(self):
        import pandas as pd

        sim = self.sim
        cols = [
            "task_id",
            "class_id",
            "market_id",
            "bucket",
            "arrival",
            "start",
            "end",
            "outcome",
            "reviewer",
            "group_id",
            "violating",
            "positive",
            "risk",
            "severity",
            "reach",
            "severe",
            "root_id",
            "counted",
        ]
        df = pd.DataFrame.from_records(self.records, columns=cols)
        df["class"] = pd.Categorical.from_codes(df["class_id"], categories=sim.class_names)
        df["market"] = pd.Categorical.from_codes(df["market_id"], categories=sim.market_names)
        df["group"] = [sim.groups[g].name if g >= 0 else None for g in df["group_id"]]
        df["wait"] = df["start"] - df["arrival"]
        df["sojourn"] = df["end"] - df["arrival"]
        return df


def _merge_hist(into: LogHistogram, other: LogHistogram) -> None:
    into.merge(other)
