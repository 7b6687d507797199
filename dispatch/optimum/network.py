"""A scenario as a small exponential queueing network: the model ``dispatch optimum`` solves.

The simulator's semantics, reduced to what the holding cost depends on:

* a **queue** per bucket that can ever hold work (class x market; risk bands are refused):
  Poisson arrivals at the class rate times the market share, plus routed follow-ups;
* **servers** are the reviewers of each group; a group serves its eligible queues at rate
  ``speed / mean handling`` (exponential handling), reviews are never interrupted;
* a finished task of a class spawns a follow-up in each routing rule's target class with the
  rule's probability (independent coins, zero delay, same market), as the simulator does;
* a waiting task of a class with exponential patience abandons at rate ``1 / mean patience``;
* the cost rate is ``sum_q holding_cost(q) x (waiting + in review)``: the ``holding_cost``
  metric of :mod:`dispatch.metrics`.

:func:`network_from_scenario` refuses, with one line naming the field, what the MDP cannot
represent exactly (non-exponential times, time-varying arrivals, shifts, fatigue, wellbeing
caps, routing delays or outcome filters, imported data) and unstable networks, checked by the
static planning LP: the smallest share of every group's capacity that can carry the traffic.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dispatch.distributions import Exponential
from dispatch.errors import ConfigError
from dispatch.scenario import NoArrivals, PoissonArrivals, Scenario


@dataclass(frozen=True)
class Group:
    """A reviewer group: ``count`` servers, service ``rates[q]`` (0 = not eligible)."""

    name: str
    count: int
    rates: tuple[float, ...]

    @property
    def eligible(self) -> tuple[int, ...]:
        return tuple(q for q, r in enumerate(self.rates) if r > 0)


@dataclass(frozen=True)
class Network:
    """Queues, groups and routing of an exponential network (rates per minute).

    ``routes[q]`` lists the outcomes of a completion at queue ``q`` as ``(prob, targets)``,
    targets being the queues that each receive one follow-up (probabilities sum to 1).
    """

    queue_names: tuple[str, ...]
    queue_buckets: tuple[int, ...]  # simulator bucket index of each queue
    arrival: tuple[float, ...]
    holding: tuple[float, ...]
    abandon: tuple[float, ...]
    groups: tuple[Group, ...]
    routes: tuple[tuple[tuple[float, tuple[int, ...]], ...], ...]
    load: float  # smallest max share of group capacity that carries the traffic (< 1)

    @property
    def n_queues(self) -> int:
        return len(self.queue_names)


def _refuse(message: str, field: str) -> ConfigError:
    return ConfigError(f"dispatch optimum cannot solve this scenario: {message}", field=field)


def _check_supported(scen: Scenario) -> None:
    if scen.data.task_logs or scen.data.rosters:
        raise _refuse("imported data (replayed arrivals, rosters) is not exponential", "data")
    if scen.risk_bands:
        raise _refuse("risk bands split classes into several queues; remove them", "risk_bands")
    for c in scen.classes:
        f = f"classes.{c.name}"
        if not isinstance(c.arrivals, PoissonArrivals | NoArrivals):
            raise _refuse(f"arrivals of kind {c.arrivals.kind} vary in time", f"{f}.arrivals")
        if isinstance(c.arrivals, PoissonArrivals) and c.arrivals.bursts:
            raise _refuse("bursts make the arrival rate vary in time", f"{f}.arrivals.bursts")
        if not isinstance(c.handling, Exponential):
            raise _refuse(f"handling is {c.handling.kind}, not exponential", f"{f}.handling")
        if c.patience is not None and not isinstance(c.patience, Exponential):
            raise _refuse(f"patience is {c.patience.kind}, not exponential", f"{f}.patience")
    for g in scen.reviewers:
        f = f"reviewers.{g.name}"
        if g.shifts:
            raise _refuse("shifts make the workforce vary in time", f"{f}.shifts")
        if g.fatigue is not None:
            raise _refuse("fatigue makes reviewers' state depend on their history", f"{f}.fatigue")
        if g.wellbeing_cap is not None:
            raise _refuse("wellbeing caps depend on the last hour's history", f"{f}.wellbeing_cap")
    for r in scen.all_routing():
        if r.delay is not None:
            raise _refuse(f"routing {r.source} -> {r.target} has a delay", "routing.delay")
        if r.when != "any":
            raise _refuse(
                f"routing {r.source} -> {r.target} depends on the decision ({r.when})",
                "routing.when",
            )


def _queues(scen: Scenario) -> list[tuple[int, int, float]]:
    """(class index, market index, external rate) of every class x market bucket."""
    out = []
    markets = list(scen.markets)
    for ci, c in enumerate(scen.classes):
        mix = c.market_mix or {m: 1.0 / len(markets) for m in markets}
        rate = c.arrivals.rate if isinstance(c.arrivals, PoissonArrivals) else 0.0
        for m in markets if not c.market_mix else list(c.market_mix):
            out.append((ci, markets.index(m), rate * mix[m]))
    return out


def _traffic(ext: np.ndarray, mean_routed: np.ndarray) -> np.ndarray:
    """Solve the traffic equations ``lam = ext + R^T lam``; refuse routing that never ends."""
    n = len(ext)
    try:
        lam = np.linalg.solve(np.eye(n) - mean_routed.T, ext)
    except np.linalg.LinAlgError:
        lam = None
    if lam is None or (lam < -1e-12).any() or np.abs(np.linalg.eigvals(mean_routed)).max() >= 1:
        raise _refuse("routing sends every task around a loop forever", "routing")
    return np.maximum(lam, 0.0)


def _planning_load(lam: np.ndarray, groups: list[Group], abandon: tuple[float, ...]) -> float:
    """Static planning LP: min rho s.t. groups' time shares carry every queue's traffic.

    Variables ``x[g, q]`` (servers of g busy on q) and ``rho``; queues whose tasks abandon
    need no capacity (abandonment keeps them stable).
    """
    from scipy.optimize import linprog

    pairs = [(gi, q) for gi, g in enumerate(groups) for q in g.eligible]
    nv = len(pairs) + 1
    a_eq, b_eq = [], []
    for q, lq in enumerate(lam):
        if abandon[q] > 0 or lq <= 0:
            continue
        row = np.zeros(nv)
        for j, (gi, qq) in enumerate(pairs):
            if qq == q:
                row[j] = groups[gi].rates[q]
        if not row.any():
            return np.inf
        a_eq.append(row)
        b_eq.append(lq)
    a_ub = np.zeros((len(groups), nv))
    for j, (gi, _q) in enumerate(pairs):
        a_ub[gi, j] = 1.0
    a_ub[:, -1] = [-g.count for g in groups]
    c = np.zeros(nv)
    c[-1] = 1.0
    res = linprog(
        c, A_ub=a_ub, b_ub=np.zeros(len(groups)), A_eq=np.array(a_eq) if a_eq else None,
        b_eq=np.array(b_eq) if b_eq else None, bounds=[(0, None)] * nv, method="highs",
    )  # fmt: skip
    return float(res.x[-1]) if res.status == 0 else np.inf


def network_from_scenario(scen: Scenario) -> Network:
    """The exponential network of a scenario, or a ConfigError saying why it has none."""
    _check_supported(scen)
    if not scen.reviewers or all(g.count == 0 for g in scen.reviewers):
        raise _refuse("there are no reviewers", "reviewers")
    cand = _queues(scen)
    names = [c.name for c in scen.classes]
    index = {(ci, mi): k for k, (ci, mi, _) in enumerate(cand)}
    rules = scen.all_routing()
    outcomes: list[list[tuple[float, tuple[int, ...]]]] = []
    mean_routed = np.zeros((len(cand), len(cand)))
    for ci, mi, _ in cand:
        mine = [r for r in rules if r.source == names[ci]]
        targets = []
        for r in mine:
            key = (names.index(r.target), mi)
            if key not in index:
                raise _refuse(
                    f"routing {r.source} -> {r.target} sends market {scen.markets[mi]} work "
                    "to a class whose market_mix excludes it",
                    "routing",
                )
            targets.append((r.prob, index[key]))
        outs = []
        for coins in itertools.product((True, False), repeat=len(targets)):
            p = float(
                np.prod([pr if on else 1 - pr for on, (pr, _) in zip(coins, targets, strict=True)])
            )
            if p > 0:
                outs.append((p, tuple(t for on, (_, t) in zip(coins, targets, strict=True) if on)))
        outcomes.append(outs)
        for pr, t in targets:
            mean_routed[index[(ci, mi)], t] += pr
    ext = np.array([r for _, _, r in cand])
    lam = _traffic(ext, mean_routed)
    keep = [k for k in range(len(cand)) if lam[k] > 0]
    if not keep:
        raise _refuse("no work ever arrives", "classes")
    renum = {k: i for i, k in enumerate(keep)}
    bucket_names = _bucket_names(scen)
    classes = scen.classes
    abandon = tuple(
        1.0 / classes[cand[k][0]].patience.mean if classes[cand[k][0]].patience else 0.0
        for k in keep
    )
    groups = []
    for g in scen.reviewers:
        if g.count == 0:
            continue
        allowed = set(range(len(scen.markets))) if g.markets == "all" else {
            list(scen.markets).index(m) for m in g.markets
        }  # fmt: skip
        rates = []
        for k in keep:
            ci, mi, _ = cand[k]
            ok = names[ci] in g.classes and mi in allowed
            rates.append(g.speed.get(names[ci], 1.0) / classes[ci].handling.mean if ok else 0.0)
        groups.append(Group(g.name, g.count, tuple(rates)))
    for q, k in enumerate(keep):
        if not any(g.rates[q] > 0 for g in groups):
            raise _refuse(f"no reviewer group serves {bucket_names[k]}", "reviewers")
    routes = tuple(
        tuple((p, tuple(renum[t] for t in ts)) for p, ts in outcomes[k]) for k in keep
    )  # targets always carry traffic, so they are kept
    load = _planning_load(lam[keep], groups, abandon)
    if load >= 1.0:
        raise _refuse(
            f"the network is unstable: carrying its traffic needs {load:.3f} of the "
            "reviewers' capacity (>= 1); the optimum is infinite",
            "classes",
        )
    return Network(
        queue_names=tuple(bucket_names[k] for k in keep),
        queue_buckets=tuple(keep),
        arrival=tuple(float(ext[k]) for k in keep),
        holding=tuple(float(classes[cand[k][0]].holding_cost) for k in keep),
        abandon=abandon,
        groups=tuple(groups),
        routes=routes,
        load=load,
    )


def network_digest(net: Network) -> str:
    """A stable hash of the network (what a policy table is valid for: not the horizon)."""
    import hashlib
    import json
    from dataclasses import asdict

    payload = json.dumps(asdict(net), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def _bucket_names(scen: Scenario) -> list[str]:
    """Names of the class x market buckets, as the simulator names them (no risk bands)."""
    out = []
    for ci, mi, _ in _queues(scen):
        name = scen.classes[ci].name
        out.append(name if len(scen.markets) == 1 else f"{name}/{scen.markets[mi]}")
    return out
