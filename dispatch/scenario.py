"""Scenario files: one audit operation described in YAML and validated on load.

A scenario names the task classes (how work arrives, how long it takes, how harmful it is),
the reviewer groups (who may do what, how well, how fast, when), QA and escalation routing,
and the simulated horizon. Unknown keys are rejected, so a typo never silently becomes a
default. Times are in minutes throughout; rates are per minute.

Load with :func:`load_scenario`; override fields with dotted paths
(``{"classes.0.arrivals.rate": 2.0}``) via :func:`apply_overrides`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_serializer,
    model_validator,
)

from dispatch.dataspec import (  # noqa: F401  (the data-spec classes are part of a scenario)
    ColumnMap,
    ColumnSpec,
    DataSpec,
    RosterColumns,
    RosterSpec,
    TaskLogSpec,
    yaml_keys,
    yaml_names,
)
from dispatch.distributions import Deterministic, Distribution
from dispatch.errors import ConfigError

_STRICT = ConfigDict(extra="forbid")


class Burst(BaseModel):
    """A temporary multiplier on the arrival rate, e.g. a flash sale."""

    model_config = _STRICT
    start: float = Field(ge=0, description="Minute the burst starts.")
    end: float = Field(gt=0, description="Minute the burst ends.")
    multiplier: float = Field(gt=0, description="Factor applied to the base rate.")

    @model_validator(mode="after")
    def _ordered(self) -> Burst:
        if self.end <= self.start:
            raise ValueError("burst end must be after start")
        return self


class PoissonArrivals(BaseModel):
    """Homogeneous Poisson arrivals at ``rate`` per minute (times any bursts)."""

    model_config = _STRICT
    kind: Literal["poisson"] = Field(default="poisson", description="Selects this kind.")
    rate: float = Field(ge=0, description="Arrivals per minute.")
    bursts: list[Burst] = Field(
        default_factory=list, description="Temporary rate multipliers (flash sales, incidents)."
    )


class ProfileArrivals(BaseModel):
    """Piecewise-constant daily profile: ``rates[i]`` per minute during slot ``i``.

    Slots have length ``slot`` minutes and repeat with period ``len(rates) * slot``.
    """

    model_config = _STRICT
    kind: Literal["profile"] = Field(default="profile", description="Selects this kind.")
    slot: float = Field(default=60.0, gt=0, description="Slot length in minutes.")
    rates: list[Annotated[float, Field(ge=0)]] = Field(
        min_length=1,
        description="Arrivals per minute in each slot from minute 0; the list repeats.",
    )
    bursts: list[Burst] = Field(
        default_factory=list, description="Temporary rate multipliers on top of the profile."
    )


class ReplayArrivals(BaseModel):
    """Arrivals replayed from an imported task log (see ``data.task_logs``)."""

    model_config = _STRICT
    kind: Literal["replay"] = Field(default="replay", description="Selects this kind.")
    log: str = Field(description="Name of a task log declared under data.task_logs.")


class NoArrivals(BaseModel):
    """No external arrivals: the class is fed only by routing (QA, appeals, escalations)."""

    model_config = _STRICT
    kind: Literal["none"] = Field(default="none", description="Selects this kind.")


Arrivals = Annotated[
    PoissonArrivals | ProfileArrivals | ReplayArrivals | NoArrivals,
    Field(discriminator="kind"),
]


class HarmModel(BaseModel):
    """How harmful unreviewed violating content is.

    Each task carries an upstream model's calibrated ``risk`` score; its hidden ground truth
    is violating with probability ``risk``. Harm exposure of a violating item is
    ``severity x reach x minutes`` until correct enforcement, or until the content's
    lifetime ends (a live stream ends, a listing is delisted) when it is never enforced.
    """

    model_config = _STRICT
    risk: Distribution | None = Field(
        default=None, description="Distribution of the risk score; overrides prevalence."
    )
    prevalence: float = Field(
        default=0.05, ge=0, le=1, description="Risk of every task when no risk distribution."
    )
    severity: Distribution = Field(
        default_factory=lambda: Deterministic(value=1.0),
        description="Severity weight of a violation (harm per view), e.g. discrete levels.",
    )
    reach: Distribution = Field(
        default_factory=lambda: Deterministic(value=1.0),
        description="Views per minute while the content stays up.",
    )
    lifetime: float | None = Field(
        default=None,
        gt=0,
        description="Minutes violating content stays up if never enforced. Default: the "
        "task's patience when it has one, otherwise until the end of the horizon.",
    )


class TaskClass(BaseModel):
    """One queue of work: product listings, live streams, comment reports, appeals, ..."""

    model_config = _STRICT
    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*$",
        description="Class name (an identifier), used by reviewers, routing and reports.",
    )
    arrivals: Arrivals = Field(
        default_factory=NoArrivals,
        description="How tasks arrive: poisson, profile, replay or none (routing only).",
    )
    handling: Distribution = Field(description="Handling time of a speed-1.0 reviewer.")
    patience: Distribution | None = Field(
        default=None, description="Time until the task expires unreviewed (live stream ends)."
    )
    sla: float = Field(default=60.0, gt=0, description="Target minutes from arrival to decision.")
    priority: int = Field(default=0, description="Static priority; lower is served first.")
    holding_cost: float = Field(
        default=1.0, ge=0, description="Cost per minute a task waits (used by c-mu)."
    )
    harm: HarmModel = Field(
        default_factory=HarmModel,
        description="Risk, severity, reach and lifetime of the class's content.",
    )
    market_mix: dict[str, float] | None = Field(
        default=None, description="Share of arrivals per market; default uniform over markets."
    )

    @field_validator("market_mix", mode="before")
    @classmethod
    def _market_codes(cls, v: Any) -> Any:
        return yaml_keys(v)  # NO: 0.2 must not become {False: 0.2}

    severe_risk_threshold: float | None = Field(
        default=None,
        ge=0,
        le=1,
        description="Tasks with risk >= this count against reviewers' wellbeing caps "
        "(0 = every task of the class is disturbing content; None = none).",
    )


class AccuracySpec(BaseModel):
    """How often a reviewer decides correctly, on violating and on clean content."""

    model_config = _STRICT
    sensitivity: float = Field(ge=0, le=1, description="P(flag | violating).")
    specificity: float = Field(ge=0, le=1, description="P(clear | not violating).")


class Break(BaseModel):
    """An off-duty pause within a shift."""

    model_config = _STRICT
    start: float = Field(ge=0, description="Minute of the day the break starts.")
    duration: float = Field(gt=0, description="Length of the break in minutes.")


class Shift(BaseModel):
    """On duty from ``start`` to ``end`` (minutes of the day, may wrap past midnight).

    ``days`` limits the shift to some days of a week (0 = the first day of the horizon,
    day ``d`` is weekday ``d % 7``); a shift that wraps past midnight belongs to the day it
    starts on. Without ``days`` the shift runs every day.
    """

    model_config = _STRICT
    start: float = Field(ge=0, description="Minute of the day the shift starts (0 = 00:00).")
    end: float = Field(
        gt=0, description="Minute of the day it ends; before start means past midnight."
    )
    breaks: list[Break] = Field(default_factory=list, description="Breaks within the shift.")
    days: list[Annotated[int, Field(ge=0, le=6)]] | None = Field(
        default=None,
        description="Weekdays (0-6, day d of the horizon is weekday d % 7) the shift runs on; "
        "default every day.",
    )

    @model_serializer(mode="wrap")
    def _drop_unset_days(self, handler: Any) -> dict[str, Any]:
        # Scenarios without weekly shifts keep the digest they had before ``days`` existed.
        out = handler(self)
        if out.get("days", 0) is None:
            del out["days"]
        return out


class Fatigue(BaseModel):
    """Accuracy drifts down with continuous work and recovers while idle or on break."""

    model_config = _STRICT
    drop_per_hour: float = Field(ge=0, description="Accuracy lost per hour of continuous work.")
    recovery_per_hour: float = Field(ge=0, description="Accuracy regained per hour off work.")
    max_drop: float = Field(
        default=0.1, ge=0, le=1, description="Largest accuracy drop fatigue can cause."
    )


class ReviewerGroup(BaseModel):
    """A team of interchangeable reviewers with the same qualifications."""

    model_config = _STRICT
    name: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_\-\.@]*$",
        description="Group name, used in reports ('@' marks rostered sub-groups).",
    )
    count: int = Field(ge=0, description="Number of reviewers in the group.")
    classes: list[str] = Field(min_length=1, description="Task classes they are qualified for.")
    markets: list[str] | Literal["all"] = Field(
        default="all", description="Markets (languages) they cover, or 'all'."
    )

    @field_validator("markets", mode="before")
    @classmethod
    def _market_codes(cls, v: Any) -> Any:
        return yaml_names(v)  # [US, NO] must not become ["US", False]

    accuracy: dict[str, AccuracySpec] = Field(
        default_factory=dict, description="Per-class accuracy; other classes: default_accuracy."
    )
    default_accuracy: AccuracySpec = Field(
        default_factory=lambda: AccuracySpec(sensitivity=0.9, specificity=0.97),
        description="Accuracy on classes not listed under accuracy.",
    )
    speed: dict[str, float] = Field(
        default_factory=dict, description="Per-class speed factor: handling time / speed."
    )
    shifts: list[Shift] = Field(
        default_factory=list, description="Daily shifts; empty means always on duty."
    )
    fatigue: Fatigue | None = Field(
        default=None, description="Accuracy drift with continuous work; none if omitted."
    )
    wellbeing_cap: int | None = Field(
        default=None, ge=0, description="At most this many severe items per rolling hour."
    )


class RoutingRule(BaseModel):
    """After a decision on a task of ``source``, send a follow-up task to ``target``.

    ``when`` filters on the outcome: any decision, a positive (enforce) or negative decision,
    or a false positive (the source of appeals). ``delay`` is how long until it arrives.
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    source: str = Field(alias="from", description="Class whose decisions are routed ('from').")
    target: str = Field(alias="to", description="Class the follow-up task joins ('to').")
    prob: float = Field(ge=0, le=1, description="Chance a matching decision is routed.")
    when: Literal["any", "positive", "negative", "false_positive", "true_positive"] = Field(
        default="any",
        description="Which decisions qualify: any, positive (enforce), negative, "
        "false_positive (appeals), true_positive.",
    )
    delay: Distribution | None = Field(
        default=None, description="Minutes until the follow-up arrives; immediate if omitted."
    )


