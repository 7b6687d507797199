"""The plan file: what to staff, with which people and rules, to which service targets.

A plan file names a scenario (its classes, markets and arrival profiles or imported task
log are the demand; its reviewer groups are the skill pools), the dispatcher that evaluates
candidate rosters in simulation, the planning horizon (a day or a week) and interval, per
pool the headcount, cost, shift templates, breaks and labour rules, the service targets per
class, and the objective (minimum cost subject to the targets, or best service for a budget
of reviewer-hours). It is validated on load: unknown keys are rejected and a bad value stops
with one line naming the field and the fix (:class:`~dispatch.errors.ConfigError`).

Times are minutes (a shift starting at 06:00 starts at 360), like scenario files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from dispatch.scenario import format_validation_error, read_yaml

_STRICT = ConfigDict(extra="forbid")
DAY = 1440
Weekday = Annotated[int, Field(ge=0, le=6)]


class Horizon(BaseModel):
    """How long the plan covers, in which intervals, and how demand varies by day."""

    model_config = _STRICT
    days: Literal[1, 7] = Field(
        default=1, description="1 plans one day (the roster repeats daily); 7 plans a week."
    )
    interval: int = Field(
        default=30, ge=5, le=240, description="Planning interval in minutes (divides 1440)."
    )
    day_factors: list[Annotated[float, Field(ge=0)]] | None = Field(
        default=None,
        min_length=7,
        max_length=7,
        description="Week only: demand multiplier per weekday (0 = the first day), applied to "
        "every class's daily profile, e.g. lighter weekends.",
    )
    daily_profiles: dict[str, list[list[Annotated[float, Field(ge=0)]]]] = Field(
        default_factory=dict,
        description="Week only: per class, 7 daily profiles (rates per minute per slot of the "
        "class's own profile) replacing its profile on each day; day_factors still apply.",
    )

    @model_validator(mode="after")
    def _check(self) -> Horizon:
        if DAY % self.interval:
            raise ValueError(f"interval {self.interval} must divide 1440 (e.g. 15, 30, 60)")
        if self.days == 1 and (self.day_factors is not None or self.daily_profiles):
            raise ValueError("day_factors and daily_profiles need days: 7")
        for name, days in self.daily_profiles.items():
            if len(days) != 7:
                raise ValueError(f"daily_profiles.{name}: give 7 daily profiles")
        return self


class StartGrid(BaseModel):
    """Shift start times: every ``every`` minutes from ``first`` to ``last`` (minute of day)."""

    model_config = _STRICT
    first: int = Field(default=0, ge=0, lt=DAY, description="Earliest start, minute of day.")
    last: int = Field(default=DAY - 60, ge=0, lt=DAY, description="Latest start, minute of day.")
    every: int = Field(default=60, ge=5, description="Minutes between allowed starts.")

    def starts(self) -> list[int]:
        return list(range(self.first, self.last + 1, self.every))


class BreakRule(BaseModel):
    """A break of ``duration`` minutes starting between ``earliest`` and ``latest`` minutes
    after the shift starts, for shifts of at least ``min_shift`` minutes."""

    model_config = _STRICT
    duration: int = Field(ge=5, description="Break length in minutes.")
    earliest: int = Field(ge=0, description="Earliest break start, minutes after shift start.")
    latest: int = Field(ge=0, description="Latest break start, minutes after shift start.")
    min_shift: int = Field(
        default=0, ge=0, description="The rule applies to shifts at least this long (minutes)."
    )
    grid: int = Field(default=15, ge=5, description="Break starts on this grid (minutes).")

    @model_validator(mode="after")
    def _ordered(self) -> BreakRule:
        if self.latest < self.earliest:
            raise ValueError("break latest must be >= earliest")
        return self


class FixedShift(BaseModel):
    """People already rostered: ``count`` people of the pool work this shift on ``days``."""

    model_config = _STRICT
    start: int = Field(ge=0, lt=DAY, description="Start, minute of day.")
    length: int = Field(gt=0, le=DAY, description="Shift length in minutes.")
    days: list[Weekday] = Field(
        default_factory=lambda: [0], description="Weekdays worked (a day plan uses [0])."
    )
    count: int = Field(default=1, ge=1, description="How many people work this pattern.")


class PoolSpec(BaseModel):
    """Planning inputs of one skill pool (a scenario reviewer group): people, cost, rules.

    Every field is optional here: ``pools.<group>`` entries are merged over ``pool_defaults``.
    """

    model_config = _STRICT
    max_headcount: int | None = Field(
        default=None, ge=0, description="Most people of this pool who can be rostered."
    )
    cost_per_hour: float | None = Field(default=None, ge=0, description="Paid cost per hour.")
    starts: StartGrid | None = Field(default=None, description="Grid of allowed shift starts.")
    lengths: list[Annotated[int, Field(gt=0, le=DAY)]] | None = Field(
        default=None, description="Allowed shift lengths in minutes, e.g. [480, 600, 240]."
    )
    breaks: list[BreakRule] | None = Field(
        default=None, description="Break rules; each applies to shifts of its min_shift or more."
    )
    paid_breaks: bool | None = Field(default=None, description="Breaks count as paid hours.")
    min_shifts_per_week: int | None = Field(default=None, ge=0, le=7, description="Week only.")
    max_shifts_per_week: int | None = Field(default=None, ge=1, le=7, description="Week only.")
    max_consecutive_days: int | None = Field(
        default=None, ge=1, le=7, description="Week only: most working days in a row."
    )
    min_rest: int | None = Field(
        default=None,
        ge=0,
        description="Minutes of rest between the end of one shift and the start of the next.",
    )
    days_off: list[Weekday] | None = Field(
        default=None, description="Weekdays this pool never works."
    )
    fixed: list[FixedShift] | None = Field(
        default=None, description="People already rostered (kept in every plan)."
    )


POOL_DEFAULTS: dict[str, Any] = {
    "max_headcount": None,
    "cost_per_hour": 1.0,
    "starts": StartGrid(),
    "lengths": [480],
    "breaks": [],
    "paid_breaks": True,
    "min_shifts_per_week": 0,
    "max_shifts_per_week": 5,
    "max_consecutive_days": 5,
    "min_rest": 660,
    "days_off": [],
    "fixed": [],
}


class Targets(BaseModel):
    """Service targets of one class (any subset); the plan staffs until all hold."""

    model_config = _STRICT
    sla: float | None = Field(
        default=None, gt=0, lt=1, description="Least share decided within the class's SLA."
    )
    max_expired: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description="Most share expired unreviewed (classes with patience).",
    )
    mean_wait: float | None = Field(
        default=None, gt=0, description="Most mean minutes from arrival to start of review."
    )
    max_delay_prob: float | None = Field(
        default=None, gt=0, lt=1, description="Most share of tasks that wait at all."
    )

    def active(self) -> dict[str, float]:
        return {k: v for k, v in self.model_dump().items() if v is not None}


class Dispatcher(BaseModel):
    """The dispatcher every candidate roster is simulated with (any registered policy; a
    trained model is ``learned`` with ``params: {model: RUN}``, an export ``onnx``)."""

    model_config = _STRICT
    name: str = Field(default="harm_rate", description="Registered policy name.")
    params: dict[str, Any] = Field(default_factory=dict, description="Policy parameters.")


class Objective(BaseModel):
    """Minimum cost subject to the targets, or best service for a budget of hours."""

    model_config = _STRICT
    mode: Literal["min_cost", "budget"] = Field(
        default="min_cost",
        description="min_cost: cheapest roster meeting every target; "
        "budget: best service within budget_hours.",
    )
    budget_hours: float | None = Field(
        default=None,
        gt=0,
        description="Budget mode: most paid reviewer-hours over the horizon "
        "(per day for a day plan).",
    )
    sweep: list[Annotated[float, Field(gt=0)]] = Field(
        default_factory=list,
        description="Budgets (hours) to plan and simulate for the cost vs service frontier.",
    )

    @model_validator(mode="after")
    def _budget(self) -> Objective:
        if self.mode == "budget" and self.budget_hours is None:
            raise ValueError("mode budget needs budget_hours")
        return self


class Staffing(BaseModel):
    """How requirements come from demand (step 2 of the pipeline)."""

    model_config = _STRICT
    method: Literal["erlang", "sqrt"] = Field(
        default="erlang",
        description="erlang: Erlang C, or Erlang A for classes with patience; "
        "sqrt: square-root staffing load + beta * sqrt(load).",
    )
    beta: float = Field(default=1.0, ge=0, description="Safety factor of square-root staffing.")
    max_utilisation: float = Field(
        default=0.95, gt=0, le=1, description="Most busy share a pool is planned at."
    )
    smooth_long_sla: bool = Field(
        default=True,
        description="Classes with an SLA of 4+ intervals are staffed for their "
        "load averaged over half the SLA (work may wait within its SLA).",
    )


class Simulation(BaseModel):
    """Simulation-based correction (the iterative staffing algorithm, step 4)."""

    model_config = _STRICT
    seeds: list[int] = Field(
        default_factory=lambda: list(range(10)),
        min_length=1,
        description="Seeds simulated under common random numbers in every iteration.",
    )
    max_iterations: int = Field(default=8, ge=0, description="Most re-solves (0: no correction).")
    confidence: float = Field(default=0.95, gt=0, lt=1, description="Level of the CIs.")
    warmup_days: int = Field(
        default=1,
        ge=0,
        le=2,
        description="Days simulated before the measured horizon so it "
        "starts from a loaded system, not an empty one.",
    )
    step: float = Field(
        default=0.15,
        gt=0,
        le=1,
        description="Relative raise of a missed interval's requirement "
        "per iteration (at least one person).",
    )


class Solver(BaseModel):
    """CP-SAT settings of the roster (step 3)."""

    model_config = _STRICT
    time_limit: float = Field(default=60.0, gt=0, description="Seconds per solve.")
    workers: int = Field(default=2, ge=1, description="CP-SAT search workers.")
    relative_gap: float = Field(
        default=0.005, ge=0, description="Stop once the proven gap is below this."
    )


class PlanConfig(BaseModel):
    """A validated plan file (see the module docstring and README "Planning the workforce")."""

    model_config = _STRICT
    name: str = Field(default="plan", pattern=r"^[A-Za-z0-9_.\-]+$", description="Plan name.")
    description: str = Field(default="", description="Free text.")
    scenario: str = Field(description="Scenario YAML, relative to the plan file.")
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Dotted-path scenario overrides."
    )
    dispatcher: Dispatcher = Field(default_factory=Dispatcher)
    horizon: Horizon = Field(default_factory=Horizon)
    pool_defaults: PoolSpec = Field(
        default_factory=PoolSpec, description="Planning inputs shared by every pool."
    )
    pools: dict[str, PoolSpec] = Field(
        default_factory=dict,
        description="Per scenario reviewer group: overrides of "
        "pool_defaults. Groups not named use pool_defaults.",
    )
    exclude_pools: list[str] = Field(
        default_factory=list, description="Scenario groups not rostered (dropped from the plan)."
    )
    targets: dict[str, Targets] = Field(
        default_factory=dict, description="Per class name (or 'default' for the others)."
    )
    harm_budget: float | None = Field(
        default=None, gt=0, description="Most mean harm exposure over the horizon."
    )
    wellbeing_cap: int | None = Field(
        default=None,
        ge=1,
        description="Severe items per reviewer per hour, set on every pool "
        "that handles severe content (overrides the scenario's caps).",
    )
    objective: Objective = Field(default_factory=Objective)
    staffing: Staffing = Field(default_factory=Staffing)
    simulation: Simulation = Field(default_factory=Simulation)
    solver: Solver = Field(default_factory=Solver)
    base_dir: str | None = Field(default=None, description="Set on load.")

    def pool(self, group: str) -> dict[str, Any]:
        """The resolved planning inputs of one pool: defaults, then pool_defaults, then pool."""
        out = dict(POOL_DEFAULTS)
        for spec in (self.pool_defaults, self.pools.get(group)):
            if spec is None:
                continue
            for k in PoolSpec.model_fields:
                v = getattr(spec, k)
                if v is not None:
                    out[k] = v
        return out

    def targets_of(self, cls: str) -> dict[str, float]:
        spec = self.targets.get(cls) or self.targets.get("default")
        return spec.active() if spec is not None else {}

    def scenario_path(self) -> Path:
        p = Path(self.scenario)
        if not p.is_absolute() and self.base_dir:
            p = Path(self.base_dir) / p
        return p


def plan_from_dict(data: dict[str, Any], source: str | None = None) -> PlanConfig:
    try:
        return PlanConfig.model_validate(data)
    except ValidationError as err:
        raise format_validation_error(err, source) from None


def load_plan(path: str | Path, overrides: dict[str, Any] | None = None) -> PlanConfig:
    """Read and validate a plan file; ``overrides`` are dotted paths (``solver.time_limit``)."""
    from dispatch.scenario import apply_overrides

    p = Path(path)
    data = apply_overrides(read_yaml(p), overrides)
    data.setdefault("base_dir", str(p.parent.resolve()))
    return plan_from_dict(data, source=str(p))
