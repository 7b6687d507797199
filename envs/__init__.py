"""Gymnasium environments of the audit dispatch simulator.

Importing this package registers ``dispatch/AuditDispatch-v0`` (pull: a free reviewer picks
a bucket) and ``dispatch/BatchDispatch-v0`` (hybrid: per-bucket priority weights drive a
batch assignment every few minutes) with Gymnasium::

    import gymnasium
    import envs  # noqa: F401

    env = gymnasium.make("dispatch/AuditDispatch-v0", scenario="experiments/scenarios/ecommerce_day.yaml")

Without the import, ``gymnasium.make("envs:dispatch/AuditDispatch-v0", ...)`` works too.
The environment classes load lazily (``envs.AuditDispatchEnv``, ``envs.BatchDispatchEnv``).
"""

from __future__ import annotations

from typing import Any

from envs.registration import AUDIT_DISPATCH_ID, BATCH_DISPATCH_ID, register_envs

register_envs()

__all__ = [
    "AUDIT_DISPATCH_ID",
    "BATCH_DISPATCH_ID",
    "AuditDispatchEnv",
    "BatchDispatchEnv",
    "register_envs",
]


def __getattr__(name: str) -> Any:
    if name == "AuditDispatchEnv":
        from envs.audit_dispatch import AuditDispatchEnv

        return AuditDispatchEnv
    if name == "BatchDispatchEnv":
        from envs.batch_dispatch import BatchDispatchEnv

        return BatchDispatchEnv
    raise AttributeError(f"module 'envs' has no attribute {name!r}")
