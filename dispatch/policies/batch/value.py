"""The value model of the batch optimisers, and how one epoch becomes an assignment problem.

The parameters named here are grouped as in :mod:`dispatch.policies.batch.params`
(``value.deferral``, ``aggregation.scan_limit``, ``solver.scale``, ...).

Value of giving reviewer ``r`` one task ``t`` now
-------------------------------------------------

Every term is in units of the comparison objective (:mod:`dispatch.objective`: one SLA
breach = ``sla_breach``, one wrong decision = ``wrong_decision``, ...), so the solvers
maximise an estimate of the objective they are judged by. The question each term answers
is "what does taking ``t`` now save compared with leaving it for later?". *Later* is
modelled as a random deferral ``D ~ Exponential(mean tau)``, so ``P(D > x) = exp(-x/tau)``
and ``E[min(D, L)] = tau (1 - exp(-L/tau))``. With ``c`` the task's class, ``g`` the
reviewer's group, ``h = E[work_c] / speed_g,c`` the expected handling time, ``finish = now +
h``, ``p`` the calibrated risk score and ``sens``/``spec`` the reviewer's accuracy on ``c``
minus its current fatigue drop::

    v(r, t) =  harm x p x sens x severity x reach x E[min(D_h, end_of_life - finish)] / 1000
             + sla_breach x [finish <= deadline] x max(P(D > deadline - finish),
                                                       P(D > expires_at - now))
             + abandoned x P(D > expires_at - now)
             - lateness x max(0, finish - max(deadline, now)) / sla_c
             - wrong_decision x (p (1 - sens) + (1 - p)(1 - spec))
             - false_enforcement x (1 - p)(1 - spec)
             - h x price(g, c)

    tau   = deferral (minutes);  D_h uses tau_h = max(deferral, head-of-line wait of the
            bucket) when harm_wait_from_queue
    price(g, c) = guard x A(g, c) x sum over guarded classes c' != c that g serves of
                  V(g, c') x arrivals of c' per minute in g's markets x busy share of c''s pool

and, with ``per_minute``, ``v / h`` (value per minute of reviewer time, the c-mu index).

Why these terms:

* **Harm** counts only the violating views the review *cuts short*: the content is
  enforced at ``finish`` with probability ``p x sens``; left alone it stays up for the
  deferral (or until its end of life). Deferrals are long for backlogged queues, so the
  harm term uses the bucket's head-of-line wait (how long its oldest task has waited, a
  classic predictor of the wait ahead) as ``tau_h``. Content already enforced (an appeal, a
  QA re-review of a takedown) has nothing left to avert and gets no harm term.
* **SLA**: a breach is charged once per task, so the value of serving now is the chance
  the deadline would pass during the deferral -- close to 1 at the last moment, zero when
  *this* reviewer cannot make it anyway. An already-breached task has a sunk breach and
  earns nothing here (it still earns its harm term).
* **Lateness** is deliberately the lateness *this assignment causes* past the deadline (a
  slow reviewer on a task due in two minutes), not the total lateness: charging the wait a
  task has already suffered would push the oldest overdue tasks to the back for ever.
* **Expiry**: a task with patience (a live stream) not started before ``expires_at`` is
  abandoned (``abandoned``) and breaches its SLA; starting it now saves both.
* **Wrong decisions** are charged on every review whoever does it, so across tasks they
  mostly cancel; across reviewers they route high-risk work to accurate reviewers.
* **Guard** (option value of perishable work): a one-epoch matching cannot see the live
  streams that will arrive while a live-capable reviewer is busy on a short video, and
  without this term it happily spends specialists on work generalists could do, then lets
  streams expire in the evening peak. ``price`` charges each minute such a reviewer spends
  on other work with the value a guarded task (default: classes with patience) would
  bring, ``V(g, c')`` (the value model on a class-average task), times their arrival rate,
  times the share of the guarded pool that is busy now (the chance nobody else is free).
  ``A(g, c)`` is the share of the on-duty reviewers eligible for ``c`` outside ``g``: work
  only ``g`` can do (merchant risk for senior reviewers) is not penalised. On
  ``ecommerce_day`` (seeds 0-4) the flow without it scores 10,735 on the objective, with
  it 10,441 (c-mu, the best rule: 10,601).

Everything is cheap: a handful of vectorised numpy operations over (rows x scanned tasks).
:func:`task_value` is the scalar reference implementation used by the tests.

Integer scaling: the OR-Tools solvers need integer costs; values are multiplied by
``solver.scale`` (default :data:`dispatch.solvers.SCALE` = 1000, i.e. resolved to a
thousandth of an SLA breach) and rounded. Values below ``0.5 / scale`` round to 0 and count
as "not worth doing" when the policy is not work-conserving; ties closer than that may be
broken either way.

From one epoch to an assignment problem
---------------------------------------

* **Rows**: free reviewers with the same group, cap state (at their wellbeing cap or not),
  reservation hold and fatigue (rounded to ``fatigue_bin``) are identical for the
  optimiser and become one row whose ``supply`` is their number.
* **Columns**: a bucket can give at most as many tasks this epoch as there are free
  reviewers eligible for it, ``F_b``, so only its first ``min(n_b, F_b, scan_limit)`` live
  tasks are scanned, oldest first. Those tasks are grouped into columns by urgency band
  (overdue / less than ``urgent_fraction`` of the SLA left or expiring within ``deferral``
  / the rest) and severity (counts against wellbeing caps or not); a column's value for a
  row is the mean value of its tasks and its capacity their count. The column capacities
  of a bucket therefore sum to at most ``bucket.n``. When ``F_b`` exceeds ``scan_limit`` a
  tail column stands for the unscanned tasks, valued from the bucket's running sums.
* **Execution is oldest first**: a bucket serves its head, so k assignments into a bucket's
  columns become "the next k tasks of that bucket" whatever columns the solver chose; since
  deadlines are monotone along a bucket (one class, one SLA), the most urgent bands are the
  head anyway. See :func:`dispatch.policies.batch.realise.realise` for how reviewers are
  matched to those positions without breaking a wellbeing cap.
"""

