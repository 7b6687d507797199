"""The ``dispatch`` command line: simulate, calibrate, list policies, run experiments, train,
export.

Every user error (bad file, bad flag) is reported as one line naming the field and the fix,
with exit code 2; no traceback. Heavy imports (torch, stable-baselines3) happen only inside
the commands that need them.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml

from dispatch.errors import ConfigError, DispatchError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Audit task dispatch: simulate, compare, train and export dispatchers.",
    pretty_exceptions_enable=False,
)


def _fail(exc: BaseException) -> None:
    typer.echo(f"error: {exc}", err=True)
    raise typer.Exit(code=2)


def _show_warning(message, category, filename, lineno, file=None, line=None):  # noqa: ARG001
    typer.echo(f"warning: {message}", err=True)


def _parse_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for p in pairs or []:
        if "=" not in p:
            raise ConfigError(f"expected KEY=VALUE, got '{p}'", field=flag)
        k, v = p.split("=", 1)
        try:
            out[k.strip()] = yaml.safe_load(v)
        except yaml.YAMLError:
            raise ConfigError(f"cannot parse value of '{k}'", field=flag) from None
    return out


def run_cli(fn):
    """Decorator: turn DispatchError into a one-line message and exit code 2."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        warnings.showwarning = _show_warning
        try:
            return fn(*args, **kwargs)
        except DispatchError as exc:
            _fail(exc)
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


@app.command()
@run_cli
def simulate(
    scenario: Annotated[Path, typer.Argument(help="Scenario YAML file.")],
    policy: Annotated[str, typer.Option(help="Policy name (see `dispatch policies`).")] = "fifo",
    seed: Annotated[int, typer.Option(help="Seed of all random streams.")] = 0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print one JSON object with overall and per_class.")
    ] = False,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Folder for metrics.json, timeseries.csv, (with --records) tasks.parquet and "
            "(with a data: section) import_report.json/.txt."
        ),
    ] = None,
    records: Annotated[
        bool, typer.Option(help="Keep per-task records (Parquet in --out).")
    ] = False,
    param: Annotated[
        list[str] | None, typer.Option("--param", "-p", help="Policy parameter KEY=VALUE.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Scenario override, dotted path: classes.live_stream.sla=5"),
    ] = None,
    import_report: Annotated[
        bool,
        typer.Option(
            "--import-report/--no-import-report",
            help="Print the import report of a scenario's data: section on stderr "
            "(--out always saves it).",
        ),
    ] = True,
) -> None:
    """Simulate one scenario under one policy and print the metrics."""
    from dispatch.policies import make_policy
    from dispatch.report import metrics_table
    from dispatch.scenario import load_scenario
    from dispatch.simulator import Simulation

    scen = load_scenario(scenario, _parse_pairs(set_, "--set"))
    pol = make_policy(policy, **_parse_pairs(param, "--param"))
    data = None
    if scen.data.task_logs or scen.data.rosters:
        from dispatch.importers import resolve_data

        scen, data = resolve_data(scen)
        if import_report:
            typer.echo(data.report.summary(), err=True)
    result = Simulation(scen, pol, seed, record_tasks=records, data=data).run()
    if out is not None:
        from dispatch.io import write_simulation_outputs

        write_simulation_outputs(result, out)
        if data is not None:
            from dispatch.importers import write_import_report

            write_import_report(data.report, out)
    if json_out:
        sys.stdout.write(result.to_json() + "\n")
    else:
        typer.echo(metrics_table(result))


