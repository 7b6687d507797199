"""Run an experiment grid (scenario x policy x seed), resumably, on one machine or a Ray cluster.

:func:`run_experiment` is the entry point (``dispatch run``). The work is split in four
modules, in the order a run uses them:

=============================  ==============================================================
:mod:`dispatch.runner.folder`  one configuration per run folder; models of ``train:`` arms
:mod:`~.execution`             cells (one ``simulate`` call each), the local process pool or
                               Ray, resumption from the cell files (how: see that module)
:mod:`~.results`               results, summary and paired-difference tables
:mod:`~.report`                Markdown tables, headline, figures and ``report.md``
=============================  ==============================================================

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
    .lock                  while a run writes to it (dispatch.lock)

A folder that already holds a run of a *different* configuration is refused (so results of
two experiments never mix); :meth:`ExperimentPlan.resolved` says what counts as different.
A folder that another process is running into is refused too, or waited for
(``wait=True``, ``dispatch run --wait``); a lock left by a killed process is taken over.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any, Literal

from dispatch.errors import ConfigError
from dispatch.experiment import Experiment, ExperimentPlan, load_experiment
from dispatch.io import atomic_write_json
from dispatch.lock import FolderLock
from dispatch.provenance import EXPERIMENT_PACKAGES, versions
from dispatch.runner.execution import (
    CellFailure,
    _progress_bar,
    _write_cell,
    cell_key,
    cell_specs,
    done_keys,
    load_cells,
    report_failures,
    run_cell,
    run_local,
    run_ray,
)
from dispatch.runner.folder import prepare_run_dir, train_arms
from dispatch.runner.report import (
    aggregate,
    headline,
    paired_table,
    report_markdown,
    summary_table,
)
from dispatch.runner.results import (
    ID_COLUMNS,
    load_results,
    paired_results,
    results_frame,
    summarise_results,
)

__all__ = [
    "ID_COLUMNS",
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
    wait: bool = False,
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
    wait
        If another process is running into the same folder, wait for it to finish
        (then resume: only cells it did not write are run) instead of refusing.

    Returns
    -------
    Path
        The run folder.

    Raises
    ------
    ConfigError
        Invalid experiment, a run folder holding a different configuration, or one that
        another process is writing to (see :mod:`dispatch.lock`); raised before anything
        is written.
    CellFailure
        Some cells raised. Every other cell is saved; rerunning retries only the failed.
    """
    _check_options(workers, backend, address)
    plan = _resolve_plan(path_or_config)
    run_dir = Path(out) if out is not None else Path("runs") / plan.name
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{run_dir} is a file; give a folder for the run", field="--out")
    with FolderLock(run_dir).acquire(wait=wait, on_wait=_say_waiting if progress else None):
        prepare_run_dir(plan, run_dir)
        atomic_write_json(run_dir / "versions.json", versions(EXPERIMENT_PACKAGES))
        atomic_write_json(
            run_dir / "seeds.json",
            {
                "seeds": plan.seeds,
                "note": "every policy of a scenario runs with these seeds (common random numbers)",
            },
        )
        extra = train_arms(plan, run_dir, progress)
        t0 = time.perf_counter()
        _run_cells(plan, run_dir, extra, workers, backend, address, progress)
        aggregate(run_dir, plan, wall_seconds=time.perf_counter() - t0)
    return run_dir


def _check_options(workers: int | None, backend: str, address: str | None) -> None:
    if backend not in ("local", "ray"):
        raise ConfigError(f"unknown backend '{backend}'; use local or ray", field="--backend")
    if address and backend != "ray":
        raise ConfigError("--address only applies with --backend ray", field="--address")
    if workers is not None and workers < 1:
        raise ConfigError("must be at least 1", field="--workers")


def _say_waiting(holder: str) -> None:
    print(f"waiting for the run folder's lock, held by {holder}", file=sys.stderr)


def _run_cells(
    plan: ExperimentPlan,
    run_dir: Path,
    extra: dict[str, dict[str, Any]],
    workers: int | None,
    backend: Backend,
    address: str | None,
    progress: bool,
) -> None:
    """Run the cells that have no result yet; raise :class:`CellFailure` if some fail."""
    specs = cell_specs(plan, plan.config.outputs.records)
    for spec in specs:
        spec["params"] = {**spec["params"], **extra.get(spec["policy"], {})}
    done = done_keys(run_dir)
    todo = [s for s in specs if s["key"] not in done]

    bar = _progress_bar(len(specs), len(specs) - len(todo), plan.name, progress)
    failures: list[tuple[dict[str, Any], BaseException]] = []

    def store(cell: dict[str, Any], records: Any) -> None:
        _write_cell(run_dir, cell, records)
        bar.update(1)

    def fail(spec: dict[str, Any], exc: BaseException) -> None:
        failures.append((spec, exc))
        bar.update(1)

    try:
        if todo:
            n = workers or os.cpu_count() or 1
            if backend == "ray":
                run_ray(todo, workers, address, store, fail)
            else:
                run_local(todo, min(n, len(todo)), store, fail, cell_fn=run_cell)
    finally:
        bar.close()
    done = done_keys(run_dir)
    missing = sum(1 for spec in specs if spec["key"] not in done)
    if failures or missing:
        if not failures:  # pragma: no cover - every missing cell is stored or failed
            raise CellFailure(f"{missing} cells have no result; rerun the same command")
        report_failures(run_dir, failures, len(specs), missing)
    (run_dir / "failures.log").unlink(missing_ok=True)  # from an earlier, failed attempt
