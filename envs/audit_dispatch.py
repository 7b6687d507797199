"""Pull-mode Gymnasium environment: a free reviewer asks which queue to take work from."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dispatch.errors import ConfigError
from dispatch.layout import Layout
from dispatch.metrics import SimResult
from dispatch.objective import Objective
from dispatch.observation import HoldingCost, ObservationBuilder, fifo_choice
from dispatch.policies.base import Policy, PolicyMode
from dispatch.scenario import Scenario, apply_overrides, load_scenario, scenario_from_dict
from dispatch.simulator import Simulation

__all__ = ["AuditDispatchEnv", "resolve_scenario"]

RewardKind = Literal["objective", "holding_cost"]


def resolve_scenario(
    scenario: str | Path | Scenario,
    overrides: dict[str, Any] | None = None,
    horizon: float | None = None,
) -> Scenario:
    """A validated scenario from a path or object, with dotted overrides and a horizon.

    A ``horizon`` override keeps the scenario's warm-up when it is shorter than the new
    horizon and drops it (0) otherwise.
    """
    if isinstance(scenario, Scenario):
        scen = scenario
        if overrides:
            data = apply_overrides(scen.model_dump(mode="json", by_alias=True), overrides)
            scen = scenario_from_dict(data, source=scen.name)
    elif isinstance(scenario, (str, Path)):
        scen = load_scenario(scenario, overrides)
    else:
        raise ConfigError(
            f"expected a scenario path or Scenario, got {type(scenario).__name__}",
            field="scenario",
        )
    if horizon is not None:
        if not horizon > 0:
            raise ConfigError(f"must be > 0, got {horizon}", field="horizon")
        warmup = scen.warmup if scen.warmup < horizon else 0.0
        scen = scen.model_copy(update={"horizon": float(horizon), "warmup": warmup})
    return scen


def resolve_objective(objective: Objective | dict[str, float] | None) -> Objective:
    if objective is None:
        return Objective()
    if isinstance(objective, Objective):
        return objective
    from pydantic import ValidationError

    from dispatch.scenario import format_validation_error

    try:
        return Objective.model_validate(objective)
    except ValidationError as err:
        raise format_validation_error(err, source="objective") from None


class _External(Policy):
    """Placeholder policy: decisions are deferred to the environment's ``step``."""

    name = "env"
    summary = "Decisions taken by a Gymnasium agent."
    defer = True

    def select(self, reviewer, candidates, now):  # pragma: no cover - never called
        raise RuntimeError("the environment decides")


class _CostMixin:
    """Reward bookkeeping shared by the pull and batch environments."""

    objective: Objective
    reward_kind: RewardKind
    reward_scale: float
    sim: Simulation | None
    _holding: HoldingCost | None
    _last_cost: float

    def _running_cost(self) -> float:
        if self._holding is not None:
            return self._holding.total
        return self.objective.running_cost(self.sim.collector)

    def _final_cost(self, result: SimResult) -> float:
        if self._holding is not None:
            return self._holding.total
        return self.objective.cost(result.overall)

    def _configure(
        self, scenario, objective, reward_scale, horizon, scenario_overrides, reward, render_mode
    ) -> None:
        """Validate and store the arguments both environments share."""
        if render_mode is not None:
            raise ConfigError("no render modes are supported", field="render_mode")
        if reward not in ("objective", "holding_cost"):
            raise ConfigError(
                f"must be 'objective' or 'holding_cost', got {reward!r}", field="reward"
            )
        if not (reward_scale > 0 and math.isfinite(reward_scale)):
            raise ConfigError(
                f"must be a positive number, got {reward_scale}", field="reward_scale"
            )
        self.render_mode = render_mode
        self.scenario = resolve_scenario(scenario, scenario_overrides, horizon)
        self.objective = resolve_objective(objective)
        self.reward_kind = reward
        self.reward_scale = float(reward_scale)

    def observation_names(self) -> list[str]:
        """Feature names in observation order (for export sidecars)."""
        return list(self._names)

    def action_names(self) -> list[str]:
        """Bucket names in action order."""
        return list(self._bucket_names)

    def _sim_seed(self, options: dict[str, Any] | None) -> int:
        """The episode's simulation seed: from ``self.np_random``, or ``options["sim_seed"]``
        to replay the day ``dispatch simulate --seed`` runs."""
        drawn = int(self.np_random.integers(0, 2**31 - 1))  # drawn always: same stream
        if options and options.get("sim_seed") is not None:
            return int(options["sim_seed"])
        return drawn

    def _start_costs(self, sim: Simulation) -> None:
        self._last_cost = 0.0
        self._holding = HoldingCost(sim) if self.reward_kind == "holding_cost" else None

    def _reward(self, cost: float) -> float:
        r = -(cost - self._last_cost) * self.reward_scale
        self._last_cost = cost
        return r