@app.command()
@run_cli
def calibrate(
    source: Annotated[
        Path,
        typer.Argument(
            help="Calibration config (.yaml) or a tasks.parquet written by "
            "`dispatch simulate --out DIR --records`."
        ),
    ],
    out: Annotated[Path, typer.Option(help="Output folder (written atomically).")],
    name: Annotated[str | None, typer.Option(help="Name of the written scenario.")] = None,
    slot: Annotated[
        float | None, typer.Option(help="Slot of the arrival profile, minutes (divides 1440).")
    ] = None,
    profile: Annotated[
        str | None, typer.Option(help="auto (weekly if the log spans a week), daily or weekly.")
    ] = None,
    criterion: Annotated[
        str | None, typer.Option(help="Handling-time family chosen by aic (default) or ks.")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Config override, dotted path: task_log.window=[0,1440]"),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a non-empty --out folder.")] = False,
    import_report: Annotated[
        bool,
        typer.Option(
            "--import-report/--no-import-report", help="Print the task log's import report."
        ),
    ] = True,
) -> None:
    """Fit a scenario (arrival profiles, handling times, patience, accuracy) to a task log."""
    from dispatch.calibrate import run_calibration

    overrides = _parse_pairs(set_, "--set")
    given = {"name": name, "slot": slot, "profile": profile, "criterion": criterion}
    overrides.update({k: v for k, v in given.items() if v is not None})
    cal = run_calibration(source, out, overrides, overwrite=overwrite)
    if import_report:
        typer.echo(cal.obs.report.summary(), err=True)
    for c in cal.obs.classes:
        p = cal.profiles.classes[c]
        fit = cal.handling.classes.get(c)
        hand = (
            "no handling times"
            if fit is None or fit.chosen is None
            else (f"{fit.chosen.family} mean {fit.chosen.mean:.3g} min cv {fit.chosen.cv:.2g}")
        )
        pat = cal.patience.get(c)
        typer.echo(
            f"{c}: {p.total} arrivals, handling {hand}"
            + (f", patience {pat.mean:.3g} min" if pat else "")
        )
    typer.echo(f"wrote {out}/scenario.yaml, report.md, fit tables and figures")


@app.command()
@run_cli
def policies() -> None:
    """List every available policy: name, what it optimises, its parameters."""
    from dispatch.policies import list_policies

    for name, summary, params in list_policies():
        typer.echo(f"{name}")
        ptxt = "; ".join(f"{k}: {v}" for k, v in params.items()) if params else "no parameters"
        typer.echo(f"    {summary} Parameters: {ptxt}")


@app.command()
@run_cli
def schema() -> None:
    """Print every scenario field, nested, with its type, default and description."""
    from dispatch.schema import schema_lines

    for line in schema_lines():
        typer.echo(line)


# -- further commands register below (run, train, export); keep imports inside functions --


@app.command()
@run_cli
def run(
    experiment: Annotated[Path, typer.Argument(help="Experiment YAML file (experiments/*.yaml).")],
    out: Annotated[
        Path | None, typer.Option(help="Run folder; default runs/<experiment name>.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Cells run in parallel; default: number of CPUs.")
    ] = None,
    backend: Annotated[
        str, typer.Option(help="local (process pool) or ray (needs the ray extra).")
    ] = "local",
    address: Annotated[
        str | None, typer.Option(help="Ray cluster address (with --backend ray); default local.")
    ] = None,
    progress: Annotated[
        bool, typer.Option("--progress/--no-progress", help="Show a progress bar.")
    ] = True,
    wait: Annotated[
        bool,
        typer.Option(
            "--wait",
            help="If another run is writing to the same folder, wait for it (then resume) "
            "instead of refusing.",
        ),
    ] = False,
) -> None:
    """Run an experiment grid (scenario x policy x seed); resumes an interrupted run."""
    import pandas as pd

    from dispatch.runner import run_experiment, summary_table

    run_dir = run_experiment(
        experiment,
        out=out,
        workers=workers,
        backend=backend,
        address=address,
        progress=progress,
        wait=wait,
    )
    summary = pd.read_csv(run_dir / "summary.csv")
    typer.echo(summary_table(summary))
    typer.echo(f"\nrun folder: {run_dir}")


