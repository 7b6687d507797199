"""Staffing formulas: the fewest reviewers that meet a class's service targets.

For one stream of work (Poisson arrivals at ``lam`` per minute, handling time ``S`` with mean
``1/mu``, optionally an exponential patience with rate ``theta``) served first come first
served by ``c`` reviewers:

* without patience, the M/M/c queue (Erlang C): an arrival waits with probability
  ``C(c, a)``, and a waiting task waits ``Exp(c mu - lam)``;
* with patience, the M/M/c+M queue (Erlang A, Palm): the number in system is a birth-death
  chain with death rate ``min(n, c) mu + max(n - c, 0) theta``; an arrival that finds
  ``c + k - 1`` tasks joins the queue at position ``k`` and is served with probability
  ``c mu / (c mu + k theta)`` after a wait ``H_k = sum_{i<=k} Exp(c mu + i theta)``
  (see :func:`dispatch.theory.erlang_a`).

The targets a plan states are measured as the simulator measures them:

* ``sla``: the share of tasks decided within the SLA, ``P(served and W + S <= T)``
  (expired tasks count as misses). With exponential handling the convolution is in closed
  form; otherwise it is a quadrature over 400 quantiles of the handling distribution
  (waiting and own handling time are independent under FCFS);
* ``max_expired``: ``P(abandon)``; ``mean_wait``: ``E[W]`` over all arrivals;
  ``max_delay_prob``: ``P(W > 0)``.

:func:`smallest_staff` returns the smallest ``c`` meeting every target (the exact answer
for exponential handling; the Erlang answer with the real handling distribution otherwise).
:func:`sqrt_staff` is square-root staffing, ``ceil(a + beta sqrt(a))``, the rule of thumb
the formulas refine (Halfin-Whitt: ``beta`` sets the delay probability).
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np

from dispatch.distributions import Deterministic, Exponential, Gamma, LogNormal, Uniform

_N_QUAD = 400


def handling_nodes(dist) -> np.ndarray:
    """400 equally weighted points representing a handling-time distribution.

    Quantiles at the midpoints ``(j + 0.5) / 400`` where the distribution has a closed-form
    inverse; otherwise a fixed-seed sample (deterministic, no global state).
    """
    from scipy import stats

    u = (np.arange(_N_QUAD) + 0.5) / _N_QUAD
    if isinstance(dist, Exponential):
        return stats.expon.ppf(u, scale=dist.mean)
    if isinstance(dist, LogNormal):
        s2 = math.log1p(dist.cv**2)
        return stats.lognorm.ppf(u, math.sqrt(s2), scale=dist.mean * math.exp(-s2 / 2))
    if isinstance(dist, Gamma):
        k = 1.0 / dist.cv**2
        return stats.gamma.ppf(u, k, scale=dist.mean / k)
    if isinstance(dist, Deterministic):
        return np.full(_N_QUAD, float(dist.value))
    if isinstance(dist, Uniform):
        return dist.low + u * (dist.high - dist.low)
    return np.sort(dist.sample(np.random.default_rng(2008), _N_QUAD))


def _log_pi(c: int, lam: float, mu: float, theta: float) -> np.ndarray:
    """Normalised log stationary distribution of the number in an M/M/c(+M) system."""
    n_max = c + 64
    while True:
        n = np.arange(1, n_max + 1, dtype=float)
        deaths = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
        logw = np.concatenate([[0.0], np.cumsum(np.log(lam) - np.log(deaths))])
        if logw[-1] - logw.max() < -40 and (theta > 0 or lam < c * mu):
            return logw - np.logaddexp.reduce(logw)
        n_max *= 2
        if n_max > 10_000_000:  # pragma: no cover - unstable inputs are filtered before
            raise ValueError("queue too heavily loaded for the stationary formulas")


def measures(
    c: int, lam: float, mu: float, theta: float, sla: float, nodes: np.ndarray | None
) -> dict[str, float]:
    """``sla`` share, ``p_abandon``, ``mean_wait``, ``p_wait`` of ``c`` reviewers.

    ``nodes``: handling-time quadrature points (:func:`handling_nodes`), or ``None`` for
    exponential handling (closed form).
    """
    if lam <= 0:
        return {"sla": 1.0, "p_abandon": 0.0, "mean_wait": 0.0, "p_wait": 0.0}
    if theta <= 0:
        return _erlang_c_measures(c, lam, mu, sla, nodes)
    pi = np.exp(_log_pi(c, lam, mu, theta))
    queue = np.maximum(np.arange(pi.size) - c, 0)
    mean_queue = float(pi @ queue)
    p_wait = float(pi[c:].sum())
    k = np.arange(1, pi.size - c + 1, dtype=float)
    weights = pi[c:] * c * mu / (c * mu + k * theta)  # found c+k-1, will be served
    out = {
        "p_abandon": theta * mean_queue / lam,
        "mean_wait": mean_queue / lam,
        "p_wait": p_wait,
    }
    if not math.isfinite(sla):
        out["sla"] = 1.0 - out["p_abandon"]
        return out
    t = np.maximum(sla - (nodes if nodes is not None else _exp_nodes(mu)), 0.0)
    served_by = _hypoexp_mixture_cdf(weights, c * mu, theta, t)
    no_wait = float(pi[:c].sum())
    out["sla"] = float(np.mean(no_wait * (t > 0) + served_by))
    return out


def _exp_nodes(mu: float) -> np.ndarray:
    u = (np.arange(_N_QUAD) + 0.5) / _N_QUAD
    return -np.log1p(-u) / mu


def _erlang_c_measures(
    c: int, lam: float, mu: float, sla: float, nodes: np.ndarray | None
) -> dict[str, float]:
    if lam >= c * mu:
        return {"sla": 0.0, "p_abandon": 0.0, "mean_wait": math.inf, "p_wait": 1.0}
    a = lam / mu
    b = 1.0
    for j in range(1, c + 1):
        b = a * b / (j + a * b)
    pw = b / (1.0 - (a / c) * (1.0 - b))
    g = c * mu - lam
    if nodes is None:
        # S ~ Exp(mu): P(E + S <= T) for E ~ Exp(g), in closed form.
        f_s = 1.0 - math.exp(-mu * sla)
        if abs(g - mu) < 1e-12:
            conv = 1.0 - math.exp(-mu * sla) * (1.0 + mu * sla)
        else:
            conv = 1.0 - (g * math.exp(-mu * sla) - mu * math.exp(-g * sla)) / (g - mu)
        share = (1.0 - pw) * f_s + pw * conv
    else:
        t = sla - nodes
        ok = t >= 0
        share = float(np.mean(ok * ((1.0 - pw) + pw * (1.0 - np.exp(-g * np.maximum(t, 0))))))
    return {"sla": share, "p_abandon": 0.0, "mean_wait": pw / g, "p_wait": pw}


def _hypoexp_mixture_cdf(w: np.ndarray, cmu: float, theta: float, t: np.ndarray) -> np.ndarray:
    """``sum_k w_k P(H_k <= t)`` for each t, ``H_k = sum_{i=1..k} Exp(cmu + i theta)``.

    The tagged task's queue position is a pure-death chain (position i leaves at rate
    ``cmu + i theta``); the mass that has reached position 0 by time ``t`` is the CDF.
    Solved by uniformisation over a truncated position range.
    """
    keep = np.nonzero(w > 1e-14 * max(w.max(), 1e-300))[0]
    if keep.size == 0:
        return np.zeros_like(t)
    w = w[: keep[-1] + 1]
    k = np.arange(1, w.size + 1, dtype=float)
    rates = cmu + k * theta
    big = float(rates[-1])
    out = np.zeros_like(t)
    uniq, inv = np.unique(t, return_inverse=True)
    tmax = float(uniq[-1])
    if tmax <= 0:
        return out
    # Poisson(big * t) jumps; each jump at position i moves down w.p. rates_i / big.
    n_jumps = int(big * tmax + 10 * math.sqrt(big * tmax) + 20)
    stay = 1.0 - rates / big
    move = rates / big
    p = w.copy()  # mass at positions 1..K
    absorbed = np.zeros(n_jumps + 1)  # mass at 0 after j jumps
    for j in range(1, n_jumps + 1):
        down = p * move
        absorbed[j] = absorbed[j - 1] + down[0]
        p = p * stay
        p[:-1] += down[1:]
        if p.sum() < 1e-15:
            absorbed[j + 1 :] = absorbed[j]
            break
    from scipy import stats

    js = np.arange(n_jumps + 1)
    for u_i, tu in enumerate(uniq):
        if tu <= 0:
            continue
        pois = stats.poisson.pmf(js, big * tu)
        out_val = float(pois @ absorbed)
        out[inv == u_i] = out_val
    return out


@lru_cache(maxsize=200_000)
def _smallest_cached(
    lam: float, mean: float, theta: float, sla: float, targets: tuple, nodes_key: int
) -> int:
    nodes = _NODES.get(nodes_key)
    mu = 1.0 / mean
    goal = dict(targets).get("sla")
    if goal is not None:
        best = float(np.mean(nodes <= sla)) if nodes is not None else 1 - math.exp(-mu * sla)
        if best < goal:
            raise UnreachableTarget(
                f"only {100 * best:.1f}% of tasks are handled within the SLA of {sla:g} min "
                f"even without waiting; an SLA target of {100 * goal:g}% cannot be met by "
                "staffing (lower the target or lengthen the SLA)"
            )
    a = lam * mean
    c = max(1, int(math.floor(a)) if theta > 0 else int(math.floor(a)) + 1)
    while True:
        m = measures(c, lam, mu, theta, sla, nodes)
        if _meets(m, dict(targets)):
            break
        c += 1
    # Walk down in case the start overshot (Erlang A can need fewer than the load).
    while c > 1:
        m = measures(c - 1, lam, mu, theta, sla, nodes)
        if not _meets(m, dict(targets)) or (theta <= 0 and lam >= (c - 1) * mu):
            break
        c -= 1
    return c


_NODES: dict[str, np.ndarray] = {}


class UnreachableTarget(ValueError):
    """No number of reviewers meets the target (the handling time alone breaks the SLA)."""  # handling distribution (as JSON) -> quadrature nodes


def _meets(m: dict[str, float], targets: dict[str, float]) -> bool:
    checks = {
        "sla": lambda v: m["sla"] >= v,
        "max_expired": lambda v: m["p_abandon"] <= v,
        "mean_wait": lambda v: m["mean_wait"] <= v,
        "max_delay_prob": lambda v: m["p_wait"] <= v,
    }
    return all(checks[k](v) for k, v in targets.items())


def smallest_staff(
    lam: float,
    mean_handling: float,
    targets: dict[str, float],
    *,
    sla: float = math.inf,
    patience_mean: float | None = None,
    handling=None,
) -> int:
    """Fewest reviewers (speed 1) meeting every target for this stream; 0 without demand.

    ``handling`` is the handling-time distribution (``None`` or exponential: closed forms);
    ``patience_mean`` an exponential patience's mean (``None``: tasks never expire). Without
    targets the answer is the smallest stable staffing (Erlang C) or the load, rounded up.
    """
    if lam <= 0:
        return 0
    theta = 0.0 if patience_mean is None or not math.isfinite(patience_mean) else 1 / patience_mean
    nodes = None if handling is None or isinstance(handling, Exponential) else handling
    key = ""
    if nodes is not None:
        key = nodes.model_dump_json()
        if key not in _NODES:
            _NODES[key] = handling_nodes(nodes)
    tg = tuple(sorted(targets.items()))
    return _smallest_cached(round(lam, 9), mean_handling, theta, float(sla), tg, key)


def sqrt_staff(load: float, beta: float) -> int:
    """Square-root staffing ``ceil(load + beta * sqrt(load))`` (0 without load)."""
    if load <= 0:
        return 0
    return int(math.ceil(load + beta * math.sqrt(load) - 1e-9))
