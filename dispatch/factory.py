"""Making tasks: every random attribute of a task is drawn here, from its class's streams.

A task's market, risk score, hidden truth, severity, reach, work content, patience, decision
coin and routing coins are drawn when it arrives, each from its own stream (see
:mod:`dispatch.randomness`), so the world a policy faces does not depend on the policy.
"""

from __future__ import annotations

import bisect
import math

import numpy as np

from dispatch.model import Task
from dispatch.randomness import Buffered, Streams
from dispatch.scenario import Scenario, TaskClass


class TaskFactory:
    """Draws the attributes of new tasks of one class."""

    def __init__(
        self,
        scenario: Scenario,
        cls_index: int,
        streams: Streams,
        n_routes: int,
        market_index: dict[str, int],
        stream_suffix: str = "",
    ):
        spec: TaskClass = scenario.classes[cls_index]
        self.spec = spec
        self.cls = cls_index
        self.n_routes = n_routes
        g_attr = streams.of(spec.name, "attributes" if not stream_suffix else "followup")
        g_hand = streams.of(spec.name, "handling" if not stream_suffix else "followup")
        g_pat = streams.of(spec.name, "patience" if not stream_suffix else "followup")
        g_dec = streams.of(spec.name, "decision" if not stream_suffix else "followup")
        g_route = streams.of(spec.name, "routing" if not stream_suffix else "followup")
        if spec.market_mix:
            names = list(spec.market_mix)
            probs = np.array([spec.market_mix[m] for m in names], dtype=float)
        else:
            names = list(scenario.markets)
            probs = np.full(len(names), 1.0 / len(names))
        self.market_ids = [market_index[m] for m in names]
        cdf = np.cumsum(probs)
        cdf[-1] = 1.0
        self._market_cdf = cdf.tolist()
        harm = spec.harm
        self._market_u = Buffered(lambda n: g_attr.random(n))
        if harm.risk is not None:
            self._risk = Buffered(lambda n: np.clip(harm.risk.sample(g_attr, n), 0.0, 1.0))
        else:
            p = harm.prevalence
            self._risk = None
            self._const_risk = p
        self._truth_u = Buffered(lambda n: g_attr.random(n))
        self._severity = Buffered(lambda n: harm.severity.sample(g_attr, n))
        self._reach = Buffered(lambda n: harm.reach.sample(g_attr, n))
        self._work = Buffered(lambda n: spec.handling.sample(g_hand, n))
        self._patience = (
            Buffered(lambda n: spec.patience.sample(g_pat, n)) if spec.patience else None
        )
        self._decision = Buffered(lambda n: g_dec.random(n))
        self._route = Buffered(lambda n: g_route.random(n)) if n_routes else None
        self.lifetime = harm.lifetime
        self.severe_threshold = spec.severe_risk_threshold
        self.sla = spec.sla

    def draw(self, task: Task, now: float) -> None:
        """Fill the random attributes of ``task`` arriving at ``now``."""
        task.cls = self.cls
        mids = self.market_ids
        task.market = (
            mids[0]
            if len(mids) == 1
            else mids[bisect.bisect_right(self._market_cdf, self._market_u.next())]
        )
        risk = self._risk.next() if self._risk is not None else self._const_risk
        task.risk = risk
        task.work = self._work.next()
        task.decision_u = self._decision.next()
        task.route_u = [self._route.next() for _ in range(self.n_routes)] if self._route else None
        task.expires_at = now + self._patience.next() if self._patience else math.inf
        thr = self.severe_threshold
        task.severe = thr is not None and risk >= thr

    def draw_item_truth(self) -> tuple[bool, float, float]:
        """(violating, severity, reach) given the last drawn risk — called right after draw."""
        return self._truth_u.next(), self._severity.next(), self._reach.next()
