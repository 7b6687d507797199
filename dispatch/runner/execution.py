"""Executing an experiment grid: cells, the local process pool or Ray, resumption.

Each *cell* is one :func:`~dispatch.simulator.simulate` call. Its result depends only on the
scenario, the policy (name and parameters) and the seed, never on which process ran it or
when, so a run gives the same numbers with 1 worker, 8 workers or a Ray cluster, and any
subset of cells can be recomputed. Each finished cell is written at once, atomically, to its
own small JSON file under ``RUN/cells/``, named by a hash of what determines it (scenario
name and content digest, policy label, name and parameters, seed). Re-running the same
command after an interruption (Ctrl-C, a killed job, a crashed machine) finds those files
and runs only the missing cells: nothing is lost, nothing is counted twice.

A cell's ``objective`` (overall and per class) is scored with the experiment's weights
before the cell is written (:func:`score_cell`), so cell files, tables and the report agree.

Workers and threads
-------------------
The local backend runs cells in a :class:`concurrent.futures.ProcessPoolExecutor` (``spawn``
start method, so it behaves the same on Linux, macOS and Windows and never forks a process
that holds threads). Each worker limits numeric libraries to one thread (one cell per core
is the parallelism; nested thread pools only oversubscribe). ``workers=1`` runs in-process.
The Ray backend sends the same cell function as a remote task; the driver writes all files,
so Ray workers need the ``dispatch`` package and the scenario's data files, but no shared
file system for results.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from dispatch.errors import ConfigError, DispatchError
from dispatch.experiment import ExperimentPlan
from dispatch.io import atomic_write_frame, atomic_write_text
from dispatch.objective import Objective, score

__all__ = [
    "CDF_POINTS",
    "CellFailure",
    "cell_key",
    "cell_specs",
    "done_keys",
    "load_cells",
    "report_failures",
    "run_cell",
    "run_local",
    "run_ray",
    "score_cell",
]

#: Number of points of the waiting-time CDF kept per class (log-spaced minutes).
CDF_POINTS = 120
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

CellFn = Callable[[dict[str, Any]], tuple[dict[str, Any], Any]]
Store = Callable[[dict[str, Any], Any], None]
Fail = Callable[[dict[str, Any], BaseException], None]


class CellFailure(DispatchError):
    """Some cells raised; the finished ones are saved and a rerun retries the rest."""


# -- cells -------------------------------------------------------------------------------------
def cell_key(scenario: str, digest: str, policy: dict[str, Any], seed: int) -> str:
    """Stable file name of a cell: a hash of everything its result depends on."""
    payload = json.dumps(
        {
            "scenario": scenario,
            "digest": digest,
            "policy": policy,
            "seed": int(seed),
            "artefacts": _artefact_fingerprints(policy),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def _artefact_fingerprints(policy: dict[str, Any]) -> dict[str, str]:
    """Content hashes of model files a policy loads (``model``/``path`` params), so a
    re-exported or retrained model at the same path never reuses old cached cells."""
    if policy.get("train") is not None:
        return {}  # a trained arm is identified by its training config instead
    params = policy.get("params") or {}
    out: dict[str, str] = {}
    for name in ("model", "path"):
        value = params.get(name)
        if not isinstance(value, str):
            continue
        p = Path(value)
        files = [p] if p.is_file() else sorted(p.glob("*.zip")) if p.is_dir() else []
        for f in files:
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                    h.update(chunk)
            out[str(f)] = h.hexdigest()[:16]
    return out


def cell_specs(plan: ExperimentPlan, records: bool) -> list[dict[str, Any]]:
    """One picklable job description per cell, in grid order (scenario, policy, seed)."""
    specs = []
    for scen in plan.scenarios:
        for pol in plan.policies:
            for seed in plan.seeds:
                specs.append(
                    {
                        "key": cell_key(scen.name, scen.digest, pol.identity(), seed),
                        "scenario": scen.name,
                        "scenario_data": scen.data,
                        "policy": pol.label,
                        "policy_name": pol.name,
                        "params": dict(pol.params),
                        "seed": int(seed),
                        "records": records,
                        "objective": plan.config.objective.model_dump(),
                    }
                )
    return specs


_SCENARIO_CACHE: dict[str, Any] = {}


def _scenario(data: dict[str, Any]):
    """Validate a scenario mapping once per process (cells of a scenario share it)."""
    import warnings

    from dispatch.scenario import scenario_from_dict

    key = hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()
    scen = _SCENARIO_CACHE.get(key)
    if scen is None:
        with warnings.catch_warnings():  # already reported when the experiment was loaded
            warnings.simplefilter("ignore")
            scen = scenario_from_dict(dict(data))
        _SCENARIO_CACHE[key] = scen
    return scen


def _cdf_on_grid(scen, wait_cdf: dict[str, tuple[list[float], list[float]]]) -> dict[str, Any]:
    """Waiting-time CDFs of every class evaluated on one log-spaced grid of minutes.

    A common grid makes CDFs of different seeds averageable point by point and keeps the
    cell file small. The first grid point (0.01 min) carries the share that never waited.
    """
    import numpy as np

    grid = np.geomspace(0.01, max(scen.horizon, 1.0), CDF_POINTS)
    out: dict[str, list[float] | None] = {}
    for cls, (values, share) in wait_cdf.items():
        if len(values) == 0:
            out[cls] = None
            continue
        idx = np.searchsorted(np.asarray(values), grid, side="right") - 1
        cum = np.asarray(share)
        out[cls] = [float(cum[i]) if i >= 0 else 0.0 for i in idx]
    sla = {c.name: float(c.sla) for c in scen.classes}
    return {"grid": grid.tolist(), "share": out, "sla": sla}


def run_cell(spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """Simulate one cell; return (cell result, per-task records or ``None``).

    A pure function of ``spec``: the same spec gives the same result in any process.
    """
    from dispatch.simulator import simulate

    scen = _scenario(spec["scenario_data"])
    t0 = time.perf_counter()
    res = simulate(
        scen, spec["policy_name"], spec["seed"], record_tasks=spec["records"], **spec["params"]
    )
    cell = {
        "key": spec["key"],
        "scenario": spec["scenario"],
        "policy": spec["policy"],
        "policy_name": spec["policy_name"],
        "params": spec["params"],
        "seed": spec["seed"],
        "describe": res.policy,
        "overall": res.overall,
        "per_class": res.per_class,
        "per_group": res.per_group,
        "timeseries": res.timeseries,
        "wait_cdf": _cdf_on_grid(scen, res.wait_cdf),
        "wall_seconds": time.perf_counter() - t0,
    }
    if "objective" in spec:
        score_cell(cell, Objective.model_validate(spec["objective"]))
    return cell, res.records


def score_cell(cell: dict[str, Any], objective: Objective) -> dict[str, Any]:
    """Score a cell's ``objective`` (overall and every class) with ``objective``'s weights.

    Idempotent (the same weights give the same numbers), so the tables can re-score cells
    written before a cell carried its experiment's weights.
    """
    score(cell["overall"], objective)
    for metrics in cell["per_class"].values():
        score(metrics, objective)
    return cell


def _limit_threads() -> None:
    """One thread per worker for BLAS/OpenMP (and torch, if something imported it).

    The variables take effect for libraries loaded after this call (torch, when a learned
    policy first needs it); libraries already loaded are told directly where they can be.
    """
    for var in _THREAD_VARS:
        os.environ[var] = "1"
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.set_num_threads(1)


@contextlib.contextmanager
def _single_threaded_children() -> Iterator[None]:
    """Processes started inside inherit one-thread settings; this process's are restored.

    Spawned workers import numpy (and its BLAS) before any initializer runs, so the
    variables must already be in the environment they start with.
    """
    saved = {var: os.environ.get(var) for var in _THREAD_VARS}
    os.environ.update({var: "1" for var in _THREAD_VARS})
    try:
        yield
    finally:
        for var, value in saved.items():
            if value is None:
                os.environ.pop(var, None)
            else:
                os.environ[var] = value


def _remote_cell(spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The cell function as run by a Ray worker."""
    _limit_threads()
    return run_cell(spec)


