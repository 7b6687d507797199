"""Experiment files: which scenarios, which policies, which seeds, and what to report.

An experiment is a grid: every scenario x every policy x every seed is one *cell*, one call
of :func:`dispatch.simulator.simulate`. Because every policy of a scenario runs with the same
seeds, they face the same arrivals, task sizes and reviewer decisions (common random numbers),
so differences between policies are paired and their confidence intervals are narrow.

A minimal file::

    name: quickstart
    scenarios:
      - path: scenarios/ecommerce_day.yaml          # relative to this file (or the cwd)
        overrides: {horizon: 720}                   # dotted paths, as `dispatch simulate --set`
    policies:
      - name: fifo                                  # label defaults to the name
      - {label: priority_live_first, name: priority, params: {order: [live_stream]}}
      - {label: ppo, train: train/maskable_ecommerce.yaml}   # train first, then evaluate
    seeds: {start: 0, count: 5}                     # or an explicit list: [0, 1, 2]
    baseline: fifo                                  # default: the first policy
    objective: {harm: 1.0, sla_breach: 1.0}         # weights of dispatch.objective.Objective
    metrics: [objective, harm_exposure, live_stream.p95_wait]
    outputs: {figures: true, report: true, records: false}

Everything is checked by :func:`load_experiment` before anything is written: unknown keys,
scenario files (loaded and validated with their overrides), policy names and parameters (each
policy is built once and bound to each scenario), metric names, the baseline label, and, for
``train:`` entries, that the training module and the ``learned`` policy exist. Every problem
is one :class:`~dispatch.errors.ConfigError` line naming the file, the field and the fix (the checks that ask other modules, metric
names and policy parameters, live in :mod:`dispatch.experiment_checks`).

Relative paths (scenario files, training configs) are looked up next to the experiment file
first, then in the current directory, so both ``scenarios/x.yaml`` and
``experiments/scenarios/x.yaml`` work from the repository root.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatch.errors import ConfigError
from dispatch.experiment_checks import bare_message, check_metrics, check_policy, known_metrics
from dispatch.io import find_file
from dispatch.objective import Objective
from dispatch.scenario import (
    Scenario,
    apply_overrides,
    format_validation_error,
    read_yaml,
    scenario_from_dict,
)

__all__ = [
    "DEFAULT_METRICS",
    "Experiment",
    "ExperimentPlan",
    "PolicyPlan",
    "PolicySpec",
    "ScenarioPlan",
    "ScenarioSpec",
    "SeedRange",
    "known_metrics",
    "load_experiment",
]

_STRICT = ConfigDict(extra="forbid")

#: Overall metrics summarised when an experiment does not name its own.
DEFAULT_METRICS: list[str] = [
    "objective",
    "harm_exposure",
    "sla_attainment",
    "mean_wait",
    "p95_wait",
    "throughput_per_hour",
    "accuracy",
    "recall",
    "false_enforcements",
    "abandoned",
    "utilisation",
]

#: The policy registered by the learning modules: evaluated after a ``train:`` entry.
LEARNED_POLICY = "learned"
TRAINING_MODULE = "dispatch.training"


# -- the file schema ---------------------------------------------------------------------------
class ScenarioSpec(BaseModel):
    """One scenario of the grid: a scenario file plus dotted-path overrides."""

    model_config = _STRICT
    name: str | None = Field(
        default=None, description="Label in tables and figures; default: the scenario's name."
    )
    path: str = Field(description="Scenario YAML file.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Dotted-path overrides, e.g. {horizon: 240}."
    )
    roster: str | None = Field(
        default=None,
        description="A roster.yaml (or plan folder from `dispatch plan`) whose reviewers: "
        "replace the scenario's, so rosters x dispatchers compare in one grid.",
    )


class PolicySpec(BaseModel):
    """One arm of the comparison: a registered policy, or a model to train first.

    Either ``name`` (+ ``params``) of a registered policy, or ``train``: the path of a
    training config for :mod:`dispatch.training`; the trained model is then evaluated as the
    ``learned`` policy with ``model=<trained run folder>`` (plus any ``params``).
    """

    model_config = _STRICT
    label: str | None = Field(default=None, description="Name in tables; default: name.")
    name: str | None = Field(default=None, description="Registered policy name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Policy parameters.")
    train: str | None = Field(default=None, description="Training config to train first.")
    train_overrides: dict[str, Any] = Field(
        default_factory=dict, description="Overrides passed to dispatch.training.train."
    )

    @model_validator(mode="after")
    def _one_source(self) -> PolicySpec:
        if (self.name is None) == (self.train is None):
            raise ValueError(
                "give either 'name' (a registered policy) or 'train' (a training config)"
            )
        if self.train_overrides and self.train is None:
            raise ValueError("'train_overrides' only applies together with 'train'")
        if self.label is None:
            self.label = self.name if self.name is not None else Path(self.train).stem
        if not re.fullmatch(r"[A-Za-z0-9_.+\-]+", self.label):
            raise ValueError(
                f"label '{self.label}' may use only letters, digits and _ . + - "
                "(it names files and columns)"
            )
        return self


class SeedRange(BaseModel):
    """Seeds ``start, start + 1, ..., start + count - 1``."""

    model_config = _STRICT
    start: int = Field(default=0, ge=0)
    count: int = Field(ge=1, description="Number of seeds (replications).")


class Outputs(BaseModel):
    """Optional outputs. The results, summary and paired tables are always written."""

    model_config = _STRICT
    figures: bool = Field(default=True, description="PNG figures under figures/.")
    report: bool = Field(default=True, description="report.md with tables and figures.")
    records: bool = Field(
        default=False,
        description="Per-task records of every cell computed while on, under records/ "
        "(Parquet; large).",
    )


class Experiment(BaseModel):
    """An experiment file (see the module docstring)."""

    model_config = _STRICT
    name: str = Field(pattern=r"^[A-Za-z0-9_.\-]+$", description="Names the run folder.")
    description: str = ""
    scenarios: list[ScenarioSpec] = Field(min_length=1)
    policies: list[PolicySpec] = Field(min_length=1)
    seeds: list[int] | SeedRange = Field(description="Seed list, or {start, count}.")
    baseline: str | None = Field(default=None, description="Policy label; default: first.")
    objective: Objective = Field(default_factory=Objective)
    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    outputs: Outputs = Field(default_factory=Outputs)

    @model_validator(mode="after")
    def _default_baseline(self) -> Experiment:
        if self.baseline is None:
            self.baseline = self.policies[0].label
        return self

    def seed_list(self) -> list[int]:
        if isinstance(self.seeds, SeedRange):
            return list(range(self.seeds.start, self.seeds.start + self.seeds.count))
        return list(self.seeds)


def _cross_check(cfg: Experiment, source: str | None) -> None:
    """Checks across fields, each reported against the field to fix."""
    labels = [p.label for p in cfg.policies]
    dup = sorted({x for x in labels if labels.count(x) > 1})
    if dup:
        raise ConfigError(
            f"labels {dup} repeat; give each policy a distinct 'label'",
            source=source,
            field="policies",
        )
    if cfg.baseline not in labels:
        raise ConfigError(
            f"'{cfg.baseline}' is not a policy label; choose one of {labels}",
            source=source,
            field="baseline",
        )
    seeds = cfg.seed_list()
    if any(s < 0 for s in seeds):
        raise ConfigError("seeds must be non-negative integers", source=source, field="seeds")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ConfigError(
            "give a non-empty list of seeds without repeats", source=source, field="seeds"
        )
    if len(set(cfg.metrics)) != len(cfg.metrics):
        raise ConfigError("list each metric once", source=source, field="metrics")


# -- the resolved plan -------------------------------------------------------------------------
@dataclass
class ScenarioPlan:
    """A validated scenario of the grid, ready to ship to workers."""

    name: str
    path: str
    overrides: dict[str, Any]
    data: dict[str, Any]  # the raw mapping after overrides, with base_dir set
    digest: str
    scenario: Scenario = field(repr=False)


@dataclass
class PolicyPlan:
    """A validated arm: a registered policy, or a training job followed by ``learned``."""

    label: str
    name: str
    params: dict[str, Any]
    train: str | None = None  # resolved path of the training config
    train_overrides: dict[str, Any] = field(default_factory=dict)
    train_digest: str | None = None  # sha256 of the training config file and overrides

    def identity(self) -> dict[str, Any]:
        """What makes this arm's results what they are (hashed into cell keys).

        For a trained arm the model folder is left out (it depends on where the run lives);
        the training config's content stands for it.
        """
        if self.train is None:
            return {"label": self.label, "name": self.name, "params": self.params}
        return {
            "label": self.label,
            "name": self.name,
            "params": self.params,
            "train": self.train_digest,
        }


@dataclass
class ExperimentPlan:
    """An experiment after validation: resolved scenarios, policies, seeds and settings."""

    config: Experiment
    source: str | None
    scenarios: list[ScenarioPlan]
    policies: list[PolicyPlan]
    seeds: list[int]

    @property
    def name(self) -> str:
        return self.config.name

    @property
    def baseline(self) -> str:
        assert self.config.baseline is not None
        return self.config.baseline

    @property
    def metrics(self) -> list[str]:
        return list(self.config.metrics)

    @property
    def labels(self) -> list[str]:
        return [p.label for p in self.policies]

    def resolved(self) -> dict[str, Any]:
        """The configuration as run: paths resolved, scenario digests, defaults filled in.

        ``fingerprint`` hashes everything that decides the results (scenario contents,
        policies, seeds, objective, metrics, baseline); ``description`` and ``outputs`` are
        left out of it, so they can change between a run and its resumption.
        """
        cfg = self.config
        body = {
            "scenarios": [
                {"name": s.name, "path": s.path, "overrides": s.overrides, "digest": s.digest}
                for s in self.scenarios
            ],
            "policies": [
                {"label": p.label, "name": p.name, "params": p.params}
                | (
                    {
                        "train": p.train,
                        "train_overrides": p.train_overrides,
                        "train_digest": p.train_digest,
                    }
                    if p.train
                    else {}
                )
                for p in self.policies
            ],
            "seeds": self.seeds,
            "baseline": self.baseline,
            "objective": cfg.objective.model_dump(),
            "metrics": self.metrics,
        }
        return {
            "name": cfg.name,
            "description": cfg.description,
            **body,
            "outputs": cfg.outputs.model_dump(),
            "fingerprint": _fingerprint(body),
        }

    def fingerprint(self) -> str:
        return self.resolved()["fingerprint"]


def _fingerprint(body: dict[str, Any]) -> str:
    # File paths depend on where the command runs; the digests stand for the contents.
    body = {
        **body,
        "scenarios": [{k: v for k, v in s.items() if k != "path"} for s in body["scenarios"]],
        "policies": [{k: v for k, v in p.items() if k != "train"} for p in body["policies"]],
    }
    payload = json.dumps(body, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# -- loading -----------------------------------------------------------------------------------
def load_experiment(
    path_or_config: str | Path | dict[str, Any] | Experiment,
    overrides: dict[str, Any] | None = None,
    *,
    check_policies: bool = True,
) -> ExperimentPlan:
    """Read and validate an experiment; raise :class:`ConfigError` on the first problem.

    ``path_or_config`` is a YAML file, a mapping with the same fields, or an
    :class:`Experiment`. ``overrides`` set fields by dotted path before validation, as for
    scenarios: ``{"seeds": [0, 1], "scenarios.0.overrides.horizon": 240, "name": "smoke"}``
    (a smaller version of a file, e.g. for a smoke test). With ``check_policies`` every
    policy is built with
    :func:`~dispatch.policies.make_policy` and bound to every scenario, so bad parameters
    (and parameters that only fail against a scenario, like an unknown class name) are
    reported now rather than in the middle of the run.
    """
    source: str | None = None
    base: Path | None = None
    if isinstance(path_or_config, Experiment):
        if overrides:
            path_or_config = path_or_config.model_dump()
            return load_experiment(path_or_config, overrides, check_policies=check_policies)
        cfg = path_or_config
    else:
        if isinstance(path_or_config, str | Path):
            p = Path(path_or_config)
            source, base = str(p), p.resolve().parent
            data = read_yaml(p)
            data.setdefault("name", p.stem)
        else:
            data = dict(path_or_config)
        if overrides:
            try:
                data = apply_overrides(data, overrides)
            except ConfigError as exc:
                raise ConfigError(bare_message(exc), source=source, field="overrides") from None
        try:
            cfg = Experiment.model_validate(data)
        except ValidationError as err:
            exc = format_validation_error(err, source)
            raise ConfigError(
                bare_message(exc).replace("Value error, ", ""), source=source, field=exc.field
            ) from None
    _cross_check(cfg, source)

    scenarios = [_plan_scenario(i, s, source, base) for i, s in enumerate(cfg.scenarios)]
    names = [s.name for s in scenarios]
    dup = sorted({x for x in names if names.count(x) > 1})
    if dup:
        raise ConfigError(
            f"scenario names {dup} repeat; give each entry a distinct 'name'",
            source=source,
            field="scenarios",
        )
    policies = [_plan_policy(i, p, source, base) for i, p in enumerate(cfg.policies)]
    check_metrics(cfg.metrics, scenarios, source)
    if check_policies:
        for i, pol in enumerate(policies):
            if pol.train is None:
                check_policy(i, pol, scenarios, source)
    return ExperimentPlan(cfg, source, scenarios, policies, cfg.seed_list())


def _display_path(p: Path) -> str:
    """Relative to the current directory when below it (portable run folders)."""
    try:
        return str(p.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(p.resolve())


def _not_found(path: str, base: Path | None) -> str:
    where = f"{base} or the current directory" if base else "the current directory"
    return f"file '{path}' not found (looked in {where}); check the path"


def _plan_scenario(
    i: int, spec: ScenarioSpec, source: str | None, base: Path | None
) -> ScenarioPlan:
    found = find_file(spec.path, base)
    if found is None:
        raise ConfigError(_not_found(spec.path, base), source=source, field=f"scenarios.{i}.path")
    raw = read_yaml(found)
    try:
        data = apply_overrides(raw, spec.overrides)
    except ConfigError as exc:
        raise ConfigError(
            bare_message(exc), source=source, field=f"scenarios.{i}.overrides"
        ) from None
    data = {**data, "base_dir": str(found.parent)}
    data = _apply_roster(data, spec.roster, base, source, i)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scen = scenario_from_dict(dict(data), source=str(found))
    except ConfigError as exc:
        raise ConfigError(
            f"{bare_message(exc)} (in scenario {_display_path(found)}"
            + (" with the overrides given" if spec.overrides else "")
            + ")",
            source=source,
            field=f"scenarios.{i}" + (f".{exc.field}" if exc.field else ""),
        ) from None
    return ScenarioPlan(
        name=spec.name or scen.name,
        path=_display_path(found),
        overrides=dict(spec.overrides),
        data=data,
        digest=scen.digest(),
        scenario=scen,
    )


def _apply_roster(
    data: dict[str, Any], roster: str | None, base: Path | None, source: str | None, i: int
) -> dict[str, Any]:
    """Swap in the reviewers of a planned roster (``scenarios.<i>.roster``)."""
    if roster is None:
        return data
    from dispatch.plan.rosterfile import read_roster

    try:
        return {**data, "reviewers": read_roster(roster, base)}
    except ConfigError as exc:
        raise ConfigError(bare_message(exc), source=source, field=f"scenarios.{i}.roster") from None


def _plan_policy(i: int, spec: PolicySpec, source: str | None, base: Path | None) -> PolicyPlan:
    assert spec.label is not None
    if spec.train is None:
        assert spec.name is not None
        return PolicyPlan(spec.label, spec.name, dict(spec.params))
    where = f"policies.{i}.train"
    found = find_file(spec.train, base)
    if found is None:
        raise ConfigError(_not_found(spec.train, base), source=source, field=where)
    if importlib.util.find_spec(TRAINING_MODULE) is None:
        raise ConfigError(
            f"policy '{spec.label}' asks to train first, but {TRAINING_MODULE} is not "
            "available in this installation; install the learning extra "
            "(pip install -e '.[learn]') or remove the entry",
            source=source,
            field=where,
        )
    from dispatch.policies.registry import policy_classes

    if LEARNED_POLICY not in policy_classes():
        raise ConfigError(
            f"policy '{spec.label}' asks to train first, but no '{LEARNED_POLICY}' policy is "
            "registered to evaluate the trained model; install the learning extra",
            source=source,
            field=where,
        )
    digest = hashlib.sha256(
        found.read_bytes() + json.dumps(spec.train_overrides, sort_keys=True).encode()
    ).hexdigest()[:16]
    return PolicyPlan(
        spec.label,
        LEARNED_POLICY,
        dict(spec.params),
        train=_display_path(found),
        train_overrides=dict(spec.train_overrides),
        train_digest=digest,
    )
