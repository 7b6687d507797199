"""Closed-form queueing results used to validate the dispatch simulator.

The simulator is a stochastic model of auditors (servers) working through a
stream of audit tasks (customers).  Before trusting its output on realistic,
messy scenarios we check it on the special cases where queueing theory gives
exact answers:

* **M/M/c** (Erlang C): Poisson arrivals at rate ``lam``, exponential service
  at rate ``mu`` per auditor, ``c`` identical auditors, first-come first-served,
  infinite patience.  Stable only if the offered load ``a = lam / mu`` is
  below ``c``.
* **M/M/c+M** (Palm / Erlang A): as M/M/c but every waiting task abandons
  (e.g. its deadline lapses) after an exponential patience with rate
  ``theta``.  Abandonment makes the system stable for any arrival rate.
* **M/G/1 with non-preemptive priorities** (Cobham's formula): several task
  classes share one auditor; a lower class never interrupts a task in
  service but always yields the queue to higher classes.
* **The c-mu rule**: with linear holding costs ``c_k`` per task per minute of
  waiting, the static priority order that minimises the long-run cost rate
  serves classes in decreasing ``c_k * mu_k``.
* **Little's law** ``L = lam * W``, which holds for any stable system and is
  a cheap consistency check on simulator bookkeeping.

Conventions: all rates are per minute and all times are in minutes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

__all__ = [
    "cmu_order",
    "cobham_priority_waits",
    "erlang_a",
    "erlang_c",
    "littles_law_gap",
    "mmc_mean_wait",
    "mmc_metrics",
    "priority_order_cost",
    "second_moment",
]

_TINY = 1e-12
"""Floor for denominators in relative gaps."""


def _check_mmc_args(c: int, lam: float, mu: float) -> None:
    """Validate M/M/c parameters (number of servers, arrival and service rate)."""
    if int(c) != c or c < 1:
        raise ValueError(f"c must be a positive integer, got {c!r}")
    if lam < 0:
        raise ValueError(f"arrival rate lam must be >= 0, got {lam}")
    if mu <= 0:
        raise ValueError(f"service rate mu must be > 0, got {mu}")


def _erlang_b(c: int, a: float) -> float:
    """Erlang B blocking probability for ``c`` servers and offered load ``a``.

    Uses the recursion ``B(0) = 1``, ``B(k) = a B(k-1) / (k + a B(k-1))``,
    which only ever manipulates probabilities in ``[0, 1]`` and so never
    overflows, unlike the textbook formula with ``a**c / c!``.
    """
    b = 1.0
    for k in range(1, c + 1):
        b = a * b / (k + a * b)
    return b


def erlang_c(c: int, lam: float, mu: float) -> float:
    """Probability that an arriving task has to wait in an M/M/c queue.

    By PASTA (Poisson arrivals see time averages) this equals the long-run
    fraction of time all ``c`` auditors are busy.  It is computed from the
    Erlang B blocking probability ``B`` via ``C = B / (1 - rho (1 - B))`` with
    ``rho = lam / (c mu)``, which is numerically stable for large ``c``.

    Parameters
    ----------
    c : int
        Number of auditors (servers), ``c >= 1``.
    lam : float
        Poisson arrival rate of tasks per minute.
    mu : float
        Service rate of one auditor per minute (``1 / mean service time``).

    Returns
    -------
    float
        The Erlang C probability of waiting, in ``[0, 1)``.

    Raises
    ------
    ValueError
        If the queue is unstable (``lam >= c * mu``) or arguments are invalid.
    """
    _check_mmc_args(c, lam, mu)
    if lam >= c * mu:
        raise ValueError(f"unstable M/M/c: lam={lam} >= c*mu={c * mu}")
    a = lam / mu
    rho = a / c
    b = _erlang_b(int(c), a)
    return b / (1.0 - rho * (1.0 - b))


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time a task waits in queue (before service) in M/M/c.

    ``Wq = C(c, a) / (c mu - lam)``: a task waits with probability ``C`` and,
    given that it waits, its wait is exponential with rate ``c mu - lam``
    (the rate at which the excess of capacity over demand drains the queue).

    Parameters
    ----------
    c, lam, mu
        As in :func:`erlang_c`.

    Returns
    -------
    float
        Mean waiting time in minutes (excluding service).
    """
    return erlang_c(c, lam, mu) / (c * mu - lam)


