"""From a solver's counts to (reviewer, bucket) pairs the simulator accepts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dispatch.model import WAITING

if TYPE_CHECKING:
    from dispatch.model import Reviewer
    from dispatch.policies.batch.epoch import Epoch

__all__ = ["realise"]


def realise(ep: Epoch, counts: np.ndarray, sort_key: np.ndarray) -> list[tuple[Reviewer, int]]:
    """Turn a solver's ``(R, C)`` counts into (reviewer, bucket) pairs the simulator accepts.

    A bucket serves oldest first, so k assignments into a bucket's columns take its next k
    live tasks, in the order the pairs are returned. Two things are decided here:

    1. *Which member of a row* goes to which column: rows may merge reviewers at and below
       their wellbeing cap (CP-SAT), so severe columns draw uncapped members first.
    2. *Who gets which position* in the bucket: reviewers are queued by ``sort_key`` of
       their column (urgency band, or task position for ``lsa``), and the bucket's live
       tasks are walked from the head; a severe task goes to the first reviewer in the
       queue not at their cap, a non-severe one preferably to a capped reviewer (who can
       take nothing else). If only capped reviewers remain in front of a severe head, the
       rest of that bucket's reviewers stay free this epoch (the head cannot be skipped).

    The pairs are therefore valid by construction: eligibility comes from the columns,
    caps from the walk, and no bucket is asked for more than its live tasks.
    """
    members = ep.members
    capped = ep.capped
    col_bucket = ep.col_bucket
    col_severe = ep.col_severe
    per_bucket: dict[int, list[tuple[Any, int, Reviewer, bool]]] = {}
    seq = 0
    rows_i, cols_i = np.nonzero(counts)
    if rows_i.size == 0:
        return []
    for i in np.unique(rows_i):
        ok = [m for m in members[i] if m.id not in capped]
        at_cap = [m for m in members[i] if m.id in capped]
        cols = cols_i[rows_i == i]
        # Severe columns first so they get the members still allowed severe work.
        cols = sorted(cols.tolist(), key=lambda c: (not col_severe[c], c))
        for c in cols:
            for _ in range(int(counts[i, c])):
                if col_severe[c]:
                    r = ok.pop(0) if ok else at_cap.pop(0)
                else:
                    r = at_cap.pop(0) if at_cap else ok.pop(0)
                b = int(col_bucket[c])
                per_bucket.setdefault(b, []).append((sort_key[c], seq, r, r.id in capped))
                seq += 1
    pairs: list[tuple[Reviewer, int]] = []
    buckets = ep.buckets
    for b in sorted(per_bucket):
        queue = sorted(per_bucket[b], key=lambda e: (e[0], e[1]))
        for t in buckets[b].tasks:
            if not queue:
                break
            if t.state != WAITING:
                continue
            if t.severe:
                j = next((k for k, e in enumerate(queue) if not e[3]), None)
                if j is None:
                    break
            else:
                j = next((k for k, e in enumerate(queue) if e[3]), 0)
            pairs.append((queue.pop(j)[2], b))
    return pairs
