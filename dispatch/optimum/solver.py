"""Average-cost optimal control of a truncated network: policy iteration with exact policy
evaluation, started by a few relative value-iteration steps, with certified bounds.

For any relative value vector ``h``, the Bellman operator ``T`` gives bounds on the optimal
average cost per step (Odoni): ``min_x (T h - h)(x) <= g* <= max_x (T h - h)(x)``. The solver
reports both (times the uniformisation rate: cost per minute), so every value carries its own
certificate, independent of how it was found.

How it is found. Relative value iteration converges at the chain's mixing speed, which at
load 0.9 is slow (tens of thousands of steps for a tight bound). So a few dozen value-iteration
steps give a first policy and policy iteration finishes: evaluate the policy exactly, by
solving ``h - P_pi h + g = c / Lambda`` with ``h`` = 0 at the empty state (a sparse LU, or for
large three-queue spaces GMRES preconditioned by algebraic multigrid), improve it greedily
(keeping the current decision unless another is strictly better), and stop when the policy
no longer changes. Policy iteration needs a handful of rounds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from dispatch.optimum.space import Space


@dataclass
class Solution:
    """The optimum of one truncation: cost per minute with bounds, policy, relative values."""

    buffers: tuple[int, ...]
    states: int
    value: float
    lower: float
    upper: float
    policy: np.ndarray  # decision id per state, shape Space.shape
    h: np.ndarray  # relative values per step, shape Space.shape
    iterations: int  # value-iteration steps + policy evaluations
    rounds: int  # policy-iteration rounds
    seconds: float  # CPU seconds


def bounds(space: Space, h: np.ndarray) -> tuple[np.ndarray, np.ndarray, float, float]:
    """One Bellman step from ``h``: (T h, its policy, lower and upper bound per minute)."""
    U = space.cost / space.rate + space.expect(h)
    V, pol = space.bellman(U)
    d = V - h
    return V, pol, float(d.min()) * space.rate, float(d.max()) * space.rate


def value_iteration(space: Space, h: np.ndarray, steps: int, rtol: float = 0.0):
    """Up to ``steps`` relative value-iteration steps; stops early once bounds meet ``rtol``."""
    lo = hi = np.nan
    pol = None
    k = 0
    for step in range(1, steps + 1):
        k = step
        V, pol, lo, hi = bounds(space, h)
        h = V - V.flat[0]
        if hi - lo <= rtol * abs(hi):
            break
    return h, pol, lo, hi, k


class Evaluator:
    """Exact evaluation of a policy: relative values ``h`` (``h[0] = 0``) and cost per step.

    With ``A = I - P_pi``, drop row and column 0: ``A11 h1 = r1 - g 1``, and row 0 gives
    ``g``. So ``h1 = u - g v`` with ``A11 u = r1`` and ``A11 v = 1`` (a nonsingular M-matrix),
    and ``g = (r0 - a0 . u) / (1 - a0 . v)``. Small or two-queue spaces: sparse LU; larger
    ones: GMRES with an aggregation multigrid preconditioner (pyamg), warm-started.
    """

    def __init__(self, space: Space, method: str = "auto"):
        self.space = space
        self.P = space.matrix()
        if method == "auto":
            method = "direct" if space.Q <= 2 or space.n_states <= 30_000 else "amg"
        self.method = method
        self._uv: tuple[np.ndarray, np.ndarray] | None = None

    def __call__(self, pol: np.ndarray) -> tuple[np.ndarray, float]:
        from scipy.sparse import identity

        sp = self.space
        n = sp.n_states
        post = sp.post_index(pol)
        A = (identity(n, format="csr") - self.P[post]).tocsr()
        r = (sp.cost / sp.rate).ravel()
        A11 = A[1:, 1:].tocsr()
        a0 = A[0, 1:].toarray().ravel()
        rhs = np.stack([r[1:], np.ones(n - 1)], axis=1)
        u, v = self._direct(A11, rhs) if self.method == "direct" else self._amg(A11, rhs)
        self._uv = (u, v)
        g = (r[0] - a0 @ u) / (1.0 - a0 @ v)
        h = np.empty(n)
        h[0] = 0.0
        h[1:] = u - g * v
        return h.reshape(sp.shape), float(g)

    @staticmethod
    def _direct(A11, rhs):
        from scipy.sparse import identity
        from scipy.sparse.linalg import splu

        try:
            lu = splu(A11.tocsc())
        except RuntimeError:
            # The policy idles forever somewhere (a closed class away from the empty state,
            # e.g. full queues and idle reviewers): a vanishing leak makes that class' values
            # huge, so the next improvement step leaves it.
            lu = splu((A11 + 1e-9 * identity(A11.shape[0])).tocsc())
        return lu.solve(rhs[:, 0]), lu.solve(rhs[:, 1])

    def _amg(self, A11, rhs):
        import pyamg
        from scipy.sparse.linalg import gmres

        ml = pyamg.smoothed_aggregation_solver(
            A11,
            symmetry="nonsymmetric",
            smooth=None,
            max_coarse=3000,
            presmoother=("gauss_seidel", {"sweep": "symmetric"}),
            postsmoother=("gauss_seidel", {"sweep": "symmetric"}),
        )
        M = ml.aspreconditioner(cycle="W")
        out = []
        for j in range(2):
            x0 = self._uv[j] if self._uv is not None else None
            x, _ = gmres(A11, rhs[:, j], x0=x0, M=M, rtol=1e-9, restart=40, maxiter=25)
            out.append(x)
        return out[0], out[1]


def solve(
    space: Space,
    h0: np.ndarray | None = None,
    vi_steps: int = 50,
    max_rounds: int = 60,
    method: str = "auto",
) -> Solution:
    """Optimal average cost of ``space`` (with bounds) and an optimal policy."""
    t0 = time.process_time()
    h = np.zeros(space.shape) if h0 is None else h0
    h, pol, lo, hi, iters = value_iteration(space, h, vi_steps)
    evaluate = Evaluator(space, method)
    rounds = 0
    while rounds < max_rounds:
        rounds += 1
        h, _g = evaluate(pol)
        iters += 1
        U = space.cost / space.rate + space.expect(h)
        tol = 1e-12 * max(1.0, float(np.abs(U).max()))
        _, new = space.bellman(U, keep=pol, tol=tol)
        if np.array_equal(new, pol):
            break
        pol = new
    _, greedy, lo, hi = bounds(space, h)
    return Solution(
        buffers=space.buffers,
        states=space.n_states,
        value=0.5 * (lo + hi),
        lower=lo,
        upper=hi,
        policy=pol,
        h=h,
        iterations=iters,
        rounds=rounds,
        seconds=time.process_time() - t0,
    )


def extend(h: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Warm start on a larger grid: ``h`` continued linearly beyond its old buffers."""
    pad = [(0, new - old) for old, new in zip(h.shape, shape, strict=True)]
    if not any(p for _, p in pad):
        return h.copy()
    out = h
    for axis, (_, p) in enumerate(pad):
        if p:
            width = [(0, 0)] * h.ndim
            width[axis] = (0, p)
            if out.shape[axis] > 1:
                out = np.pad(out, width, mode="reflect", reflect_type="odd")
            else:
                out = np.pad(out, width, mode="edge")
    return out