def mmc_metrics(c: int, lam: float, mu: float) -> dict[str, float]:
    """Standard steady-state performance measures of an M/M/c queue.

    Parameters
    ----------
    c, lam, mu
        As in :func:`erlang_c`.

    Returns
    -------
    dict
        ``p_wait``: probability of waiting (Erlang C);
        ``mean_wait``: mean wait in queue ``Wq``;
        ``mean_sojourn``: mean time in system ``W = Wq + 1/mu``;
        ``mean_in_system``: mean number in system ``L = lam W`` (Little);
        ``mean_queue``: mean number waiting ``Lq = lam Wq``;
        ``utilisation``: fraction of time an auditor is busy, ``lam/(c mu)``.
    """
    p_wait = erlang_c(c, lam, mu)
    wq = p_wait / (c * mu - lam)
    w = wq + 1.0 / mu
    return {
        "p_wait": p_wait,
        "mean_wait": wq,
        "mean_sojourn": w,
        "mean_in_system": lam * w,
        "mean_queue": lam * wq,
        "utilisation": lam / (c * mu),
    }


def _erlang_a_log_weights(
    c: int, lam: float, mu: float, theta: float, n_max: int | None, tol: float
) -> np.ndarray:
    """Unnormalised log stationary weights ``log pi_n`` of the M/M/c+M chain.

    The number of tasks in system is a birth-death process with birth rate
    ``lam`` and death rate ``d_n = min(n, c) mu + max(n - c, 0) theta``, so
    detailed balance gives ``pi_n = pi_{n-1} lam / d_n``.  Working with
    cumulative sums of ``log(lam / d_n)`` avoids overflow for large loads.

    If ``n_max`` is None the chain is extended in doubling chunks until the neglected
    tail mass (and its first moment) is below ``tol`` relative to the total.
    Beyond ``c`` the ratios ``r_n = lam / d_n`` are non-increasing, so the tail
    after state ``n`` is bounded by a geometric series with ratio
    ``r = r_{n+1}``: ``sum_{m>n} m pi_m <= pi_n (n r/(1-r) + r/(1-r)^2)``.
    """
    if n_max is not None:
        n = np.arange(1, n_max + 1, dtype=float)
        deaths = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
        return np.concatenate([[0.0], np.cumsum(np.log(lam) - np.log(deaths))])

    chunk = max(4 * c, 1024)
    logw = np.zeros(1)
    start = 1
    while True:
        n = np.arange(start, start + chunk, dtype=float)
        deaths = np.minimum(n, c) * mu + np.maximum(n - c, 0.0) * theta
        logw = np.concatenate([logw, logw[-1] + np.cumsum(np.log(lam) - np.log(deaths))])
        start += chunk
        chunk *= 2
        last = start - 1
        r = lam / (c * mu + (last + 1 - c) * theta) if last >= c else 1.0
        if r < 1.0:
            log_tail_bound = logw[-1] + math.log(last * r / (1 - r) + r / (1 - r) ** 2)
            log_total = float(np.logaddexp.reduce(logw))
            if log_tail_bound - log_total < math.log(tol):
                break
        if start > 50_000_000:  # pragma: no cover - safety net
            raise RuntimeError("Erlang A truncation did not converge")
    # Trim states that carry negligible mass, to keep arrays small.
    log_total = float(np.logaddexp.reduce(logw))
    above = np.nonzero(logw - log_total > math.log(tol) - 40.0)[0]
    keep = max(int(above[-1]) + 1, c + 2)
    return logw[:keep]