class QASpec(BaseModel):
    """A QA pool re-reviews a random sample of decisions (a routing rule under the hood)."""

    model_config = _STRICT
    rate: float = Field(ge=0, le=1, description="Share of decisions sampled for QA.")
    target: str = Field(description="Task class the QA re-reviews go to.")
    sources: list[str] | None = Field(default=None, description="Classes sampled; default all.")
    delay: Distribution | None = Field(
        default=None, description="Minutes until the re-review arrives; immediate if omitted."
    )


class Scenario(BaseModel):
    """One audit operation: classes, reviewers, routing, horizon."""

    model_config = _STRICT
    name: str = Field(default="scenario", description="Scenario name, shown in results.")
    description: str = Field(default="", description="Free text about the scenario.")
    time_unit: Literal["minutes"] = Field(
        default="minutes", description="Unit of every time in the file (minutes only)."
    )
    horizon: float = Field(gt=0, description="Minutes simulated.")
    warmup: float = Field(default=0.0, ge=0, description="Minutes excluded from statistics.")
    markets: list[str] | Literal["from_data"] = Field(
        default_factory=lambda: ["all"],
        min_length=1,
        description="Market codes; from_data: every code found in the data section's market "
        "columns (after market_map), sorted.",
    )
    risk_bands: list[float] = Field(
        default_factory=list,
        description="Cut points of the risk score; queues are split by class x market x band.",
    )
    classes: list[TaskClass] = Field(min_length=1, description="The task classes (queues).")
    reviewers: list[ReviewerGroup] = Field(
        default_factory=list, description="The reviewer groups (plus any imported rosters)."
    )
    routing: list[RoutingRule] = Field(
        default_factory=list, description="Follow-up tasks routed by decisions (escalation)."
    )
    qa: QASpec | None = Field(
        default=None, description="QA re-review sampling (routing rules under the hood)."
    )
    data: DataSpec = Field(
        default_factory=DataSpec, description="Real task logs and rosters to import."
    )
    sample_interval: float = Field(default=15.0, gt=0, description="Backlog sampling, minutes.")
    base_dir: str | None = Field(default=None, description="Set on load: relative data paths.")

    @field_validator("markets", mode="before")
    @classmethod
    def _market_codes(cls, v: Any) -> Any:
        return yaml_names(v)  # [US, NO] must not become ["US", False]

    @model_validator(mode="after")
    def _cross_check(self) -> Scenario:
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate class names in {names}")
        known = set(names)
        if self.markets == "from_data" and not self.data.market_columns():
            raise ValueError(
                "markets: from_data needs a market column in data (a task log's "
                "columns.market or a roster's columns.markets); map one or list the markets"
            )
        # With markets from the data, market names are checked when the data is imported.
        markets = None if self.markets == "from_data" else set(self.markets)
        if self.warmup >= self.horizon:
            raise ValueError("warmup must be shorter than horizon")
        if sorted(self.risk_bands) != self.risk_bands or any(
            not 0 < b < 1 for b in self.risk_bands
        ):
            raise ValueError("risk_bands must be increasing cut points strictly inside (0, 1)")
        for c in self.classes:
            if c.market_mix is not None:
                bad = set(c.market_mix) - markets if markets is not None else set()
                if bad:
                    raise ValueError(f"class {c.name}: market_mix names unknown markets {bad}")
                if abs(sum(c.market_mix.values()) - 1) > 1e-6:
                    raise ValueError(f"class {c.name}: market_mix must sum to 1")
        logs = {t.name for t in self.data.task_logs}
        for c in self.classes:
            if isinstance(c.arrivals, ReplayArrivals) and c.arrivals.log not in logs:
                raise ValueError(f"class {c.name}: replay log '{c.arrivals.log}' not in data")
        gnames = [g.name for g in self.reviewers]
        if len(set(gnames)) != len(gnames):
            raise ValueError("duplicate reviewer group names")
        for g in self.reviewers:
            bad = set(g.classes) - known
            if bad:
                raise ValueError(f"reviewer group {g.name}: unknown classes {sorted(bad)}")
            for key in list(g.accuracy) + list(g.speed):
                if key not in known:
                    raise ValueError(f"reviewer group {g.name}: unknown class '{key}'")
            if g.markets != "all" and markets is not None and set(g.markets) - markets:
                raise ValueError(
                    f"reviewer group {g.name}: unknown markets {sorted(set(g.markets) - markets)}"
                )
            if any(v <= 0 for v in g.speed.values()):
                raise ValueError(f"reviewer group {g.name}: speed factors must be > 0")
        for r in self.routing:
            for n in (r.source, r.target):
                if n not in known:
                    raise ValueError(f"routing: unknown class '{n}'")
        if self.qa is not None:
            if self.qa.target not in known:
                raise ValueError(f"qa: unknown target class '{self.qa.target}'")
            for n in self.qa.sources or []:
                if n not in known:
                    raise ValueError(f"qa: unknown source class '{n}'")
        return self

    # -- derived views ---------------------------------------------------------------------
    def all_routing(self) -> list[RoutingRule]:
        """Routing rules including the QA sampling expanded into rules."""
        rules = list(self.routing)
        if self.qa is not None and self.qa.rate > 0:
            sources = self.qa.sources or [c.name for c in self.classes if c.name != self.qa.target]
            for s in sources:
                rules.append(
                    RoutingRule.model_validate(
                        {
                            "from": s,
                            "to": self.qa.target,
                            "prob": self.qa.rate,
                            "when": "any",
                            "delay": self.qa.delay,
                        }
                    )
                )
        return rules

    def offered_load(self) -> dict[str, float]:
        """Offered load per class in reviewer-equivalents (rate x mean handling, speed 1)."""
        out = {}
        for c in self.classes:
            a = c.arrivals
            if isinstance(a, PoissonArrivals):
                rate = a.rate
            elif isinstance(a, ProfileArrivals):
                rate = sum(a.rates) / len(a.rates)
            else:
                rate = 0.0
            out[c.name] = rate * c.handling.expected
        return out

    def digest(self) -> str:
        """A stable hash of the resolved scenario (used to tie artefacts to a scenario)."""
        payload = json.dumps(self.model_dump(mode="json", exclude={"base_dir"}), sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def resolve_path(self, path: str) -> Path:
        p = Path(path)
        if not p.is_absolute() and self.base_dir:
            p = Path(self.base_dir) / p
        return p


def format_validation_error(err: ValidationError, source: str | None = None) -> ConfigError:
    """Turn pydantic's report into one message naming the first bad field and the fix."""
    errors = err.errors()
    # An unknown key usually explains the missing one next to it (a typo): report it first.
    errors = sorted(errors, key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    loc = ".".join(str(x) for x in first["loc"]) or "(top level)"
    kind = first["type"]
    msg = first["msg"]
    if kind == "extra_forbidden":
        msg = "unknown key; remove it or check its spelling against the documented fields"
    elif kind == "missing":
        msg = "required field is missing; add it"
    more = f" (and {len(err.errors()) - 1} more problem(s))" if len(err.errors()) > 1 else ""
    return ConfigError(f"{msg}{more}", source=source, field=loc)


def read_yaml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.exists():
        raise ConfigError("file not found; check the path", source=str(p))
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError(f"malformed YAML{where}; fix the syntax", source=str(p)) from None
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of fields at the top level", source=str(p))
    return data


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """Set dotted-path fields (``classes.0.arrivals.rate``) in a raw scenario mapping.

    Class and reviewer-group list items can also be addressed by name
    (``classes.live_stream.sla``).
    """
    out = copy.deepcopy(data)
    for dotted, value in (overrides or {}).items():
        node: Any = out
        parts = dotted.split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                idx = _list_index(node, part, dotted)
                if last:
                    node[idx] = value
                else:
                    node = node[idx]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise ConfigError(f"cannot set '{dotted}': '{part}' is not a mapping or list")
    return out


def _list_index(node: list, part: str, dotted: str) -> int:
    if part.isdigit():
        idx = int(part)
        if idx >= len(node):
            raise ConfigError(f"override '{dotted}': index {idx} out of range")
        return idx
    for i, item in enumerate(node):
        if isinstance(item, dict) and item.get("name") == part:
            return i
    raise ConfigError(f"override '{dotted}': no item named '{part}'")


def scenario_from_dict(
    data: dict[str, Any], source: str | None = None, base_dir: str | None = None
) -> Scenario:
    if base_dir is not None and "base_dir" not in data:
        data = {**data, "base_dir": base_dir}
    try:
        scen = Scenario.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, source) from None
    _warn_if_overloaded(scen, source)
    return scen


def load_scenario(path: str | Path, overrides: dict[str, Any] | None = None) -> Scenario:
    """Read, override and validate a scenario file; raise :class:`ConfigError` if invalid."""
    p = Path(path)
    data = apply_overrides(read_yaml(p), overrides)
    return scenario_from_dict(data, source=str(p), base_dir=str(p.parent.resolve()))


class OverloadWarning(UserWarning):
    """Offered load exceeds the workforce: allowed (a backlog builds up) but worth knowing."""


def _warn_if_overloaded(scen: Scenario, source: str | None) -> None:
    load = sum(scen.offered_load().values())
    capacity = 0.0
    for g in scen.reviewers:
        on = 1.0
        if g.shifts:
            minutes = sum(
                ((s.end - s.start) % 1440 or 1440) * (len(s.days) / 7 if s.days is not None else 1)
                for s in g.shifts
            )
            on = min(1.0, minutes / 1440.0)
        capacity += g.count * on
    has_patience = any(c.patience is not None for c in scen.classes)
    if scen.reviewers and load >= capacity and not has_patience:
        warnings.warn(
            f"{source or scen.name}: offered load {load:.2f} reviewer-equivalents >= "
            f"average staffed capacity {capacity:.2f}; queues will grow without bound",
            OverloadWarning,
            stacklevel=3,
        )
