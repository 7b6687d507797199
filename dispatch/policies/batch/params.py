"""Parameters of the batch optimisers (``flow``, ``lsa``, ``cpsat``), grouped by concern.

::

    value:        what an assignment is worth (dispatch.policies.batch.value)
      weights       objective weights: harm, sla_breach, wrong_decision, false_enforcement,
                    abandoned, lateness
      deferral, harm_wait_from_queue, guard, guard_classes, per_minute
    aggregation:  how an epoch becomes a small problem (dispatch.policies.batch.epoch)
      urgent_fraction, fatigue_bin, scan_limit   (lsa: + max_tasks_per_bucket)
    epoch:        when the simulator asks
      interval, on_demand
    solver:       how the problem is solved
      work_conserving, scale                     (cpsat: + time_limit_s, deterministic,
                                                  verify_with_flow)
    constraints:  cpsat only: side constraints a flow cannot express
      max_diverted, min_coverage, team_quota
    reserve:      trunk reservation, as the rules' (dispatch.policies.rules.Reservation)

``-p value.deferral=20`` on the command line, ``params: {value: {deferral: 20}}`` in
experiment files. The flat keys of earlier releases (``deferral``, ``scan_limit``,
``interval``, ``time_limit_s``, ...) are still accepted for one release: they are moved
into their group with a :class:`DeprecationWarning` naming the new key.
"""

from __future__ import annotations

import warnings
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from dispatch.objective import Objective
from dispatch.policies.rules import Reservation
from dispatch.solvers.problem import SCALE

_CFG = ConfigDict(extra="forbid", use_attribute_docstrings=True)
_OBJ = Objective()

__all__ = [
    "Aggregation",
    "CPSATConstraints",
    "CPSATControl",
    "CPSATParams",
    "EpochTiming",
    "FlatParameterWarning",
    "LSAAggregation",
    "LSAParams",
    "MaxDiverted",
    "ParamGroup",
    "SolverControl",
    "SolverParams",
    "TeamQuota",
    "ValueModel",
    "ValueWeights",
]


class FlatParameterWarning(DeprecationWarning):
    """A flat solver parameter of an earlier release was used (it still works, this release)."""


# Shown by default (Python hides DeprecationWarnings outside __main__): the people who see
# it are users of experiment files and ``-p`` flags, not developers.
warnings.filterwarnings("default", category=FlatParameterWarning)


class ParamGroup(BaseModel):
    """A group of policy parameters (listed as ``group.key`` by ``dispatch policies``)."""

    model_config = _CFG


class ValueWeights(BaseModel):
    """Objective weights the value model prices with; defaults are the comparison objective's."""

    model_config = _CFG
    harm: float = Field(default=_OBJ.harm, ge=0)
    """Per 1000 severity-weighted violating views averted."""
    sla_breach: float = Field(default=_OBJ.sla_breach, ge=0)
    """Per SLA breach avoided (decided on time instead of late or expired)."""
    wrong_decision: float = Field(default=_OBJ.wrong_decision, ge=0)
    """Per expected wrong decision (false positive or false negative)."""
    false_enforcement: float = Field(default=_OBJ.false_enforcement, ge=0)
    """Extra cost per expected false enforcement (a merchant wrongly punished)."""
    abandoned: float = Field(default=_OBJ.abandoned, ge=0)
    """Per task saved from expiring unreviewed (a live stream that ends)."""
    lateness: float = Field(default=0.5, ge=0)
    """Per SLA-length of lateness past the deadline that the assignment itself causes."""


class ValueModel(ParamGroup):
    """The value of giving one reviewer one task now (see dispatch.policies.batch.value)."""

    weights: ValueWeights = Field(default_factory=ValueWeights)
    """Objective weights (harm, sla_breach, wrong_decision, false_enforcement, abandoned,
    lateness)."""
    deferral: float = Field(default=10.0, gt=0)
    """Mean minutes tau a task waits more if not taken now (deferral ~ exponential)."""
    harm_wait_from_queue: bool = True
    """For the harm term, use the bucket's head-of-line wait as tau when longer."""
    guard: float = Field(default=1.0, ge=0)
    """Weight of the option value of guarded (perishable) work; 0 switches it off."""
    guard_classes: list[str] | None = None
    """Classes whose future arrivals are guarded; default every class with patience."""
    per_minute: bool = False
    """Divide each value by the reviewer's expected handling time (value per reviewer
    minute, the c-mu index)."""


class Aggregation(ParamGroup):
    """How an epoch is reduced to rows of identical reviewers x columns of similar tasks."""

    urgent_fraction: float = Field(default=0.25, gt=0, le=1)
    """A task is urgent when less than this share of its SLA is left."""
    fatigue_bin: float = Field(default=0.01, gt=0)
    """Reviewers whose fatigue drop rounds to the same multiple of this share a row."""
    scan_limit: int = Field(default=200, ge=1)
    """Most tasks scanned per bucket and epoch (a tail column stands for the rest)."""


class LSAAggregation(Aggregation):
    max_tasks_per_bucket: int = Field(default=50, ge=1)
    """Tasks per bucket (oldest first) offered to the per-task assignment."""


class EpochTiming(ParamGroup):
    """When the simulator hands the free reviewers to the solver."""

    interval: float = Field(default=1.0, gt=0)
    """Minutes between periodic epochs."""
    on_demand: bool = True
    """Also solve at the instant a task arrives or a reviewer becomes free."""


class SolverControl(ParamGroup):
    """What the solver maximises first and how finely values are resolved."""

    work_conserving: bool = True
    """Maximise the number of assignments first, then value: no reviewer idles while it has
    eligible work (unless held by a reservation); false: only positive-value assignments."""
    scale: float = Field(default=SCALE, gt=0)
    """Values are multiplied by this and rounded for the integer solvers
    (dispatch.solvers.SCALE)."""