def erlang_a(
    c: int,
    lam: float,
    mu: float,
    theta: float,
    n_max: int | None = None,
) -> dict[str, float]:
    """Exact steady state of the M/M/c+M (Palm / Erlang A) queue.

    Tasks arrive as a Poisson process (rate ``lam``), each of ``c`` auditors
    serves at exponential rate ``mu``, and each *waiting* task independently
    abandons at rate ``theta`` (exponential patience with mean ``1/theta``;
    tasks in service never abandon).  Service is first-come first-served.

    The number in system is a birth-death chain, solved exactly (up to a
    truncation whose neglected mass is below ~1e-16 relative) in log-space.
    Because abandonment removes work, the chain is stable even when
    ``lam >= c mu``; it is only unstable if additionally ``theta == 0``.

    Per-arrival quantities follow from PASTA and Little's law:

    * ``p_wait = P(N >= c)``: the arrival finds every auditor busy.
    * ``mean_wait = E[Q] / lam``: mean time in queue averaged over *all*
      arrivals, including those that abandon (their wait is their patience)
      and those served at once (wait zero).
    * ``p_abandon = theta E[Q] / lam``: abandonments occur at rate
      ``theta E[Q]`` and each arrival abandons at most once.

    ``mean_wait_served`` needs a tagged-customer argument.  An arrival that
    finds ``n = c + k - 1`` tasks present joins the queue at position ``k``.
    At position ``i`` it moves up at rate ``c mu + (i - 1) theta`` (a service
    completion or an abandonment ahead of it) and abandons at rate ``theta``,
    so it spends an ``Exp(c mu + i theta)`` time there and moves up with
    probability ``(c mu + (i-1) theta) / (c mu + i theta)``.  The product
    telescopes, giving ``P(served | k) = c mu / (c mu + k theta)``, and since the
    holding time in each position is independent of which event ends it,
    ``E[W 1{served} | k] = P(served | k) * sum_{i=1..k} 1 / (c mu + i theta)``.
    Averaging over the PASTA distribution of ``k`` and dividing by
    ``P(served) = 1 - p_abandon`` gives the mean wait of served tasks.

    Parameters
    ----------
    c : int
        Number of auditors, ``c >= 1``.
    lam : float
        Arrival rate per minute, ``lam > 0``.
    mu : float
        Service rate per auditor per minute, ``mu > 0``.
    theta : float
        Abandonment rate of a waiting task per minute, ``theta >= 0``.
        ``theta = 0`` recovers M/M/c (then ``lam < c mu`` is required).
    n_max : int, optional
        Largest number in system kept in the truncated chain.  By default it
        is chosen automatically so that the neglected tail is negligible.

    Returns
    -------
    dict
        ``p_wait``, ``mean_wait`` (all arrivals), ``mean_wait_served``,
        ``mean_wait_abandoned`` (mean patience used by abandoning tasks, NaN
        if nobody abandons), ``p_abandon``, ``mean_queue`` (``E[Q]``, tasks
        waiting), ``mean_in_system`` (``E[N]``), ``utilisation`` (busy
        fraction per auditor, ``lam (1 - p_abandon) / (c mu)``) and ``n_max``
        (truncation level actually used).

    Raises
    ------
    ValueError
        On invalid arguments, or if ``theta == 0`` and ``lam >= c mu``.
    """
    _check_mmc_args(c, lam, mu)
    c = int(c)
    if lam <= 0:
        raise ValueError(f"erlang_a needs lam > 0, got {lam}")
    if theta < 0:
        raise ValueError(f"abandonment rate theta must be >= 0, got {theta}")
    if theta == 0 and lam >= c * mu:
        raise ValueError(f"unstable M/M/c (theta=0): lam={lam} >= c*mu={c * mu}")
    if n_max is not None and n_max < c:
        raise ValueError(f"n_max={n_max} must be >= c={c}")

    logw = _erlang_a_log_weights(c, lam, mu, theta, n_max, tol=1e-16)
    pi = np.exp(logw - np.logaddexp.reduce(logw))
    states = np.arange(pi.size)
    queue = np.maximum(states - c, 0)
    mean_queue = float(pi @ queue)

    # Tagged arrival finding n = c + k - 1 tasks joins at queue position k.
    pi_found = pi[c:]
    k = np.arange(1, pi_found.size + 1, dtype=float)
    rates = c * mu + k * theta
    p_served_k = c * mu / rates
    wait_served_k = p_served_k * np.cumsum(1.0 / rates)

    p_abandon = theta * mean_queue / lam
    mean_wait = mean_queue / lam
    p_served = 1.0 - p_abandon
    wait_x_served = float(pi_found @ wait_served_k)
    mean_wait_served = wait_x_served / p_served
    mean_wait_abandoned = (mean_wait - wait_x_served) / p_abandon if p_abandon > 0 else math.nan
    return {
        "p_wait": float(pi[c:].sum()),
        "mean_wait": mean_wait,
        "mean_wait_served": mean_wait_served,
        "mean_wait_abandoned": mean_wait_abandoned,
        "p_abandon": p_abandon,
        "mean_queue": mean_queue,
        "mean_in_system": float(pi @ states),
        "utilisation": lam * p_served / (c * mu),
        "n_max": int(pi.size - 1),
    }


