"""Hybrid Gymnasium environment: the agent sets per-bucket priorities, a solver assigns."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from dispatch.errors import ConfigError
from dispatch.layout import Layout
from dispatch.metrics import SimResult
from dispatch.objective import Objective
from dispatch.observation import ObservationBuilder
from dispatch.policies.base import PolicyMode
from dispatch.policies.weighted import WeightedBatchPolicy, assigner_timing
from dispatch.scenario import Scenario
from dispatch.simulator import Simulation
from envs.audit_dispatch import RewardKind, _CostMixin

__all__ = ["BatchDispatchEnv"]


class BatchDispatchEnv(_CostMixin, gym.Env):
    """Hybrid dispatch: every ``interval`` minutes the agent re-weights the queues; an
    optimal assignment hands work to free reviewers with those weights.

    The environment wraps one :class:`~dispatch.simulator.Simulation` run in batch mode.
    At each decision epoch (minute 0, ``interval``, ``2 interval``, ...) the agent returns a
    priority weight per bucket (task class x market x risk band); the weights then scale
    the values of a work-conserving assignment of free reviewers to buckets, solved as a
    min-cost flow (:class:`~dispatch.policies.weighted.WeightedAssigner`): the value of giving a
    task of bucket ``b`` to a reviewer of group ``g`` is
    ``exp(2 w_b) x accuracy(g, b) x (1 + min(oldest age / SLA, 5))``. With
    ``on_demand=True`` (default) the assignment also runs whenever a task arrives or a
    reviewer frees up, with the weights of the current epoch, so nobody idles while there
    is work; with ``on_demand=False`` free reviewers wait for the next epoch.

    Register with ``import envs``, or ``gymnasium.make("envs:dispatch/BatchDispatch-v0",
    scenario=PATH)``.

    ## Action Space

    ``Box(-1, 1, (B,), float32)``: one weight per bucket, in :meth:`action_names` order.
    Weights are clipped to [-1, 1] and mapped to multipliers ``exp(2 w)`` in [0.14, 7.4];
    0 is neutral. Every action is valid: eligibility, non-empty queues and wellbeing caps
    are enforced by the assignment (reviewers at their cap only take buckets holding no
    severe task).

    ## Observation Space

    ``Box(low, high, (7 B + 5,), float32)``, feature-major (:meth:`observation_names`):

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
    ``[6B, 7B)``       free_eligible     [0, 1]     log1p(free reviewers eligible for the bucket) /
                                                    log1p(all reviewers)
    ``7B``             tod_sin           [-1, 1]    sin(2 pi minute-of-day / 1440), minute 0 =
                                                    midnight
    ``7B + 1``         tod_cos           [-1, 1]    cos(2 pi minute-of-day / 1440)
    ``7B + 2``         elapsed           [0, 1]     now / horizon
    ``7B + 3``         free_reviewers    [0, 1]     free reviewers (pull: this one included) / all
                                                    reviewers
    ``7B + 4``         backlog           [0, 2]     log1p(all waiting tasks) / log1p(1e4)
    =================  ================  =========  ================================================

    The observation is taken at the epoch instant, before that epoch's assignment.

    ## Rewards

    As :class:`~envs.audit_dispatch.AuditDispatchEnv`: ``-reward_scale x`` the change of
    :meth:`Objective.running_cost` over the epoch, with the final step adding the
    difference to ``Objective.cost(result.overall)``, so an episode's rewards sum to
    ``-reward_scale x`` the reported objective (``reward="objective"``); or the exact
    holding-cost integral (``reward="holding_cost"``). With the default
    ``reward_scale = 0.05`` and 5-minute epochs a step of ``ecommerce_day`` is about -1.8
    on average (-13 in the worst five minutes of a day).

    ## Starting State

    As the pull environment: the simulation seed is an integer drawn from
    ``self.np_random`` (or ``options={"sim_seed": s}``); the first observation is at
    minute 0.

    ## Episode End

    ``terminated`` when the horizon is reached (after ``ceil(horizon / interval)`` steps);
    never truncated; no ``max_episode_steps``. The final ``info`` has ``episode_cost`` and
    :attr:`last_result` holds the :class:`~dispatch.metrics.SimResult`.

    ## Arguments

    * ``scenario``, ``objective``, ``horizon``, ``scenario_overrides``, ``reward``: as the
      pull environment.
    * ``reward_scale``: multiplies every reward (default 0.05).
    * ``interval``: minutes between the agent's decisions (default 5).
    * ``on_demand``: also assign when work or a reviewer becomes free (default True).
    * ``assigner``: ``"weighted"`` (default; the ``WeightedAssigner`` described above)
      or ``"flow"``: each assignment is the ``flow`` policy's min-cost flow on its value
      model (:mod:`dispatch.policies.batch.value`), with ``weight_scale x w_b`` added to the
      value of every eligible column of bucket ``b``
      (:class:`~dispatch.policies.weighted.FlowAssigner`): all-zero
      weights reproduce ``simulate(scenario, "flow", seed)`` exactly. The simulation's
      epochs then follow the flow parameters (every minute and on demand by default), the
      agent still acts every ``interval`` minutes; ``on_demand`` is ignored.
    * ``assigner_params``: ``flow`` policy parameters (``FlowPolicy.Params``), default the
      policy's defaults.
    * ``weight_scale``: objective units per unit of weight for ``flow`` (default 1.0, one
      SLA breach).
    * ``render_mode``: only ``None``.

    ## Info

    ``time``, ``cost`` (running cost, unscaled), ``solver_calls``, ``greedy_calls``
    (fallback assignments); at the end ``episode_cost``.

    ## Version History

    * v0: initial version.
    """

    metadata = {"render_modes": []}

    def __init__(
        self,
        scenario: str | Path | Scenario,
        objective: Objective | dict[str, float] | None = None,
        reward_scale: float = 0.05,
        horizon: float | None = None,
        scenario_overrides: dict[str, Any] | None = None,
        reward: RewardKind = "objective",
        interval: float = 5.0,
        on_demand: bool = True,
        assigner: str = "weighted",
        assigner_params: dict[str, Any] | None = None,
        weight_scale: float = 1.0,
        render_mode: str | None = None,
    ):
        if not (interval > 0 and math.isfinite(interval)):
            raise ConfigError(
                f"must be a positive number of minutes, got {interval}", field="interval"
            )
        self._configure(
            scenario, objective, reward_scale, horizon, scenario_overrides, reward, render_mode
        )
        self.interval = float(interval)
        self.on_demand = bool(on_demand)
        assigner_timing(assigner, assigner_params, interval, on_demand)  # validates
        if not (weight_scale > 0 and math.isfinite(weight_scale)):
            raise ConfigError(
                f"must be a positive number, got {weight_scale}", field="weight_scale"
            )
        self.assigner_kind = assigner
        self.assigner_params = dict(assigner_params) if assigner_params else None
        self.weight_scale = float(weight_scale)
        self.layout = Layout.resolve(self.scenario)
        builder = ObservationBuilder(self.layout, PolicyMode.BATCH)
        self._names = builder.names()
        self._bucket_names = self.layout.bucket_names
        self.n_buckets = self.layout.n_buckets
        self.action_space = spaces.Box(-1.0, 1.0, (self.n_buckets,), dtype=np.float32)
        self.observation_space = spaces.Box(builder.low, builder.high, dtype=np.float32)
        self.sim: Simulation | None = None
        self.policy: WeightedBatchPolicy | None = None
        self.last_result: SimResult | None = None
        self._builder = builder
        self._holding = None
        self._last_cost = 0.0
        self._done = True

    def _make_policy(self) -> WeightedBatchPolicy:
        return WeightedBatchPolicy(
            self.interval,
            self.on_demand,
            self.assigner_kind,
            self.assigner_params,
            self.weight_scale,
        )

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        sim_seed = self._sim_seed(options)
        self.policy = self._make_policy()
        sim = Simulation(self.scenario, self.policy, sim_seed, layout=self.layout)
        self.sim = sim
        self._builder.bind(sim)
        self._start_costs(sim)
        self.last_result = None
        self._done = False
        sim.start()
        return self._builder.batch(), self._info()

    def step(self, action) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        if self.sim is None:
            raise RuntimeError("call reset() before step()")
        if self._done:
            raise RuntimeError("the episode is over; call reset()")
        sim = self.sim
        w = np.asarray(action, dtype=np.float64).reshape(self.n_buckets)
        if not np.all(np.isfinite(w)):
            w = np.nan_to_num(w, nan=0.0, posinf=1.0, neginf=-1.0)
        self.policy.set_weights(w)
        integrate = self._holding.advance if self._holding is not None else None
        sim.advance_to(sim.now + self.interval, integrate)
        if sim.now >= sim.horizon:
            result = sim.finish()
            self.last_result = result
            self._done = True
            final = self._final_cost(result)
            reward = self._reward(final)
            info = self._info()
            info["episode_cost"] = final
            return self._builder.batch(), reward, True, False, info
        reward = self._reward(self._running_cost())
        return self._builder.batch(), reward, False, False, self._info()

    def _info(self) -> dict[str, Any]:
        a = self.policy.assigner if self.policy is not None else None
        return {
            "time": self.sim.now,
            "cost": self._last_cost,
            "solver_calls": a.solver_calls if a is not None else 0,
            "greedy_calls": a.greedy_calls if a is not None else 0,
        }