@app.command()
@run_cli
def train(
    config: Annotated[
        Path, typer.Argument(help="Training config YAML (see experiments/train/*.yaml).")
    ],
    out: Annotated[
        Path | None, typer.Option(help="Run folder; default runs/<config name>-<timestamp>.")
    ] = None,
    timesteps: Annotated[
        int | None, typer.Option(help="Override the config's n_timesteps.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Override the config's seed.")] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set", help="Config override, dotted path: hyperparameters.n_steps=256, algo=ppo"
        ),
    ] = None,
) -> None:
    """Train a PPO / MaskablePPO dispatcher and write a run folder (model, stats, history)."""
    import importlib.util
    import json

    if importlib.util.find_spec("stable_baselines3") is None:
        raise ConfigError(
            "training needs the learning extra: pip install -e '.[learn]'", field="train"
        )
    from dispatch.training import train as train_model

    run_dir = train_model(
        config,
        out,
        overrides=_parse_pairs(set_, "--set"),
        timesteps=timesteps,
        seed=seed,
        quiet=False,
    )
    summary = json.loads((run_dir / "summary.json").read_text())
    line = (
        f"trained {summary['algo']} on {summary['scenario']} ({summary['env']}): "
        f"{summary['n_timesteps']} steps in {summary['wall_seconds']:.1f} s"
    )
    best = summary.get("best_eval")
    if best:
        line += f"; best eval cost {best['mean_cost']:.4g} at {int(best['timesteps'])} steps"
    typer.echo(line)
    typer.echo(f"run folder: {run_dir}")


@app.command()
@run_cli
def export(
    source: Annotated[
        Path, typer.Argument(help="Training run folder (dispatch train) or a model .zip in one.")
    ],
    out: Annotated[
        Path, typer.Option(help="Model file to write (.onnx); the sidecar goes to OUT.json.")
    ],
    format_: Annotated[
        str, typer.Option("--format", help="onnx (default; runs with onnxruntime) or torchscript.")
    ] = "onnx",
    opset: Annotated[int, typer.Option(help="ONNX opset (14-20).")] = 17,
    scenario: Annotated[
        Path | None,
        typer.Option(help="Training scenario, for a model file outside a run folder."),
    ] = None,
    vecnormalize: Annotated[
        Path | None,
        typer.Option(
            help="Normalisation statistics (.vecnormalize.json), if not saved next to the model."
        ),
    ] = None,
    trust_model: Annotated[
        bool,
        typer.Option(
            "--trust-model",
            help="Allow a model that needs unpickling (a file from elsewhere; runs code it "
            "holds). Only for files whose source you trust.",
        ),
    ] = False,
) -> None:
    """Export a trained dispatcher to ONNX (+ JSON sidecar) for production without torch."""
    import importlib.util

    if format_ not in ("onnx", "torchscript"):
        raise ConfigError(f"must be onnx or torchscript, got '{format_}'", field="--format")
    if not source.exists():
        raise ConfigError("no such run folder or model file", source=str(source))
    if importlib.util.find_spec("stable_baselines3") is None:
        raise ConfigError(
            "exporting needs the learning extra: pip install -e '.[learn]'", field="export"
        )
    from dispatch.export import export_model, file_sha256

    path = export_model(
        source,
        out,
        format=format_,
        opset=opset,
        scenario=scenario,
        vecnormalize=vecnormalize,
        trust=trust_model,
    )
    typer.echo(f"exported {format_} model: {path} (sha256 {file_sha256(path)[:16]}...)")
    typer.echo(f"sidecar: {path.with_name(path.name + '.json')}")


