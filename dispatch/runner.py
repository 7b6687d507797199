"""Run an experiment grid (scenario x policy x seed), resumably, on one machine or a Ray cluster.

How a run is organised
----------------------
Each *cell* is one :func:`~dispatch.simulator.simulate` call. Its result depends only on the
scenario, the policy (name and parameters) and the seed, never on which process ran it or
when, so a run gives the same numbers with 1 worker, 8 workers or a Ray cluster, and any
subset of cells can be recomputed. Each finished cell is written at once, atomically, to its
own small JSON file under ``RUN/cells/``, named by a hash of what determines it (scenario
name and content digest, policy label, name and parameters, seed). Re-running the same
command after an interruption (Ctrl-C, a killed job, a crashed machine) finds those files
and runs only the missing cells: nothing is lost, nothing is counted twice.

The run folder (``runs/<experiment name>/`` unless ``out`` is given) holds::

    config.resolved.yaml   the experiment as run (defaults filled in, scenario digests)
    versions.json          Python and library versions, git revision, platform
    seeds.json             the seeds (shared by all policies: common random numbers)
    cells/*.json           one file per finished cell (overall, per-class, per-group
                           metrics, timeseries, waiting-time CDFs)
    models/                trained models of ``train:`` policies
    records/*.parquet      per-task records, when ``outputs.records`` is on
    results.parquet/.csv   one row per cell: scenario, policy, seed, every metric
    summary.csv            mean and 95% CI per scenario x policy x metric
    paired.csv             paired differences against the baseline (same seeds)
    figures/*.png          see dispatch.figures
    report.md              headline, configuration, tables and figures

A folder that already holds a run of a *different* configuration is refused (so results of
two experiments never mix); :meth:`ExperimentPlan.resolved` says what counts as different.

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
import importlib
import json
import math
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import yaml

from dispatch.errors import ConfigError, DispatchError
from dispatch.experiment import Experiment, ExperimentPlan, PolicyPlan, load_experiment
from dispatch.io import atomic_write_frame, atomic_write_json, atomic_write_text
from dispatch.provenance import EXPERIMENT_PACKAGES, versions

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CellFailure",
    "aggregate",
    "cell_key",
    "headline",
    "load_cells",
    "load_results",
    "paired_results",
    "paired_table",
    "report_markdown",
    "results_frame",
    "run_cell",
    "run_experiment",
    "summarise_results",
    "summary_table",
]

Backend = Literal["local", "ray"]
ID_COLUMNS = ["scenario", "policy", "seed"]
#: Number of points of the waiting-time CDF kept per class (log-spaced minutes).
CDF_POINTS = 120
_THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


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


def _cell_specs(plan: ExperimentPlan, records: bool) -> list[dict[str, Any]]:
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
    return cell, res.records


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
def _done_keys(run_dir: Path) -> set[str]:
    return {p.stem for p in (run_dir / "cells").glob("*.json") if _read_cell(p) is not None}


def _run_local(
    specs: list[dict[str, Any]], workers: int, store: Callable[[dict, Any], None], fail
) -> None:
    if workers <= 1:
        for spec in specs:
            try:
                cell, records = run_cell(spec)
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
                _refill(running, todo, lambda s: pool.submit(run_cell, s), 2 * workers)
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
                    _refill(running, todo, lambda s: pool.submit(run_cell, s), 2 * workers)
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


def _run_ray(
    specs: list[dict[str, Any]],
    workers: int | None,
    address: str | None,
    store: Callable[[dict, Any], None],
    fail,
) -> None:
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


# -- the run folder ----------------------------------------------------------------------------
def _prepare_run_dir(plan: ExperimentPlan, run_dir: Path) -> None:
    """Create the folder, or check that it holds a run of this very configuration."""
    cfg_path = run_dir / "config.resolved.yaml"
    resolved = plan.resolved()
    if run_dir.exists() and any(run_dir.iterdir()):
        if not cfg_path.exists():
            raise ConfigError(
                f"run folder {run_dir} exists and is not a run of this experiment; "
                "choose another with --out or delete it",
                field="--out",
            )
        try:
            old = yaml.safe_load(cfg_path.read_text()) or {}
        except yaml.YAMLError:
            old = {}
        if old.get("fingerprint") != resolved["fingerprint"]:
            raise ConfigError(
                f"run folder {run_dir} holds a run of a different configuration "
                f"(scenarios, policies, seeds, objective, metrics or baseline changed); "
                "use --out for a new folder, or delete the old one to start afresh",
                field="--out",
            )
    atomic_write_text(cfg_path, yaml.safe_dump(resolved, sort_keys=False))


def _train(plan: ExperimentPlan, run_dir: Path, progress: bool) -> dict[str, dict[str, Any]]:
    """Train the ``train:`` policies (once per run folder); their runtime parameters."""
    extra: dict[str, dict[str, Any]] = {}
    for pol in plan.policies:
        if pol.train is None:
            continue
        extra[pol.label] = {"model": str(_trained_model(pol, run_dir, progress))}
    return extra


def _trained_model(pol: PolicyPlan, run_dir: Path, progress: bool) -> Path:
    """The model folder of a ``train:`` policy, training it unless this run already did.

    ``models/<label>.json`` records a finished training (with the training config's digest,
    so an edited config trains again); a ``model.zip`` without that record is a training
    that finished just before an interruption and is adopted as is.
    """
    marker = run_dir / "models" / f"{pol.label}.json"
    if marker.exists():
        info = json.loads(marker.read_text())
        if info.get("train_digest") == pol.train_digest and Path(info["model"]).exists():
            return Path(info["model"])
    try:
        training = importlib.import_module("dispatch.training")
    except ImportError as exc:
        raise ConfigError(
            f"policy '{pol.label}' needs dispatch.training, which failed to import ({exc}); "
            "install the learning extra: pip install -e '.[learn]'",
            field="policies",
        ) from None
    target = run_dir / "models" / pol.label
    if (target / "model.zip").exists():
        model = target  # trained before an interruption, the marker not yet written
    else:
        if progress:
            print(f"training '{pol.label}' from {pol.train} -> {target}", file=sys.stderr)
        result = training.train(pol.train, out=target, overrides=pol.train_overrides or None)
        model = Path(result) if isinstance(result, str | os.PathLike) else target
    atomic_write_json(
        marker,
        {"model": str(model.resolve()), "train": pol.train, "train_digest": pol.train_digest},
    )
    return model.resolve()


def _resolve_plan(path_or_config: Any) -> ExperimentPlan:
    if isinstance(path_or_config, ExperimentPlan):
        return path_or_config
    if isinstance(path_or_config, str | Path | dict | Experiment):
        return load_experiment(path_or_config)
    raise TypeError(f"expected a path, a mapping or an Experiment, got {type(path_or_config)}")


def run_experiment(
    path_or_config: str | Path | dict[str, Any] | Experiment | ExperimentPlan,
    out: Path | str | None = None,
    workers: int | None = None,
    backend: Backend = "local",
    address: str | None = None,
    progress: bool = True,
) -> Path:
    """Run (or resume) an experiment and write its tables, figures and report.

    Parameters
    ----------
    path_or_config
        Experiment YAML file, a mapping with its fields, or an already loaded plan.
    out
        Run folder; default ``runs/<experiment name>``.
    workers
        Parallel cells; default ``os.cpu_count()``. ``1`` runs in this process.
    backend
        ``"local"`` (process pool) or ``"ray"`` (``ray.init(address)``, or a local Ray
        instance with ``workers`` CPUs when ``address`` is ``None``).
    address
        Ray cluster address (``"auto"``, ``"ray://host:10001"``); only for ``backend="ray"``.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    ConfigError
        Invalid experiment, or a run folder holding a different configuration; raised
        before anything is written.
    CellFailure
        Some cells raised. Every other cell is saved; rerunning retries only the failed.
    """
    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend '{backend}'; use local or ray", field="--backend")
    if address and backend != "ray":
        raise ConfigError("--address only applies with --backend ray", field="--address")
    if workers is not None and workers < 1:
        raise ConfigError("must be at least 1", field="--workers")
    plan = _resolve_plan(path_or_config)
    run_dir = Path(out) if out is not None else Path("runs") / plan.name
    _prepare_run_dir(plan, run_dir)
    atomic_write_json(run_dir / "versions.json", versions(EXPERIMENT_PACKAGES))
    atomic_write_json(
        run_dir / "seeds.json",
        {
            "seeds": plan.seeds,
            "note": "every policy of a scenario runs with these seeds (common random numbers)",
        },
    )
    extra = _train(plan, run_dir, progress)
    specs = _cell_specs(plan, plan.config.outputs.records)
    for spec in specs:
        spec["params"] = {**spec["params"], **extra.get(spec["policy"], {})}
    done = _done_keys(run_dir)
    todo = [s for s in specs if s["key"] not in done]

    bar = _progress_bar(len(specs), len(specs) - len(todo), plan.name, progress)
    failures: list[tuple[dict[str, Any], BaseException]] = []

    def store(cell: dict[str, Any], records: Any) -> None:
        _write_cell(run_dir, cell, records)
        bar.update(1)

    def fail(spec: dict[str, Any], exc: BaseException) -> None:
        failures.append((spec, exc))
        bar.update(1)

    t0 = time.perf_counter()
    try:
        if todo:
            n = workers or os.cpu_count() or 1
            if backend == "ray":
                _run_ray(todo, workers, address, store, fail)
            else:
                _run_local(todo, min(n, len(todo)), store, fail)
    finally:
        bar.close()
    done = _done_keys(run_dir)
    missing = sum(1 for spec in specs if spec["key"] not in done)
    if failures or missing:
        if not failures:  # pragma: no cover - every missing cell is stored or failed
            raise CellFailure(f"{missing} cells have no result; rerun the same command")
        _report_failures(run_dir, failures, len(specs), missing)
    (run_dir / "failures.log").unlink(missing_ok=True)  # from an earlier, failed attempt
    aggregate(run_dir, plan, wall_seconds=time.perf_counter() - t0)
    return run_dir


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


def _report_failures(run_dir: Path, failures: list, total: int, missing: int) -> None:
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


# -- tables ------------------------------------------------------------------------------------
def results_frame(plan: ExperimentPlan, cells: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per cell: ids, every overall metric, ``class.metric``, ``group.G.metric``.

    ``objective`` (overall and per class) is recomputed with the experiment's weights.
    Rows are in grid order, so the table does not depend on the order cells finished in.
    """
    import pandas as pd

    weights = plan.config.objective
    rows = []
    for cell in cells:
        row: dict[str, Any] = {
            "scenario": cell["scenario"],
            "policy": cell["policy"],
            "seed": int(cell["seed"]),
        }
        overall = dict(cell["overall"])
        overall["objective"] = weights.cost(overall)
        row.update(overall)
        for cls, m in cell["per_class"].items():
            m = {**m, "objective": weights.cost(m)}
            row.update({f"{cls}.{k}": v for k, v in m.items()})
        for grp, m in cell["per_group"].items():
            row.update({f"group.{grp}.{k}": v for k, v in m.items()})
        rows.append(row)
    df = pd.DataFrame(rows)
    if df.empty:
        return df
    df = _ordered(df, plan, extra=["seed"]).reset_index(drop=True)
    metric_cols = [c for c in df.columns if c not in ID_COLUMNS]
    df[metric_cols] = df[metric_cols].astype(float)
    return df