class CPSATControl(SolverControl):
    time_limit_s: float = Field(default=1.0, gt=0)
    """CP-SAT budget per epoch (deterministic time units when deterministic)."""
    deterministic: bool = True
    """Single worker with a seed fixed at bind time: same seed, same decisions."""
    verify_with_flow: bool = True
    """Solve the flow first and keep it when it already satisfies every side constraint
    (it is then optimal for the constrained model too); false: always call CP-SAT."""


class MaxDiverted(BaseModel):
    """At most ``n`` reviewers of ``groups`` assigned outside ``classes`` per epoch."""

    model_config = _CFG
    classes: list[str] = Field(min_length=1)
    """The classes the groups are kept for (e.g. [live_stream])."""
    groups: list[str] | None = None
    """Specialist groups; default every group eligible for those classes."""
    n: int = Field(ge=0)
    """Most of them assigned to other classes in one epoch."""
    concurrent: bool = False
    """Count those already busy outside the classes too: at most n diverted at any time."""


class TeamQuota(BaseModel):
    """At least ``n`` assignments of ``group``'s reviewers into ``classes`` per epoch."""

    model_config = _CFG
    group: str
    """Reviewer group."""
    classes: list[str] = Field(min_length=1)
    """Classes the quota counts."""
    n: int = Field(ge=0)
    """Assignments per epoch (capped at what is achievable)."""


class CPSATConstraints(ParamGroup):
    """Side constraints of CP-SAT (wellbeing caps of merged rows are always on)."""

    max_diverted: MaxDiverted | None = None
    """Cap on specialists pulled onto other classes ({classes, groups, n, concurrent})."""
    min_coverage: dict[str, int] = Field(default_factory=dict)
    """Market -> at least this many assignments into its buckets per epoch (when work and
    eligible reviewers are there)."""
    team_quota: list[TeamQuota] = Field(default_factory=list)
    """[{group, classes, n}]: at least n assignments of a group into those classes."""


class SolverParams(BaseModel):
    """Parameters of every batch optimiser: value model, aggregation, epochs, solver,
    reservation (the groups are described in this module's docstring)."""

    model_config = _CFG
    value: ValueModel = Field(default_factory=ValueModel)
    """The value model: weights, deferral, harm_wait_from_queue, guard, guard_classes,
    per_minute."""
    aggregation: Aggregation = Field(default_factory=Aggregation)
    """Epoch aggregation: urgent_fraction, fatigue_bin, scan_limit."""
    epoch: EpochTiming = Field(default_factory=EpochTiming)
    """Epoch timing: interval, on_demand."""
    solver: SolverControl = Field(default_factory=SolverControl)
    """Solver control: work_conserving, scale."""
    reserve: Reservation | None = None
    """Trunk reservation for urgent classes, as in the rules (off by default)."""

    @model_validator(mode="before")
    @classmethod
    def _nest_flat_keys(cls, data: Any) -> Any:
        """Accept the flat keys of earlier releases (one release more), with a warning."""
        if not isinstance(data, dict):
            return data
        groups = {
            name: f.annotation
            for name, f in cls.model_fields.items()
            if isinstance(f.annotation, type) and issubclass(f.annotation, ParamGroup)
        }
        out = dict(data)
        for key in list(out):
            group = next((g for g, m in groups.items() if key in m.model_fields), None)
            if group is None or key in cls.model_fields:
                continue
            nested = out.get(group)
            if isinstance(nested, BaseModel):
                nested = nested.model_dump()
            nested = dict(nested) if isinstance(nested, dict) else {}
            if key in nested:
                raise ValueError(f"'{key}' is given twice: flat and as '{group}.{key}'")
            warnings.warn(
                f"policy parameter '{key}' is deprecated; use '{group}.{key}' "
                f"(e.g. -p {group}.{key}=... or params: {{{group}: {{{key}: ...}}}})",
                FlatParameterWarning,
                stacklevel=2,
            )
            nested[key] = out.pop(key)
            out[group] = nested
        return out

    def flat(self) -> dict[str, Any]:
        """Every parameter under its flat key of earlier releases, in their order.

        Used for the policy's description (the ``policy`` label of results), which stays as
        it was so that recorded outputs do not change.
        """
        groups = {n: getattr(self, n).model_dump() for n in ("value", "solver", "aggregation")}
        out: dict[str, Any] = dict(groups["value"])
        out["work_conserving"] = groups["solver"].pop("work_conserving")
        agg = groups["aggregation"]
        extra_agg = {k: agg.pop(k) for k in list(agg) if k not in Aggregation.model_fields}
        out.update(agg)
        out["scale"] = groups["solver"].pop("scale")
        out.update(self.epoch.model_dump())
        out["reserve"] = None if self.reserve is None else self.reserve.model_dump()
        out.update(extra_agg)
        out.update(groups["solver"])  # cpsat: time_limit_s, deterministic, verify_with_flow
        return out


class LSAParams(SolverParams):
    aggregation: LSAAggregation = Field(default_factory=LSAAggregation)
    """Epoch aggregation: urgent_fraction, fatigue_bin, scan_limit, max_tasks_per_bucket."""


class CPSATParams(SolverParams):
    solver: CPSATControl = Field(default_factory=CPSATControl)
    """Solver control: work_conserving, scale, time_limit_s, deterministic,
    verify_with_flow."""
    constraints: CPSATConstraints = Field(default_factory=CPSATConstraints)
    """Side constraints: max_diverted, min_coverage, team_quota."""

    def flat(self) -> dict[str, Any]:
        out = super().flat()
        verify = out.pop("verify_with_flow")
        out.update(self.constraints.model_dump())
        out["verify_with_flow"] = verify
        return out
