"""Simulate a roster on several seeds and measure every class in every planning interval.

Each seed runs the horizon scenario (lead days first, as warm-up) with the roster's groups and
the plan's dispatcher, under common random numbers: the same seed gives every roster the same
tasks. Tasks are attributed to the interval they arrived in; for each class x interval and
seed the simulator's own definitions give the measured share decided within SLA (tasks still
waiting at the end count as misses once their deadline has passed, and are left out while
it has not), the expired share, the mean wait and the share that waited. Seeds are the
replications: the CI of a measure is a t-interval over the seeds' values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MEASURES = ("sla", "expired", "mean_wait", "delay_prob")
TARGET_OF = {
    "sla": "sla",
    "max_expired": "expired",
    "mean_wait": "mean_wait",
    "max_delay_prob": "delay_prob",
}
HIGHER_IS_BETTER = {"sla": True, "expired": False, "mean_wait": False, "delay_prob": False}
OVERALL = ("objective", "harm_exposure", "reviewer_hours", "sla_breaches", "abandoned")


@dataclass
class Validation:
    """Per measure: ``values[measure]`` is ``[seed, interval, class]`` (NaN: no tasks)."""

    values: dict[str, np.ndarray]
    overall: dict[str, np.ndarray]  # metric -> [seed]
    per_class: dict[str, dict[str, np.ndarray]]  # class -> metric -> [seed]
    seeds: list[int]

    def ci(self, measure: str, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Mean and CI bounds over seeds, ``[interval, class]``."""
        return mean_ci(self.values[measure], level)


def mean_ci(x: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and t-interval over axis 0 ignoring NaN; one finite value gives a zero-width CI."""
    import warnings

    from scipy import stats

    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        n = np.sum(np.isfinite(x), axis=0)
        mean = np.nanmean(np.where(np.isfinite(x), x, np.nan), axis=0) if x.size else x
        sd = np.nanstd(x, axis=0, ddof=1) if x.shape[0] > 1 else np.zeros_like(mean)
        sd = np.where(n > 1, sd, 0.0)
        tq = stats.t.ppf(0.5 + level / 2, np.maximum(n - 1, 1))
        half = tq * sd / np.sqrt(np.maximum(n, 1))
    return mean, mean - half, mean + half


def simulate_roster(
    scenario_data: dict[str, Any],
    dispatcher: tuple[str, dict[str, Any]],
    seeds: list[int],
    interval: int,
    n_intervals: int,
    workers: int = 1,
    progress=None,
) -> Validation:
    """Run every seed (in ``workers`` processes) and collect the measures."""
    jobs = [(scenario_data, dispatcher, s, interval, n_intervals) for s in seeds]
    if workers > 1 and len(seeds) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn")) as ex:
            results = []
            for r in ex.map(run_seed, jobs):
                results.append(r)
                if progress:
                    progress()
    else:
        results = []
        for j in jobs:
            results.append(run_seed(j))
            if progress:
                progress()
    values = {m: np.stack([r["values"][m] for r in results]) for m in MEASURES}
    overall = {k: np.array([r["overall"][k] for r in results]) for k in OVERALL}
    classes = list(results[0]["per_class"])
    per_class = {
        c: {
            k: np.array([r["per_class"][c][k] for r in results]) for k in results[0]["per_class"][c]
        }
        for c in classes
    }
    return Validation(values, overall, per_class, list(seeds))


def _pending_tasks(sim) -> list:
    """Adapter: tasks still waiting or in review at the horizon (engine state)."""
    out = [t for b in sim.buckets for t in b.tasks if t.state == 0]
    out += [r.task for r in sim.reviewers if r.task is not None]
    return out


def run_seed(job) -> dict[str, Any]:
    """One seed: the per-interval measures and the day's headline metrics."""
    import warnings

    from dispatch.policies import make_policy
    from dispatch.scenario import scenario_from_dict
    from dispatch.simulator import Simulation

    data, (name, params), seed, interval, n_int = job
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scen = scenario_from_dict(dict(data))
    sim = Simulation(scen, make_policy(name, **params), seed, record_tasks=True)
    res = sim.run()
    rec = res.records
    K = len(scen.classes)
    warm, horizon = scen.warmup, scen.horizon
    sla = np.array([c.sla for c in scen.classes])
    rec = rec[rec["arrival"] >= warm]
    cls = rec["class_id"].to_numpy()
    idx = ((rec["arrival"].to_numpy() - warm) // interval).astype(int)
    done = (rec["outcome"] == "completed").to_numpy()
    expired = ~done
    on_time = done & (rec["sojourn"].to_numpy() <= sla[cls] + 1e-9)
    wait = rec["wait"].to_numpy()
    shape = (n_int, K)
    closed = _count(idx, cls, np.ones_like(done), shape)
    ontime = _count(idx, cls, on_time, shape)
    exp_n = _count(idx, cls, expired, shape)
    started = _count(idx, cls, done, shape)
    waited = _count(idx, cls, done & (wait > 1e-9), shape)
    wait_sum = _count(idx, cls, np.where(done, wait, 0.0), shape)
    for t in _pending_tasks(sim):
        if t.arrival >= warm and t.deadline < horizon:
            i = int((t.arrival - warm) // interval)
            if i < n_int:
                closed[i, t.cls] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        values = {
            "sla": np.where(closed > 0, ontime / closed, np.nan),
            "expired": np.where(started + exp_n > 0, exp_n / (started + exp_n), np.nan),
            "mean_wait": np.where(started > 0, wait_sum / started, np.nan),
            "delay_prob": np.where(started > 0, waited / started, np.nan),
        }
    per_class = {
        c: {
            k: float(v)
            for k, v in res.per_class[c].items()
            if k in ("sla_attainment", "abandon_rate", "mean_wait", "p_wait", "harm_exposure")
        }
        for c in res.per_class
    }
    overall = {k: float(res.overall.get(k, math.nan)) for k in OVERALL}
    return {"values": values, "overall": overall, "per_class": per_class}


def _count(idx: np.ndarray, cls: np.ndarray, w: np.ndarray, shape) -> np.ndarray:
    ok = (idx >= 0) & (idx < shape[0])
    out = np.zeros(shape)
    np.add.at(out, (idx[ok], cls[ok]), w[ok].astype(float))
    return out