def _ordered(df: pd.DataFrame, plan: ExperimentPlan, extra: list[str] = ()) -> pd.DataFrame:
    """Sort a summary-like frame by scenario and policy in config order, then metric."""
    order_s = {s.name: i for i, s in enumerate(plan.scenarios)}
    order_p = {p.label: i for i, p in enumerate(plan.policies)}
    order_m = {m: i for i, m in enumerate(plan.metrics)}
    maps = {"scenario": order_s, "policy": order_p, "metric": order_m}
    cols = [c for c in ("scenario", "policy", *extra, "metric") if c in df.columns]
    return df.sort_values(cols, key=lambda c: c.map(maps[c.name]) if c.name in maps else c)


def summarise_results(plan: ExperimentPlan, results: pd.DataFrame) -> pd.DataFrame:
    """Mean and 95% CI of each summary metric per scenario x policy (dispatch.stats)."""
    from dispatch.stats import summarise

    df = summarise(results, ["scenario", "policy"], plan.metrics)
    return _ordered(df, plan).reset_index(drop=True)


def paired_results(plan: ExperimentPlan, results: pd.DataFrame) -> pd.DataFrame:
    """Paired differences (policy - baseline, same seeds) per scenario and metric."""
    from dispatch.stats import paired_summary

    df = paired_summary(
        results,
        by="policy",
        baseline=plan.baseline,
        seed_col="seed",
        metric_cols=plan.metrics,
        group_cols=["scenario"],
    )
    return _ordered(df, plan).reset_index(drop=True)


def aggregate(run_dir: Path, plan: ExperimentPlan, wall_seconds: float | None = None) -> None:
    """Write results, summary, paired differences, figures and the report of a run."""
    specs = _cell_specs(plan, False)
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


def load_results(run_dir: str | Path) -> pd.DataFrame:
    """``results.parquet`` of a finished run."""
    import pandas as pd

    return pd.read_parquet(Path(run_dir) / "results.parquet")


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
    lines += ["## Configuration", ""]
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
    lines += [f"- cells: {n_cells} ({len(results)} with results){timing}", ""]
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
