"""Runtime objects of a simulation: tasks, queues (buckets), reviewers and their groups.

These are plain ``__slots__`` classes, not pydantic models: the simulator touches them on
every event, and attribute access on slotted objects is the cheapest Python offers.
Policies read them (never write them); the simulator alone changes state.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dispatch.layout import GroupSpec

WAITING, IN_SERVICE, DONE, EXPIRED = 0, 1, 2, 3


class Task:
    """One unit of review work waiting in, or taken from, a bucket.

    The first task about a piece of content (a listing, a stream, a merchant) also stands
    for the content itself: follow-up tasks (QA, escalations, appeals) point to it through
    ``item``, so harm exposure is counted once per content item, until its first correct
    enforcement (``enforced_at``), and ``open_tasks`` tells when nothing about it is pending.
    """

    __slots__ = (
        "violating",
        "severity",
        "reach",
        "end_of_life",
        "enforced_at",
        "open_tasks",
        "id",
        "cls",
        "market",
        "bucket",
        "arrival",
        "risk",
        "severe",
        "work",
        "deadline",
        "expires_at",
        "decision_u",
        "route_u",
        "item",
        "state",
        "start",
        "reviewer",
        "counted",
        "root",
    )

    def __init__(self):
        self.state = WAITING
        self.start = -1.0
        self.reviewer = None
        self.enforced_at = None
        self.open_tasks = 0


Item = Task  # the root task of a chain is the content item


class Bucket:
    """A queue of waiting tasks of one class x market x risk band, oldest first.

    Expired tasks are removed lazily (marked, skipped when they reach the head), so expiry
    costs O(1); ``n`` is the live count. Running sums give policies the mean risk and
    reach of what waits without scanning the queue.
    """

    __slots__ = (
        "index",
        "cls",
        "market",
        "band",
        "name",
        "tasks",
        "n",
        "sum_risk",
        "sum_harm_rate",
        "n_severe",
    )

    def __init__(self, index: int, cls: int, market: int, band: int, name: str):
        self.index = index
        self.cls = cls
        self.market = market
        self.band = band
        self.name = name
        self.tasks: deque[Task] = deque()
        self.n = 0
        self.sum_risk = 0.0
        self.sum_harm_rate = 0.0
        self.n_severe = 0

    def push(self, task: Task) -> None:
        """Append a newly waiting task at the tail and count it."""
        self.tasks.append(task)
        self.n += 1
        self.sum_risk += task.risk
        self.sum_harm_rate += task.risk * task.severity * task.reach
        if task.severe:
            self.n_severe += 1

    def pop(self) -> Task:
        """Take the oldest live task off the head (dropping expired ones) and uncount it.

        The caller marks it in service; the bucket must not be empty (``n > 0``).
        """
        tasks = self.tasks
        task = tasks.popleft()
        while task.state != WAITING:  # drop expired tasks found at the head
            task = tasks.popleft()
        self._uncount(task)
        return task

    def discard(self, task: Task) -> None:
        """Uncount a waiting task that leaves without review (it expired).

        Removal from the queue is lazy: the caller marks the task, and it is dropped when it
        reaches the head (:meth:`head`, :meth:`pop`), so expiry costs O(1).
        """
        self._uncount(task)

    def _uncount(self, task: Task) -> None:
        self.n -= 1
        self.sum_risk -= task.risk
        self.sum_harm_rate -= task.risk * task.severity * task.reach
        if task.severe:
            self.n_severe -= 1

    def head(self) -> Task | None:
        """Oldest live task (drops expired ones found at the head)."""
        tasks = self.tasks
        while tasks:
            t = tasks[0]
            if t.state == WAITING:
                return t
            tasks.popleft()
        return None


class Group:
    """A reviewer group at run time: its static facts (from the layout's
    :class:`~dispatch.layout.GroupSpec`, as lists for fast lookup by class index), its
    members, and who of them is idle now."""

    __slots__ = (
        "index",
        "name",
        "spec",
        "eligible",
        "eligible_mask",
        "sensitivity",
        "specificity",
        "speed",
        "cap",
        "fatigue",
        "members",
        "idle",
        "on_duty",
        "single",
    )

    def __init__(self, gs: GroupSpec):
        self.index = gs.index
        self.name = gs.name
        self.spec = gs.spec
        self.eligible: list[int] = list(gs.eligible)
        self.single = gs.eligible[0] if len(gs.eligible) == 1 else -1
        self.eligible_mask = gs.eligible_mask
        self.sensitivity: list[float] = list(gs.sensitivity)
        self.specificity: list[float] = list(gs.specificity)
        self.speed: list[float] = list(gs.speed)
        self.cap: int | None = gs.cap
        self.fatigue = gs.fatigue
        self.members: list[Reviewer] = []
        self.idle: deque[Reviewer] = deque()
        """Engine-owned: read it through ``Simulation.free_count`` / ``idle_reviewers``."""
        self.on_duty = True


class Reviewer:
    """One human reviewer: duty status, current task, fatigue and wellbeing counters."""

    __slots__ = (
        "id",
        "group",
        "busy",
        "on_duty",
        "leaving",
        "task",
        "fatigue",
        "fatigue_t",
        "severe_times",
        "busy_time",
        "completed",
        "severe_done",
        "in_idle",
        "event",
    )

    def __init__(self, rid: int, group: Group):
        self.id = rid
        self.group = group
        self.busy = False
        self.on_duty = True
        self.leaving = False
        self.task: Task | None = None
        self.fatigue = 0.0
        self.fatigue_t = 0.0
        self.severe_times: deque[float] = deque()
        self.busy_time = 0.0
        self.completed = 0
        self.severe_done = 0
        self.in_idle = False

    @property
    def current_class(self) -> int | None:
        """Class index of the task in review, or ``None`` when free."""
        task = self.task
        return None if task is None else task.cls

    @property
    def current_bucket(self) -> int | None:
        """Bucket index of the task in review, or ``None`` when free."""
        task = self.task
        return None if task is None else task.bucket

    def severe_in_last_hour(self, now: float) -> int:
        st = self.severe_times
        while st and st[0] <= now - 60.0:
            st.popleft()
        return len(st)

    def at_cap(self, now: float) -> bool:
        cap = self.group.cap
        return cap is not None and self.severe_in_last_hour(now) >= cap

    def current_fatigue(self, now: float) -> float:
        """Accuracy drop now, with recovery for the time idle since the last update."""
        f = self.group.fatigue
        if f is None:
            return 0.0
        if self.busy:
            return min(f.max_drop, self.fatigue + f.drop_per_hour * (now - self.fatigue_t) / 60)
        return max(0.0, self.fatigue - f.recovery_per_hour * (now - self.fatigue_t) / 60)