@app.command()
@run_cli
def optimum(
    scenario: Annotated[
        Path, typer.Argument(help="Scenario YAML file (small exponential network).")
    ],
    work_conserving: Annotated[
        bool,
        typer.Option(
            "--work-conserving",
            help="Only decisions that never idle a reviewer with eligible work.",
        ),
    ] = False,
    both: Annotated[
        bool,
        typer.Option("--both", help="Solve with and without --work-conserving and report both."),
    ] = False,
    buffer: Annotated[
        int | None,
        typer.Option(help="First buffer (waiting tasks per queue); default from the load."),
    ] = None,
    growth: Annotated[float, typer.Option(help="Buffer growth factor per study step.")] = 1.5,
    tol: Annotated[
        float, typer.Option(help="Stop when the value changes by less than this (relative).")
    ] = 1e-3,
    max_states: Annotated[
        int, typer.Option(help="Largest truncated state space to solve.")
    ] = 3_000_000,
    time_limit: Annotated[
        float,
        typer.Option(help="CPU seconds: stop growing when the next solve would not end in time."),
    ] = 600.0,
    out: Annotated[
        Path | None,
        typer.Option(help="Folder for study.json/.csv, study.png and policy.npz (the table)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Scenario override, dotted path: classes.c1.arrivals.rate=1"),
    ] = None,
) -> None:
    """Exact optimal long-run holding cost and policy of a small exponential network."""
    from dispatch.optimum import solve_optimum, study_table, write_study
    from dispatch.scenario import load_scenario

    scen = load_scenario(scenario, _parse_pairs(set_, "--set"))
    if tol <= 0:
        raise ConfigError("must be > 0", field="--tol")
    modes = [False, True] if both else [work_conserving]
    results = []
    for wc in modes:
        label = "work-conserving" if wc else "idling allowed"
        typer.echo(f"{scen.name}: optimum over {label} policies (truncation study)")

        def show(row: dict) -> None:
            change = (
                "" if row["change"] != row["change"] else f", change {100 * row['change']:.4f}%"
            )
            typer.echo(
                f"  buffer {row['buffers'][0]}: {row['states']:,} states, value "
                f"{row['value']:.6f}{change} ({row['seconds']:.1f} s)"
            )

        res = solve_optimum(
            scen,
            work_conserving=wc,
            buffer=buffer,
            growth=growth,
            rtol=tol,
            max_states=max_states,
            time_limit=time_limit,
            progress=show,
        )
        results.append(res)
        typer.echo(study_table(res.study))
        verdict = (
            "converged" if res.converged else "NOT converged (raise --time-limit/--max-states)"
        )
        typer.echo(
            f"optimal holding cost per minute: {res.value:.6f} (bounds {res.lower:.6f} .. "
            f"{res.upper:.6f} at buffer {res.buffers[0]}; {verdict}; {res.seconds:.1f} CPU s)\n"
        )
    if both:
        a, b = results
        typer.echo(
            f"work-conserving optimum {b.value:.6f} vs idling allowed {a.value:.6f}: "
            f"{100 * (b.value - a.value) / a.value:+.4f}%"
        )
    if out is not None:
        write_study(results[0], out, results[1:])
        typer.echo(f"study, figure and policy table: {out}")


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()


@app.command()
@run_cli
def plan(
    plan_file: Annotated[Path, typer.Argument(help="Plan YAML file (see README).")],
    out: Annotated[Path | None, typer.Option(help="Plan folder; default runs/plan_<name>.")] = None,
    workers: Annotated[int, typer.Option(help="Processes simulating seeds.")] = 1,
    time_limit: Annotated[
        float | None, typer.Option(help="CP-SAT seconds per roster solve (default: plan file).")
    ] = None,
    seeds: Annotated[
        list[int] | None, typer.Option("--seeds", help="Seeds to simulate (repeat the flag).")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", help="Plan override, dotted path: solver.workers=1")
    ] = None,
    figures: Annotated[bool, typer.Option(help="Write PNG figures.")] = True,
) -> None:
    """Plan the workforce: requirements, a CP-SAT roster, simulated until targets hold."""
    from dispatch.plan import load_plan
    from dispatch.plan.output import plan_summary, write_plan
    from dispatch.plan.pipeline import make_plan

    cfg = load_plan(plan_file, _parse_pairs(set_, "--set"))
    result = make_plan(cfg, workers=workers, seeds=seeds, time_limit=time_limit, progress=True)
    folder = write_plan(result, out or Path("runs") / f"plan_{cfg.name}", figures=figures)
    s = plan_summary(result)
    typer.echo(
        f"plan {cfg.name}: {s['paid_hours']:,.1f} paid reviewer-hours, cost {s['cost']:,.0f}, "
        f"{s['headcount_total']} people; solver {s['solver']['status']} gap "
        f"{100 * s['solver']['gap']:.2f}%; targets {'met' if s['targets_met'] else 'NOT all met'}"
        f" ({len(s['unmet'])} class x interval misses) -> {folder}"
    )