from __future__ import annotations

import math

import numpy as np

from dispatch.objective import HARM_UNIT
from dispatch.policies.batch.params import ValueModel

__all__ = ["OVERDUE", "REST", "URGENT", "task_value", "value_matrix"]

OVERDUE, URGENT, REST = 0, 1, 2
"""Urgency bands of a task, most urgent first."""


def task_value(
    *,
    now: float,
    risk: float,
    harm_rate: float,
    end_of_life: float,
    deadline: float,
    expires_at: float,
    sla: float,
    handling: float,
    sensitivity: float,
    specificity: float,
    params: ValueModel,
    harm_deferral: float | None = None,
    price: float = 0.0,
) -> float:
    """Scalar reference of the value model (see the module docstring for the formula).

    ``harm_rate`` is severity x reach (0 when the content is already enforced);
    ``sensitivity``/``specificity`` already include the fatigue drop; ``harm_deferral`` is
    ``tau_h`` (default ``params.deferral``); ``price`` is the guard price per minute of
    this reviewer's time on this class. The vectorised :func:`value_matrix` must agree
    with this to floating-point precision.
    """
    w = params.weights
    tau = params.deferral
    tau_h = tau if harm_deferral is None else harm_deferral
    finish = now + handling
    sens = min(max(sensitivity, 0.0), 1.0)
    spec = min(max(specificity, 0.0), 1.0)
    life_left = max(end_of_life - finish, 0.0)
    exposure = tau_h * -math.expm1(-life_left / tau_h)
    v = w.harm * risk * sens * harm_rate * exposure / HARM_UNIT
    u_exp = math.exp(-max(expires_at - now, 0.0) / tau)
    if finish <= deadline:
        u_dead = math.exp(-(deadline - finish) / tau)
        v += w.sla_breach * max(u_dead, u_exp)
    v += w.abandoned * u_exp
    v -= w.lateness * max(0.0, finish - max(deadline, now)) / sla
    v -= w.wrong_decision * (risk * (1 - sens) + (1 - risk) * (1 - spec))
    v -= w.false_enforcement * (1 - risk) * (1 - spec)
    v -= handling * price
    if params.per_minute:
        v /= handling
    return v


def value_matrix(
    now: float,
    handling: np.ndarray,
    sens: np.ndarray,
    spec: np.ndarray,
    risk: np.ndarray,
    harm_rate: np.ndarray,
    end_of_life: np.ndarray,
    deadline: np.ndarray,
    expires_at: np.ndarray,
    sla: np.ndarray,
    params: ValueModel,
    harm_deferral: np.ndarray | float | None = None,
    price: np.ndarray | float = 0.0,
) -> np.ndarray:
    """Vectorised :func:`task_value`: ``(R, T)`` reviewer-side arrays, ``(T,)`` task arrays.

    ``handling``, ``sens``, ``spec`` and ``price`` are per (row, task): the row's expected
    handling time, fatigue-adjusted accuracy and guard price on the task's class. They must
    be finite, so callers put a placeholder on ineligible pairs and mask them afterwards.
    ``harm_rate`` is severity x reach (as in :func:`task_value`); the risk factor is applied
    here.
    """
    w = params.weights
    tau = params.deferral
    tau_h = tau if harm_deferral is None else harm_deferral
    finish = now + handling
    sens = np.clip(sens, 0.0, 1.0)
    spec = np.clip(spec, 0.0, 1.0)
    life_left = np.maximum(end_of_life - finish, 0.0)
    exposure = tau_h * -np.expm1(-life_left / tau_h)
    v = (w.harm / HARM_UNIT) * (risk * harm_rate) * sens * exposure
    u_exp = np.exp(-np.maximum(expires_at - now, 0.0) / tau)
    slack = deadline - finish
    on_time = slack >= 0
    u_dead = np.exp(-np.where(on_time, slack, 0.0) / tau)
    v += np.where(on_time, w.sla_breach * np.maximum(u_dead, u_exp), 0.0)
    v += w.abandoned * u_exp
    if w.lateness:
        v -= (w.lateness / sla) * np.maximum(finish - np.maximum(deadline, now), 0.0)
    fn = risk * (1 - sens)
    fp = (1 - risk) * (1 - spec)
    v -= w.wrong_decision * (fn + fp) + w.false_enforcement * fp
    v -= handling * price
    if params.per_minute:
        v = v / handling
    return v
