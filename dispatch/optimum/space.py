"""The truncated state space of a network and its uniformised dynamics, as array operations.

A **state** is the number of tasks waiting in each queue (0..buffer) and, per reviewer group,
how many of its reviewers are busy on each eligible queue. States live in a numpy array of
shape ``(buffer_0 + 1, ..., buffer_{Q-1} + 1, S)``: one axis per queue and a last axis
enumerating the ``S`` joint server states (few: a group of one reviewer with E eligible queues
has E + 1). Every transition is a shift along queue axes plus a move on the server axis, so
the expected next value ``P V`` is computed with slices of that array (no sparse matrix,
no index arrays), and the Bellman minimum over decisions likewise.

**Uniformisation.** Events happen at total rate at most ``Lambda`` (arrivals, completions of
busy reviewers, abandonments of waiting tasks); the continuous-time chain is observed at the
jumps of a Poisson clock of rate ``Lambda``, a step being a real event with probability
rate / Lambda and a self-loop otherwise. Arrivals to a full queue are lost (the truncation),
as are routed follow-ups into a full queue.

**Decisions** are taken right after every event, on the *pre-decision* state: which idle
reviewers start on which waiting tasks (any joint assignment, idling allowed; or, work-
conserving, no reviewer left idle while it has eligible work). Starting a review moves a task
from a queue to a server, so the cost rate ``sum_q h_q (waiting_q + in review_q)`` does not
change with the decision. With ``U = c / Lambda + P V`` (value after the decision), the
relative value iteration step is ``V(x) = min_a U(a(x))``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from dispatch.optimum.network import Network

Starts = tuple[tuple[int, ...], ...]
"""A joint decision: per group, how many reviewers start on each queue."""


@dataclass
class Completion:
    """Reviewers of ``group`` busy on ``queue`` finish at ``rate``: server state ``to``."""

    rate: float
    to: int
    outcomes: tuple[tuple[float, tuple[int, ...]], ...]  # (prob, queue increments)


@dataclass
class Action:
    """Decision ``id`` at server state ``s``: take ``dec`` tasks off the queues, go to ``to``.

    ``region`` are the slices of the queue grid where it is allowed (enough waiting tasks,
    and for work-conserving decisions no reviewer left idle with eligible work).
    """

    id: int
    dec: tuple[int, ...]
    to: int
    region: tuple[slice, ...]


def _group_states(count: int, n_eligible: int) -> list[tuple[int, ...]]:
    """Busy reviewers per eligible queue, summing to at most ``count`` (idle first)."""
    out = [c for c in itertools.product(range(count + 1), repeat=n_eligible) if sum(c) <= count]
    out.sort(key=lambda c: (sum(c), tuple(-x for x in c)))
    return out


class Space:
    """State space, costs, dynamics and decisions of a network truncated at ``buffers``."""

    def __init__(self, net: Network, buffers: tuple[int, ...], work_conserving: bool = False):
        self.net = net
        self.buffers = tuple(int(b) for b in buffers)
        self.work_conserving = work_conserving
        self.Q = net.n_queues
        self.dims = tuple(b + 1 for b in self.buffers)
        self.eligible = [g.eligible for g in net.groups]
        self.group_states = [
            _group_states(g.count, len(e)) for g, e in zip(net.groups, self.eligible, strict=True)
        ]
        self.server_states = list(itertools.product(*self.group_states))
        self.S = len(self.server_states)
        self.shape = (*self.dims, self.S)
        self.n_states = int(np.prod(self.shape, dtype=np.int64))
        self._s_index = {s: i for i, s in enumerate(self.server_states)}
        self.busy = np.zeros((self.S, self.Q))
        for si, s in enumerate(self.server_states):
            for gi, gs in enumerate(s):
                for q, b in zip(self.eligible[gi], gs, strict=True):
                    self.busy[si, q] += b
        self.completions = [self._completions(si) for si in range(self.S)]
        comp_rate = [sum(c.rate for c in cs) for cs in self.completions]
        self.rate = (
            sum(net.arrival)
            + max(comp_rate)
            + sum(t * b for t, b in zip(net.abandon, self.buffers, strict=True))
        )
        self.actions, self.action_table = self._actions()
        self.cost = self._cost()
        self.stay = self._stay(comp_rate)

    # -- construction ----------------------------------------------------------------------
    def _completions(self, si: int) -> list[Completion]:
        out = []
        s = self.server_states[si]
        for gi, gs in enumerate(s):
            g = self.net.groups[gi]
            for j, b in enumerate(gs):
                if not b:
                    continue
                q = self.eligible[gi][j]
                nxt = list(s)
                ng = list(gs)
                ng[j] -= 1
                nxt[gi] = tuple(ng)
                outs = []
                for p, targets in self.net.routes[q]:
                    inc = [0] * self.Q
                    for t in targets:
                        inc[t] += 1
                    outs.append((p, tuple(inc)))
                out.append(Completion(b * g.rates[q], self._s_index[tuple(nxt)], tuple(outs)))
        return out

    def _actions(self) -> tuple[list[list[Action]], list[Starts]]:
        """Every joint start decision at every server state (noop first, id 0)."""
        table: dict[Starts, int] = {}
        noop = tuple(tuple(0 for _ in e) for e in self.eligible)
        table[noop] = 0
        per_state = []
        for s in self.server_states:
            options = []
            for gi, gs in enumerate(s):
                idle = self.net.groups[gi].count - sum(gs)
                options.append(_group_states(idle, len(self.eligible[gi])))
            acts = []
            for starts in itertools.product(*options):
                aid = table.setdefault(starts, len(table))
                dec = [0] * self.Q
                nxt = []
                idle_after = []
                for gi, (gs, st) in enumerate(zip(s, starts, strict=True)):
                    for q, d in zip(self.eligible[gi], st, strict=True):
                        dec[q] += d
                    nxt.append(tuple(a + b for a, b in zip(gs, st, strict=True)))
                    idle_after.append(self.net.groups[gi].count - sum(nxt[-1]))
                region = self._region(dec, idle_after)
                if region is not None:
                    acts.append(Action(aid, tuple(dec), self._s_index[tuple(nxt)], region))
            acts.sort(key=lambda a: a.id)
            per_state.append(acts)
        return per_state, list(table)

    def _region(self, dec: list[int], idle_after: list[int]) -> tuple[slice, ...] | None:
        """Queue-grid slices where a decision taking ``dec`` tasks is allowed."""
        lo = list(dec)
        hi = [b + 1 for b in self.buffers]
        if self.work_conserving:
            for gi, idle in enumerate(idle_after):
                if idle > 0:  # nothing this group could take may be left waiting
                    for q in self.eligible[gi]:
                        hi[q] = min(hi[q], dec[q] + 1)
        if any(a >= b for a, b in zip(lo, hi, strict=True)):
            return None
        return tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))

    def _grid(self, q: int) -> np.ndarray:
        """Waiting count of queue ``q`` as an array broadcastable to the state shape."""
        shape = [1] * (self.Q + 1)
        shape[q] = self.dims[q]
        return np.arange(self.dims[q], dtype=float).reshape(shape)

    def _cost(self) -> np.ndarray:
        h = np.array(self.net.holding)
        c = np.zeros(self.shape)
        for q in range(self.Q):
            c += h[q] * self._grid(q)
        c += (self.busy @ h).reshape((1,) * self.Q + (self.S,))
        return c

    def _stay(self, comp_rate: list[float]) -> np.ndarray:
        out = np.full(self.shape, self.rate - sum(self.net.arrival))
        out -= np.array(comp_rate).reshape((1,) * self.Q + (self.S,))
        for q, t in enumerate(self.net.abandon):
            if t:
                out -= t * self._grid(q)
        return out / self.rate

    # -- dynamics --------------------------------------------------------------------------
    def _terms(self):
        """The uniformised transitions as ``(region, weight, source)`` terms:
        ``(P V)[region] += weight * source(V)`` (``weight`` a scalar or an array)."""
        lam = self.rate
        full = slice(None)
        n_ax = self.Q + 1
        yield (full,) * n_ax, self.stay, lambda V: V
        for q, a in enumerate(self.net.arrival):
            if a > 0:
                lo, hi, last = [full] * n_ax, [full] * n_ax, [full] * n_ax
                lo[q], hi[q], last[q] = slice(0, -1), slice(1, None), slice(-1, None)
                hi_t, last_t = tuple(hi), tuple(last)
                yield tuple(lo), a / lam, lambda V, s=hi_t: V[s]
                yield last_t, a / lam, lambda V, s=last_t: V[s]  # lost: stays full
        for q, t in enumerate(self.net.abandon):
            if t > 0:
                lo, hi = [full] * n_ax, [full] * n_ax
                lo[q], hi[q] = slice(1, None), slice(0, -1)
                w = (t / lam) * self._grid(q)[tuple(lo)]
                yield tuple(lo), w, lambda V, s=tuple(hi): V[s]
        for si, comps in enumerate(self.completions):
            region = (full,) * self.Q + (si,)
            for c in comps:
                for p, inc in c.outcomes:
                    yield (
                        region,
                        c.rate * p / lam,
                        lambda V, to=c.to, inc=inc: self._shifted(V[..., to], inc),
                    )

    def expect(self, V: np.ndarray) -> np.ndarray:
        """``P V``: expected value after one uniformised step from each post-decision state."""
        out = np.zeros(self.shape)
        for region, w, src in self._terms():
            out[region] += w * src(V)
        return out

    def matrix(self):
        """``P`` as a scipy CSR matrix (post-decision state -> next pre-decision state)."""
        from scipy.sparse import coo_matrix

        idx = np.arange(self.n_states, dtype=np.int64).reshape(self.shape)
        rows, cols, vals = [], [], []
        for region, w, src in self._terms():
            r = idx[region]
            c = np.broadcast_to(src(idx), r.shape)
            v = np.broadcast_to(w, r.shape)
            keep = v.ravel() != 0
            rows.append(r.ravel()[keep])
            cols.append(c.ravel()[keep])
            vals.append(v.ravel()[keep])
        n = self.n_states
        P = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), (n, n))
        return P.tocsr()

    def _shifted(self, grid: np.ndarray, inc: tuple[int, ...]) -> np.ndarray:
        """``grid(min(w + inc, buffer))`` on the queue grid (follow-ups lost when full)."""
        out = grid
        for q, d in enumerate(inc):
            if d:
                idx = np.minimum(np.arange(self.dims[q]) + d, self.buffers[q])
                out = np.take(out, idx, axis=q)
        return out

    # -- decisions -------------------------------------------------------------------------
    def bellman(self, U: np.ndarray, keep: np.ndarray | None = None, tol: float = 0.0):
        """``V(x) = min_a U(a(x))`` and the minimising decision id per state.

        Ties go to the lowest decision id (noop first) unless ``keep`` (a previous policy)
        is within ``tol`` of the minimum, in which case it is kept (policy iteration).
        """
        V = np.full(self.shape, np.inf)
        pol = np.zeros(self.shape, dtype=np.int16)
        for si, acts in enumerate(self.actions):
            v = V[..., si]
            p = pol[..., si]
            for a in acts:
                src = tuple(
                    slice(r.start - d, r.stop - d) for r, d in zip(a.region, a.dec, strict=True)
                )
                cand = U[(*src, a.to)]
                cur = v[a.region]
                better = cand < cur
                cur[better] = cand[better]
                p[a.region][better] = a.id
        if keep is not None:
            kept = self.gather(U, keep)
            use = kept <= V + tol
            pol[use] = keep[use]
            V[use] = kept[use]
        return V, pol

    def gather(self, U: np.ndarray, pol: np.ndarray) -> np.ndarray:
        """``U(a(x))`` for the decision ``pol[x]`` at every state."""
        out = np.empty(self.shape)
        for si, acts in enumerate(self.actions):
            o = out[..., si]
            p = pol[..., si]
            for a in acts:
                src = tuple(
                    slice(r.start - d, r.stop - d) for r, d in zip(a.region, a.dec, strict=True)
                )
                sel = p[a.region] == a.id
                o[a.region][sel] = U[(*src, a.to)][sel]
        return out

    def post_index(self, pol: np.ndarray) -> np.ndarray:
        """Flat index of the post-decision state ``a(x)`` for every state (int64)."""
        flat = np.arange(self.n_states, dtype=np.float64).reshape(self.shape)
        return self.gather(flat, pol).astype(np.int64).ravel()

    def flat_index(self, waiting: tuple[int, ...], server_state: int) -> int:
        return int(np.ravel_multi_index((*waiting, server_state), self.shape))