def _nan_from_none(obj: Any) -> Any:
    if obj is None:
        return math.nan
    if isinstance(obj, dict):
        return {k: _nan_from_none(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_nan_from_none(v) for v in obj]
    return obj


def _write_cell(run_dir: Path, cell: dict[str, Any], records: Any) -> None:
    """Save a finished cell (records first: the cell file is the completion marker)."""
    from dispatch.metrics import _clean

    if records is not None:
        atomic_write_frame(run_dir / "records" / f"{cell['key']}.parquet", records)
    text = json.dumps(_clean(cell), separators=(",", ":"), default=str)
    atomic_write_text(run_dir / "cells" / f"{cell['key']}.json", text)


def _read_cell(path: Path) -> dict[str, Any] | None:
    """A cell file, or ``None`` if unreadable (then the cell is simply run again)."""
    try:
        cell = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    for part in ("overall", "per_class", "per_group", "timeseries"):
        cell[part] = _nan_from_none(cell.get(part, {}))
    return cell


def load_cells(run_dir: str | Path, keys: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Cell results of a run folder (all of them, or those of ``keys`` in that order)."""
    cells_dir = Path(run_dir) / "cells"
    paths = (
        sorted(cells_dir.glob("*.json"))
        if keys is None
        else [cells_dir / f"{k}.json" for k in keys]
    )
    out = []
    for p in paths:
        cell = _read_cell(p) if p.exists() else None
        if cell is not None:
            out.append(cell)
    return out


# -- executing the grid ------------------------------------------------------------------------
def done_keys(run_dir: Path) -> set[str]:
    return {p.stem for p in (run_dir / "cells").glob("*.json") if _read_cell(p) is not None}


def run_local(
    specs: list[dict[str, Any]], workers: int, store: Store, fail: Fail, cell_fn: CellFn = run_cell
) -> None:
    """Run ``cell_fn`` on every spec, in this process (``workers=1``) or a process pool;
    each result goes to ``store``, each exception to ``fail`` (the run goes on)."""
    if workers <= 1:
        for spec in specs:
            try:
                cell, records = cell_fn(spec)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - reported per cell, run continues
                fail(spec, exc)
                continue
            store(cell, records)
        return

    import multiprocessing as mp
    from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
    from concurrent.futures.process import BrokenProcessPool

    todo = iter(specs)
    broken = False  # a worker died (killed, out of memory): the pool takes no more work
    with ProcessPoolExecutor(
        max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_limit_threads
    ) as pool:
        running: dict[Any, dict[str, Any]] = {}
        try:
            with _single_threaded_children():  # the pool starts its workers on these submits
                _refill(running, todo, lambda s: pool.submit(cell_fn, s), 2 * workers)
            while running:
                finished, _ = wait(running, return_when=FIRST_COMPLETED)
                for fut in finished:
                    spec = running.pop(fut)
                    try:
                        cell, records = fut.result()
                    except BrokenProcessPool as exc:
                        broken = True
                        fail(spec, exc)
                    except Exception as exc:  # noqa: BLE001
                        fail(spec, exc)
                    else:
                        store(cell, records)
                if not broken:
                    _refill(running, todo, lambda s: pool.submit(cell_fn, s), 2 * workers)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _refill(running: dict, todo: Iterator, submit, limit: int) -> None:
    """Keep at most ``limit`` cells in flight (bounded memory, quick cancellation)."""
    while len(running) < limit:
        spec = next(todo, None)
        if spec is None:
            return
        running[submit(spec)] = spec


def run_ray(
    specs: list[dict[str, Any]],
    workers: int | None,
    address: str | None,
    store: Store,
    fail: Fail,
) -> None:
    """As :func:`run_local`, on a Ray cluster (``address``) or a local Ray instance."""
    try:
        import ray
    except ImportError:
        raise ConfigError(
            "the ray backend needs the optional extra: pip install -e '.[ray]'",
            field="--backend",
        ) from None
    started = False
    if not ray.is_initialized():
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            ray.init(num_cpus=workers or os.cpu_count(), include_dashboard=False)
        started = True
    try:
        remote = ray.remote(num_cpus=1, max_retries=0)(_remote_cell)
        limit = 2 * int(workers or ray.cluster_resources().get("CPU", 1))
        todo = iter(specs)
        running: dict[Any, dict[str, Any]] = {}
        try:
            _refill(running, todo, remote.remote, limit)
            while running:
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    spec = running.pop(ref)
                    try:
                        cell, records = ray.get(ref)
                    except Exception as exc:  # noqa: BLE001
                        fail(spec, exc)
                    else:
                        store(cell, records)
                _refill(running, todo, remote.remote, limit)
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
    finally:
        if started:
            ray.shutdown()


class _NoBar:
    """Stands in for a progress bar when progress is off (no tqdm import, no output)."""

    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, initial: int, name: str, enabled: bool):
    if not enabled:
        return _NoBar()
    import warnings

    with warnings.catch_warnings():  # tqdm.auto falls back to text bars without ipywidgets
        warnings.simplefilter("ignore")
        from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=name, unit="cell", leave=True)


def report_failures(run_dir: Path, failures: list, total: int, missing: int) -> None:
    """Write the tracebacks to ``failures.log`` and raise one summarising line."""
    lines = []
    for spec, exc in failures:
        where = f"{spec['scenario']} / {spec['policy']} / seed {spec['seed']}"
        tb = "".join(traceback.format_exception(exc))
        lines.append(f"== {where} (cell {spec['key']})\n{tb}")
    atomic_write_text(run_dir / "failures.log", "\n".join(lines))
    spec, exc = failures[0]
    not_run = missing - len(failures)
    raise CellFailure(
        f"{len(failures)} of {total} cells failed"
        + (f" and {not_run} did not run" if not_run > 0 else "")
        + f", first {spec['scenario']} / {spec['policy']} / seed {spec['seed']}: "
        f"{type(exc).__name__}: {str(exc).rstrip('.')}. Tracebacks in "
        f"{run_dir / 'failures.log'}; finished cells are saved, so rerunning the same "
        "command runs only the missing ones"
    )
