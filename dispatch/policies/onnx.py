"""The ``onnx`` policy: an exported dispatcher (``dispatch export``) run inside the simulator.

It evaluates the production artefact itself: decisions come from
:class:`dispatch.deploy.DeployedDispatcher` (onnxruntime and numpy only, the file's SHA-256
checked against its sidecar), observations from :class:`dispatch.observation.ObservationBuilder`
exactly as the training environment builds them. Importing or running it needs neither torch
nor stable-baselines3.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from dispatch.deploy import DeployedDispatcher, DeploymentError
from dispatch.policies.base import Policy, PolicyMode
from dispatch.policies.registry import register

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.simulator import Simulation

__all__ = ["DeployedParams", "DeployedPolicy"]


class DeployedParams(BaseModel):
    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)
    path: str = Field(description="Exported .onnx file (its .onnx.json sidecar next to it).")


@register
class DeployedPolicy(Policy):
    """Runs an exported (ONNX) dispatcher inside the simulator.

    Pull models: at every decision the observation is built by
    :class:`dispatch.observation.ObservationBuilder` (``pull``) for the free reviewer, the
    mask is the reviewer's candidate buckets, and the exported graph picks the bucket.

    Priority-weight models run in batch mode with the training environment's
    ``interval`` and ``on_demand`` (from the sidecar): at every epoch instant
    ``k x interval`` (before any other event at that instant, as the environment observes
    before it advances) the graph maps the ``batch`` observation to per-bucket weights,
    which tilt :class:`dispatch.observation.WeightedAssigner` until the next epoch.

    Binding checks that the scenario's buckets and observation layout equal the model's
    (names and order), else :class:`DeploymentError`; a scenario with the same layout but
    other parameters (horizon and warm-up aside) only warns, as the ``learned`` policy does.
    """

    name = "onnx"
    summary = (
        "An exported ONNX dispatcher (dispatch export) run with onnxruntime: evaluates the "
        "production artefact itself."
    )
    Params = DeployedParams

    def __init__(self, **params: Any):
        super().__init__(**params)
        self.dispatcher = DeployedDispatcher(self.params.path)
        d = self.dispatcher
        self._builder = None
        self._assigner = None
        if d.kind == "priority_weights":
            env = d.sidecar.get("environment") or {}
            batch = env.get("batch") or {}
            kw = env.get("kwargs") or {}
            self.mode = PolicyMode.BATCH
            self.batch_interval = float(batch.get("interval", kw.get("interval", 5.0)))
            self.on_demand = bool(batch.get("on_demand", kw.get("on_demand", True)))
            # Batch assigner the weights tilt (envs.batch_dispatch ``assigner``); for
            # ``flow`` the simulation's epochs follow the flow policy, weights every interval.
            self._kind = kw.get("assigner", "weighted")
            self._update_interval = self.batch_interval
            if self._kind != "weighted":
                from dispatch.policies.weighted import assigner_timing

                self.batch_interval, self.on_demand = assigner_timing(
                    self._kind, kw.get("assigner_params"), self.batch_interval, self.on_demand
                )

    def bind(self, sim: Simulation, rng: np.random.Generator) -> None:
        super().bind(sim, rng)
        from dispatch.observation import ObservationBuilder

        d = self.dispatcher
        builder = ObservationBuilder(sim.layout, self.mode).bind(sim)
        buckets = [b.name for b in sim.buckets]
        if buckets != d.action_names or builder.names() != d.observation_names:
            scen = d.sidecar.get("scenario") or {}
            raise DeploymentError(
                f"the model was exported for scenario {scen.get('name')!r} "
                f"({d.n_actions} buckets, {d.obs_dim} features); scenario "
                f"{sim.scenario.name!r} has {len(buckets)} buckets and "
                f"{builder.size} features with different names: evaluate the model on the "
                "scenario (layout) it was trained on",
                source=str(d.path),
            )
        from dispatch.observation import layout_digest

        trained = (d.sidecar.get("scenario") or {}).get("layout_digest")
        if trained is not None and trained != layout_digest(sim.scenario):
            warnings.warn(
                f"policy onnx: scenario '{sim.scenario.name}' differs from the one the model "
                "was trained on (same buckets, other parameters; horizon aside)",
                stacklevel=2,
            )
        self._builder = builder
        if self.mode == PolicyMode.BATCH:
            from dispatch.policies.weighted import make_assigner

            kw = (self.dispatcher.sidecar.get("environment") or {}).get("kwargs") or {}
            self._assigner = make_assigner(
                sim, self._kind, kw.get("assigner_params"), kw.get("weight_scale", 1.0)
            )
            self._schedule_epoch(0.0)

    # pull ---------------------------------------------------------------------------------------
    def select(self, reviewer: Reviewer, candidates: list[int], now: float) -> int | None:
        if len(candidates) == 1:  # the masked argmax over one valid bucket
            return candidates[0]
        obs = self._builder.pull(reviewer)
        mask = np.zeros(self.dispatcher.n_actions, dtype=bool)
        mask[candidates] = True
        return self.dispatcher.decide(obs, mask)

    # batch --------------------------------------------------------------------------------------
    def _schedule_epoch(self, t: float) -> None:
        """New weights at minute ``t``, before any other event of that instant (``first``),
        as the environment observes before it advances."""
        self.sim.schedule(t, self._on_epoch, first=True)

    def _on_epoch(self, _value) -> None:
        sim = self.sim
        now = sim.now
        w = np.asarray(self.dispatcher.decide(self._builder.batch()), dtype=np.float64)
        if not np.all(np.isfinite(w)):  # pragma: no cover - the graph clips
            w = np.nan_to_num(w, nan=0.0, posinf=1.0, neginf=-1.0)
        self._assigner.set_weights(w)
        nxt = now + self._update_interval
        if nxt < sim.horizon:
            self._schedule_epoch(nxt)

    def assign(self, reviewers: list[Reviewer], now: float) -> list[tuple[Reviewer, int]]:
        if self._assigner is None:  # a pull model asked in batch mode: per-reviewer select
            return super().assign(reviewers, now)
        return self._assigner.assign(reviewers, now)

    def describe(self) -> str:
        return f"{self.name}(path={self.params.path})"