def cobham_priority_waits(
    lams: Sequence[float],
    mean_service: Sequence[float],
    second_moment_service: Sequence[float],
) -> list[float]:
    """Mean queueing delay per class in M/G/1 with non-preemptive priorities.

    Class 0 has the highest priority.  When the auditor frees up it takes the
    oldest task of the highest non-empty class, but never interrupts a task
    in service.  Cobham's formula gives the mean wait in queue of class ``k``:

    ``W_k = W0 / ((1 - sigma_{k-1}) (1 - sigma_k))``

    where ``rho_i = lam_i E[S_i]``, ``sigma_k = rho_0 + ... + rho_k``
    (``sigma_{-1} = 0``) and ``W0 = sum_i lam_i E[S_i^2] / 2`` is the mean
    residual work of the task in service seen by an arrival.  The first
    factor accounts for higher-class tasks already waiting, the second for
    higher-class tasks that overtake during the wait.

    Parameters
    ----------
    lams : sequence of float
        Poisson arrival rate of each class, in priority order.
    mean_service : sequence of float
        Mean service time ``E[S_k]`` of each class.
    second_moment_service : sequence of float
        ``E[S_k^2]`` of each class (see :func:`second_moment`).

    Returns
    -------
    list of float
        Mean wait in queue ``W_k`` of each class (excluding service).

    Raises
    ------
    ValueError
        If the lengths differ, a value is negative, or ``sum rho >= 1``.
    """
    lam = np.asarray(lams, dtype=float)
    es = np.asarray(mean_service, dtype=float)
    es2 = np.asarray(second_moment_service, dtype=float)
    if not (lam.shape == es.shape == es2.shape) or lam.ndim != 1:
        raise ValueError("lams, mean_service and second_moment_service must be equal-length 1-D")
    if (lam < 0).any() or (es < 0).any() or (es2 < 0).any():
        raise ValueError("rates and service moments must be non-negative")
    sigma = np.cumsum(lam * es)
    if lam.size and sigma[-1] >= 1.0:
        raise ValueError(f"unstable priority queue: total load {sigma[-1]} >= 1")
    w0 = float(lam @ es2) / 2.0
    sigma_before = np.concatenate([[0.0], sigma[:-1]])
    return [float(w) for w in w0 / ((1.0 - sigma_before) * (1.0 - sigma))]


def second_moment(dist: str, mean: float, cv: float | None = None) -> float:
    """Second moment ``E[S^2]`` of a service-time distribution.

    Because ``Var S = (cv * m)^2``, ``E[S^2] = m^2 (1 + cv^2)`` for any
    distribution with mean ``m`` and coefficient of variation ``cv``.  The
    exponential has ``cv = 1`` (``2 m^2``) and a deterministic time ``cv = 0``
    (``m^2``); lognormal and gamma need ``cv`` explicitly.

    Parameters
    ----------
    dist : {'exponential', 'deterministic', 'lognormal', 'gamma'}
        Distribution family.
    mean : float
        Mean ``m >= 0``.
    cv : float, optional
        Coefficient of variation (std / mean).  Required for 'lognormal' and
        'gamma'; ignored for 'exponential' and 'deterministic', whose cv is
        fixed by the family.

    Returns
    -------
    float
        ``E[S^2]``.
    """
    if mean < 0:
        raise ValueError(f"mean must be >= 0, got {mean}")
    name = dist.lower()
    if name == "exponential":
        return 2.0 * mean**2
    if name == "deterministic":
        return float(mean**2)
    if name in ("lognormal", "gamma"):
        if cv is None or cv < 0:
            raise ValueError(f"{name} needs a coefficient of variation cv >= 0, got {cv}")
        return mean**2 * (1.0 + cv**2)
    raise ValueError(f"unknown distribution {dist!r}")


