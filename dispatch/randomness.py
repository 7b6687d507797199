"""Common random numbers: one seed, many independent streams.

Every source of randomness in a run draws from its own ``numpy.random.Generator``, spawned
from one ``SeedSequence``. Per task class there are separate streams for arrivals, task
attributes, handling work, patience, decision correctness and routing; all of a task's
randomness is drawn when it arrives. So two policies run with the same seed face the same
world draw for draw: the same tasks at the same times with the same hidden truth, the same
work content (a reviewer's speed only rescales it) and the same coin for whether a decision
will be right. Streams that depend on the policy's choices (follow-up tasks from routing)
have their own streams, so they can never shift the exogenous ones.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

CLASS_STREAMS = (
    "arrivals",
    "attributes",
    "handling",
    "patience",
    "decision",
    "routing",
    "followup",
)


class Streams:
    """Named generators for one run, derived from a single integer seed."""

    def __init__(self, seed: int, class_names: list[str]):
        root = np.random.SeedSequence(int(seed))
        per_class, shared = root.spawn(2)
        class_seqs = per_class.spawn(len(class_names))
        self.by_class: dict[str, dict[str, np.random.Generator]] = {}
        for name, seq in zip(class_names, class_seqs, strict=True):
            kids = seq.spawn(len(CLASS_STREAMS))
            self.by_class[name] = {
                s: np.random.Generator(np.random.PCG64(k))
                for s, k in zip(CLASS_STREAMS, kids, strict=True)
            }
        policy_seq, delay_seq = shared.spawn(2)
        self.policy = np.random.Generator(np.random.PCG64(policy_seq))
        """Stream reserved for randomised policies (e.g. the random rule)."""
        self.delays = np.random.Generator(np.random.PCG64(delay_seq))

    def of(self, class_name: str, stream: str) -> np.random.Generator:
        return self.by_class[class_name][stream]


class Buffered:
    """Draw a vectorised sample in chunks and hand out one value at a time.

    Chunking keeps numpy's per-call overhead off the per-task path; since each buffer owns
    its stream, the values a run sees depend only on the seed (the chunk size is fixed).
    """

    __slots__ = ("_fn", "_chunk", "_buf", "_i")

    def __init__(self, fn: Callable[[int], np.ndarray], chunk: int = 1024):
        self._fn = fn
        self._chunk = chunk
        self._buf: list = []
        self._i = 0

    def next(self):
        i = self._i
        if i >= len(self._buf):
            self._buf = self._fn(self._chunk).tolist()
            i = 0
        self._i = i + 1
        return self._buf[i]