class AuditDispatchEnv(_CostMixin, gym.Env):
    """Pull dispatch of an audit operation: a free reviewer picks the queue it serves next.

    The environment wraps one :class:`~dispatch.simulator.Simulation` of a scenario (a day
    of an e-commerce trust-and-safety operation, or a textbook queue). Tasks wait in
    *buckets* (task class x market x risk band, oldest first within a bucket). Whenever a
    reviewer is free and has at least one bucket it may serve, the simulation pauses and
    the agent chooses that bucket; the reviewer takes its oldest task. Everything else
    (arrivals, handling times, decisions, QA, appeals, expiries, shifts, fatigue) is the
    simulator's, and the episode's cost is the comparison objective of
    :mod:`dispatch.objective`, so a better return means a better dispatcher in the reports.

    Register with ``import envs`` (Gymnasium 1.x has no plugin auto-loading), or name the
    module in the id: ``gymnasium.make("envs:dispatch/AuditDispatch-v0", scenario=PATH)``.

    ## Action Space

    ``Discrete(B)``, ``B`` = number of buckets (:meth:`action_names` gives their names,
    ``class/market/rBAND``). Valid actions are exactly ``sim.candidates(reviewer)``: buckets
    that are non-empty, that the reviewer's group is qualified for (class and market), and,
    once the reviewer has reached its wellbeing cap of severe items in the rolling hour,
    whose oldest task is not severe. :meth:`action_masks` returns them as a bool array (the
    sb3-contrib ``MaskablePPO`` convention) and ``info["action_mask"]`` carries the same.

    An invalid action (an unmasked agent) is not an error: it is replaced,
    deterministically, by FIFO's choice among the valid buckets (the oldest waiting task),
    and counted: ``info["invalid_action"]`` (this step) and ``info["invalid_actions"]``
    (this episode). The agent cannot leave a free reviewer idle (non-idling dispatch).

    ## Observation Space

    ``Box(low, high, (9 B + 7,), float32)``, feature-major: nine blocks of ``B`` values in
    bucket order, then seven globals (:meth:`observation_names` names every index):

    =================  ================  =========  ================================================
    index              feature           range      definition
    =================  ================  =========  ================================================
    ``[0, B)``         mean_risk         [0, 1]     mean upstream risk score of the waiting tasks
                                                    (the class's prior mean risk, clipped into the
                                                    bucket's risk band, when empty)
    ``[B, 2B)``        severe_share      [0, 1]     share of waiting tasks that count against
                                                    wellbeing caps
    ``[2B, 3B)``       harm_rate         [0, 2]     log1p(mean risk x severity x reach per minute) /
                                                    log1p(1e4)
    ``[3B, 4B)``       queue_len         [0, 2]     log1p(waiting tasks) / log1p(1000)
    ``[4B, 5B)``       oldest_age        [0, 5]     (now - arrival of the oldest waiting task) /
                                                    class SLA
    ``[5B, 6B)``       expiry_pressure   [0, 1]     x / (1 + x), x = waiting x mean handling / mean
                                                    patience: expected expiries during one handling
                                                    time (0 without patience)
    ``[6B, 7B)``       eligible          {0, 1}     1 if the reviewer's group may take the bucket's
                                                    class and market
    ``[7B, 8B)``       speed             [0, 4]     the group's speed factor for the class (0 if not
                                                    eligible)
    ``[8B, 9B)``       accuracy          [0, 1]     eligible x (r sens + (1 - r) spec - fatigue), r
                                                    = mean_risk
    ``9B``             tod_sin           [-1, 1]    sin(2 pi minute-of-day / 1440), minute 0 =
                                                    midnight
    ``9B + 1``         tod_cos           [-1, 1]    cos(2 pi minute-of-day / 1440)
    ``9B + 2``         elapsed           [0, 1]     now / horizon
    ``9B + 3``         fatigue           [0, 1]     the reviewer's accuracy drop / its group's
                                                    max_drop
    ``9B + 4``         at_cap            {0, 1}     1 if the reviewer reached its wellbeing cap
                                                    (severe buckets are masked)
    ``9B + 5``         free_reviewers    [0, 1]     free reviewers (pull: this one included) / all
                                                    reviewers
    ``9B + 6``         backlog           [0, 2]     log1p(all waiting tasks) / log1p(1e4)
    =================  ================  =========  ================================================

    The builder is shared with the ``learned`` policy (:mod:`dispatch.observation`).

    ## Rewards

    ``reward = -reward_scale x (cost_now - cost_at_previous_step)``.

    * ``reward="objective"`` (default): cost is :meth:`Objective.running_cost` (harm
      exposure, SLA breaches, wrong decisions, false enforcements, expired tasks, each
      charged when it becomes certain). The final step adds the difference to
      ``Objective.cost(result.overall)`` (which also charges tasks still waiting past their
      SLA at the horizon and the harm of items still open), so **the rewards of an episode
      sum to exactly -reward_scale x the objective that comparisons report**. With the
      default ``reward_scale = 1.0`` a step of ``ecommerce_day`` costs about 0.5 on average
      (rewards are sparse and spiky: most steps 0, a harmful miss several units).
    * ``reward="holding_cost"``: cost is sum over classes of ``holding_cost`` x (tasks of
      the class waiting), integrated exactly over simulated time (the c-mu setting); the
      rewards sum to -reward_scale x that integral over the horizon. Use a scale of about
      0.1 on ``cmu_single_server``.

    ## Starting State

    ``reset(seed=...)`` seeds ``self.np_random``; every episode draws the simulation seed
    as an integer from it (so a seeded reset fixes the whole episode, and later unseeded
    resets continue the sequence). ``options={"sim_seed": s}`` runs simulation seed ``s``
    exactly, i.e. the same day as ``dispatch simulate --seed s``. The simulation runs to the
    first decision.

    ## Episode End

    ``terminated`` is True when the simulated horizon is reached (there is no further
    decision before it); ``truncated`` is always False and no ``max_episode_steps`` is
    registered: the horizon ends episodes. The final ``info`` carries ``episode_cost`` (the
    objective, or the holding-cost integral) and :attr:`last_result` holds the
    :class:`~dispatch.metrics.SimResult`. The last observation has the reviewer blocks zero
    and an all-False mask.

    ## Arguments

    * ``scenario``: path of a scenario YAML file, or a :class:`~dispatch.scenario.Scenario`.
    * ``objective``: :class:`~dispatch.objective.Objective` or a dict of its weights.
    * ``reward_scale``: multiplies every reward (default 1.0).
    * ``horizon``: minutes per episode, overriding the scenario's (shorter episodes).
    * ``scenario_overrides``: dotted-path overrides, as ``dispatch simulate --set``.
    * ``reward``: ``"objective"`` or ``"holding_cost"``.
    * ``render_mode``: only ``None`` (no rendering).

    ## Info

    ``action_mask``, ``invalid_action``, ``invalid_actions``, ``time`` (simulated minute),
    ``cost`` (running cost so far, unscaled); at the end also ``episode_cost``.

    ## Version History

    * v0: initial version (pull mode, objective and holding-cost rewards).
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | Path | Scenario,
        objective: Objective | dict[str, float] | None = None,
        reward_scale: float = 1.0,
        horizon: float | None = None,
        scenario_overrides: dict[str, Any] | None = None,
        reward: RewardKind = "objective",
        render_mode: str | None = None,
    ):
        self._configure(
            scenario, objective, reward_scale, horizon, scenario_overrides, reward, render_mode
        )
        # The layout fixes the buckets and the spaces (no simulation needed).
        self.layout = Layout.resolve(self.scenario)
        self._builder = ObservationBuilder(self.layout, PolicyMode.PULL)
        self._names = self._builder.names()
        self._bucket_names = self.layout.bucket_names
        self.n_buckets = self.layout.n_buckets
        self.action_space = spaces.Discrete(self.n_buckets)
        self.observation_space = spaces.Box(self._builder.low, self._builder.high, dtype=np.float32)
        self.sim: Simulation | None = None
        self.last_result: SimResult | None = None
        self._decision = None
        self._mask = np.zeros(self.n_buckets, dtype=bool)
        self._invalid = 0
        self._holding = None
        self._last_cost = 0.0
        self._done = True

    # -- Gymnasium API ------------------------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        sim_seed = self._sim_seed(options)
        sim = Simulation(self.scenario, _External(), sim_seed, layout=self.layout)
        self.sim = sim
        self._builder.bind(sim)
        self._start_costs(sim)
        if self._holding is not None:
            sim.on_advance = self._holding.advance
        self.last_result = None
        self._invalid = 0
        self._done = False
        self._decision = sim.next_decision()
        obs = self._observe()
        return obs, self._info(False)

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset()")
        sim = self.sim
        invalid = False
        if self._decision is not None:
            a = int(action)
            mask = self._mask
            if not (0 <= a < self.n_buckets and mask[a]):
                invalid = True
                self._invalid += 1
                a = fifo_choice(sim, self._decision[1])
            sim.decide(a)
            self._decision = sim.next_decision()
        if self._decision is None:
            result = sim.finish()
            self.last_result = result
            self._done = True
            final = self._final_cost(result)
            reward = self._reward(final)
            obs = self._observe()
            info = self._info(invalid)
            info["episode_cost"] = final
            return obs, reward, True, False, info
        reward = self._reward(self._running_cost())
        return self._observe(), reward, False, False, self._info(invalid)

    def action_masks(self) -> np.ndarray:
        """Valid actions now: exactly ``sim.candidates(reviewer)`` as a bool array."""
        return self._mask.copy()

    # -- internals ----------------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        mask = np.zeros(self.n_buckets, dtype=bool)
        d = self._decision
        if d is None:
            self._mask = mask
            return self._builder.empty()
        reviewer, cands = d
        mask[cands] = True
        self._mask = mask
        return self._builder.pull(reviewer)

    def _info(self, invalid: bool) -> dict[str, Any]:
        return {
            "action_mask": self._mask,
            "invalid_action": invalid,
            "invalid_actions": self._invalid,
            "time": self.sim.now,
            "cost": self._last_cost,
        }

    @property
    def reviewer(self):
        """The free reviewer the current decision is for (``None`` at the end)."""
        return self._decision[0] if self._decision is not None else None
