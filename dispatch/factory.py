"""Making tasks: every random attribute of a task is drawn here, from its class's streams.

A task's market, risk score, hidden truth, severity, reach, work content, patience, decision
coin and routing coins are drawn when it arrives, each from its own stream (see
:mod:`dispatch.randomness`), so the world a policy faces does not depend on the policy.
Draws are made in vectorised chunks (one numpy call per attribute per 1024 tasks) and
handed out by index: per task this costs a few list lookups.
"""

from __future__ import annotations

import math

import numpy as np

from dispatch.model import Task
from dispatch.randomness import Streams
from dispatch.scenario import Scenario, TaskClass

CHUNK = 1024


class TaskFactory:
    """Draws the attributes of new tasks of one class.

    ``followup=True`` makes a factory for routed follow-up tasks (QA, appeals,
    escalations), whose draws come from a separate stream because how many there are
    depends on the policy's decisions.
    """

    def __init__(
        self,
        scenario: Scenario,
        cls_index: int,
        streams: Streams,
        n_routes: int,
        market_index: dict[str, int],
        followup: bool = False,
    ):
        spec: TaskClass = scenario.classes[cls_index]
        self.spec = spec
        self.cls = cls_index
        self.n_routes = n_routes
        name = spec.name

        def g(stream: str) -> np.random.Generator:
            return streams.of(name, "followup" if followup else stream)

        self._g_attr = g("attributes")
        self._g_hand = g("handling")
        self._g_pat = g("patience")
        self._g_dec = g("decision")
        self._g_route = g("routing")
        if spec.market_mix:
            names = list(spec.market_mix)
            probs = np.array([spec.market_mix[m] for m in names], dtype=float)
        else:
            names = list(scenario.markets)
            probs = np.full(len(names), 1.0 / len(names))
        self.market_ids = np.array([market_index[m] for m in names], dtype=np.int64)
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        self._market_cdf = cdf
        self.lifetime = spec.harm.lifetime
        self.severe_threshold = spec.severe_risk_threshold
        self.sla = spec.sla
        self._i = CHUNK
        self._cols: tuple = ()

    def _refill(self) -> None:
        n = CHUNK
        spec = self.spec
        harm = spec.harm
        ga = self._g_attr
        if len(self.market_ids) == 1:
            market = np.full(n, self.market_ids[0])
        else:
            market = self.market_ids[np.searchsorted(self._market_cdf, ga.random(n), "right")]
        if harm.risk is not None:
            risk = np.clip(harm.risk.sample(ga, n), 0.0, 1.0)
        else:
            risk = np.full(n, harm.prevalence)
        violating = ga.random(n) < risk
        severity = harm.severity.sample(ga, n)
        reach = harm.reach.sample(ga, n)
        work = spec.handling.sample(self._g_hand, n)
        patience = spec.patience.sample(self._g_pat, n) if spec.patience else np.full(n, math.inf)
        decision = self._g_dec.random(n)
        if self.n_routes:
            route = self._g_route.random((n, self.n_routes)).tolist()
        else:
            route = [None] * n
        thr = self.severe_threshold
        severe = risk >= thr if thr is not None else np.zeros(n, dtype=bool)
        self._cols = (
            market.tolist(),
            risk.tolist(),
            violating.tolist(),
            severity.tolist(),
            reach.tolist(),
            work.tolist(),
            patience.tolist(),
            decision.tolist(),
            route,
            severe.tolist(),
        )
        self._i = 0

    def draw(self, task: Task, now: float) -> None:
        """Fill every random attribute of ``task`` arriving at ``now``."""
        i = self._i
        if i >= CHUNK:
            self._refill()
            i = 0
        self._i = i + 1
        c = self._cols
        task.cls = self.cls
        task.market = c[0][i]
        task.risk = c[1][i]
        task.violating = c[2][i]
        task.severity = c[3][i]
        task.reach = c[4][i]
        task.work = c[5][i]
        task.expires_at = now + c[6][i]
        task.decision_u = c[7][i]
        task.route_u = c[8][i]
        task.severe = c[9][i]
