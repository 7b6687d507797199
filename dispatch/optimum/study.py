"""The truncation study: solve on growing buffers until the optimum stops moving.

Queues are truncated at a buffer (arrivals to a full queue are lost), which lowers the cost;
the study grows every buffer by ``growth`` (50% by default), warm-starting each solve from
the previous relative values continued linearly, until the value changes by less than
``rtol`` (0.1%), or the next space would exceed ``max_states``, or the next solve is not
expected to end within ``time_limit`` CPU seconds of the start. The last solve's value, bounds and policy are the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from dispatch.errors import ConfigError
from dispatch.optimum.network import Network, network_digest, network_from_scenario
from dispatch.optimum.result import OptimumResult
from dispatch.optimum.solver import Solution, extend, solve
from dispatch.optimum.space import Space
from dispatch.scenario import Scenario

DEFAULT_MAX_STATES = 3_000_000


def initial_buffer(net: Network) -> int:
    """A first buffer that holds the typical queue: a few times ``1 / (1 - load)``."""
    return max(8, int(math.ceil(2.0 / max(1e-3, 1.0 - net.load))))


def truncation_study(
    net: Network,
    *,
    buffer: int | None = None,
    growth: float = 1.5,
    rtol: float = 1e-3,
    max_states: int = DEFAULT_MAX_STATES,
    time_limit: float = 600.0,
    work_conserving: bool = False,
    method: str = "auto",
    progress: Callable[[dict], None] | None = None,
) -> tuple[list[dict], Solution, Space, bool]:
    """Rows of the study, the last solution and its space, and whether it converged."""
    if growth <= 1.0:
        raise ConfigError("must be > 1 (e.g. 1.5 grows buffers by 50%)", field="growth")
    b = buffer or initial_buffer(net)
    t0 = time.process_time()
    rows: list[dict] = []
    prev: Solution | None = None
    space = None
    converged = False
    while True:
        cand = Space(net, (b,) * net.n_queues, work_conserving)
        if cand.n_states > max_states:
            if prev is None:
                raise ConfigError(
                    f"too many states: {cand.n_states:,} at buffer {b} (limit {max_states:,}); "
                    "give a smaller --buffer or a larger --max-states",
                    field="max_states",
                )
            break
        space = cand
        h0 = extend(prev.h, space.shape) if prev is not None else None
        sol = solve(space, h0, method=method)
        change = abs(sol.value - prev.value) / abs(sol.value) if prev is not None else math.nan
        row = {
            "buffers": list(sol.buffers),
            "states": sol.states,
            "value": sol.value,
            "lower": sol.lower,
            "upper": sol.upper,
            "change": change,
            "iterations": sol.iterations,
            "rounds": sol.rounds,
            "seconds": sol.seconds,
        }
        rows.append(row)
        if progress is not None:
            progress(row)
        prev = sol
        if change < rtol:
            converged = True
            break
        b = int(math.ceil(b * growth))
        # Stop when the next solve would not finish in time (cost grows ~ states^1.2).
        ratio = math.prod((b + 1) / d for d in space.dims)
        expected = sol.seconds * ratio**1.2
        if time.process_time() - t0 + expected > time_limit:
            break
    assert prev is not None and space is not None
    return rows, prev, space, converged


def solve_optimum(
    scenario: Scenario,
    *,
    work_conserving: bool = False,
    buffer: int | None = None,
    growth: float = 1.5,
    rtol: float = 1e-3,
    max_states: int = DEFAULT_MAX_STATES,
    time_limit: float = 600.0,
    method: str = "auto",
    progress: Callable[[dict], None] | None = None,
) -> OptimumResult:
    """The exact optimal long-run holding cost per minute of a small exponential scenario.

    Raises :class:`~dispatch.errors.ConfigError` (one line) for what it cannot solve.
    ``result.value`` compares directly with the simulator's ``overall.holding_cost``.
    """
    t0 = time.process_time()
    net = network_from_scenario(scenario)
    rows, sol, space, converged = truncation_study(
        net,
        buffer=buffer,
        growth=growth,
        rtol=rtol,
        max_states=max_states,
        time_limit=time_limit,
        work_conserving=work_conserving,
        method=method,
        progress=progress,
    )
    return OptimumResult(
        scenario=scenario.name,
        digest=network_digest(net),
        work_conserving=work_conserving,
        value=sol.value,
        lower=sol.lower,
        upper=sol.upper,
        converged=converged,
        buffers=sol.buffers,
        queue_names=list(net.queue_names),
        queue_buckets=list(net.queue_buckets),
        arrival=list(net.arrival),
        abandon=list(net.abandon),
        groups=[
            {"name": g.name, "count": g.count, "eligible": list(g.eligible)} for g in net.groups
        ],
        server_states=[[list(g) for g in s] for s in space.server_states],
        actions=[[list(g) for g in a] for a in space.action_table],
        study=rows,
        policy=sol.policy,
        seconds=time.process_time() - t0,
    )