def priority_order_cost(
    order: Sequence[int],
    lams: Sequence[float],
    mean_service: Sequence[float],
    second_moment_service: Sequence[float],
    holding_costs: Sequence[float],
) -> float:
    """Long-run waiting cost rate of a static priority order on one auditor.

    Class ``order[0]`` gets top priority, ``order[1]`` the next, and so on;
    the mean waits come from :func:`cobham_priority_waits` with the classes
    re-indexed by ``order``.  The cost rate is ``sum_k c_k lam_k W_k``: each
    waiting class-``k`` task costs ``c_k`` per minute, and by Little's law
    ``lam_k W_k`` tasks of class ``k`` are waiting on average.

    Only *waiting* cost is counted.  The cost of time in service,
    ``sum_k c_k lam_k E[S_k]``, is the same for every order, so omitting it
    does not change which order is best.

    Parameters
    ----------
    order : sequence of int
        A permutation of ``range(K)``, highest priority first.
    lams, mean_service, second_moment_service
        Per-class parameters indexed by the *original* class index, as in
        :func:`cobham_priority_waits`.
    holding_costs : sequence of float
        Cost ``c_k`` per waiting task per minute.

    Returns
    -------
    float
        Expected holding cost per minute.
    """
    n = len(lams)
    if sorted(order) != list(range(n)):
        raise ValueError(f"order must be a permutation of range({n}), got {list(order)}")
    if len(holding_costs) != n:
        raise ValueError("holding_costs must have one entry per class")
    waits = cobham_priority_waits(
        [lams[k] for k in order],
        [mean_service[k] for k in order],
        [second_moment_service[k] for k in order],
    )
    return float(sum(holding_costs[k] * lams[k] * w for k, w in zip(order, waits, strict=True)))


def cmu_order(holding_costs: Sequence[float], mean_service: Sequence[float]) -> list[int]:
    """Priority order of the c-mu rule: decreasing ``c_k * mu_k``.

    ``c_k mu_k = c_k / E[S_k]`` is the rate at which serving class ``k``
    reduces the holding cost.  Serving the class with the largest index
    first minimises the waiting cost rate among static non-preemptive
    priority orders in M/G/1 (Cox & Smith), independently of the arrival
    rates and service variability.

    Parameters
    ----------
    holding_costs : sequence of float
        Cost ``c_k`` per waiting task per minute.
    mean_service : sequence of float
        Mean service time ``E[S_k] > 0``, so ``mu_k = 1 / E[S_k]``.

    Returns
    -------
    list of int
        Class indices, highest priority first; ties keep the lower index first.
    """
    if len(holding_costs) != len(mean_service):
        raise ValueError("holding_costs and mean_service must have equal length")
    if any(m <= 0 for m in mean_service):
        raise ValueError("mean service times must be > 0")
    index = [c / m for c, m in zip(holding_costs, mean_service, strict=True)]
    return sorted(range(len(index)), key=lambda k: (-index[k], k))


def littles_law_gap(L: float, lam: float, W: float) -> float:
    """Relative violation of Little's law ``L = lam W``.

    In any stable system the time-average number present ``L`` equals the
    arrival (throughput) rate times the mean time spent ``W``.  A simulator
    whose time-averaged counts and per-task times disagree by more than the
    statistical noise has a bookkeeping bug (or too short a run / warm-up).

    Parameters
    ----------
    L : float
        Time-average number in the system (or queue).
    lam : float
        Throughput rate of tasks through that system.
    W : float
        Mean time a task spends in that system.

    Returns
    -------
    float
        ``|L - lam W| / max(|L|, 1e-12)``.
    """
    return abs(L - lam * W) / max(abs(L), _TINY)
