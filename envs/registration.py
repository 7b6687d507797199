"""Gymnasium registration of the dispatch environments.

Entry points are strings, so registering imports neither the environments nor the
simulator. Gymnasium 1.x dropped the plugin auto-loading of earlier gym releases (no entry
point group is scanned), so registration happens when the ``envs`` package is imported::

    import envs  # noqa: F401  (registers dispatch/AuditDispatch-v0, dispatch/BatchDispatch-v0)
    env = gymnasium.make("dispatch/AuditDispatch-v0", scenario="experiments/scenarios/ecommerce_day.yaml")

or, with no import at all, by naming the module in the id (Gymnasium imports it first)::

    env = gymnasium.make("envs:dispatch/AuditDispatch-v0", scenario=PATH)
"""

from __future__ import annotations

AUDIT_DISPATCH_ID = "dispatch/AuditDispatch-v0"
BATCH_DISPATCH_ID = "dispatch/BatchDispatch-v0"

_SPECS = {
    AUDIT_DISPATCH_ID: "envs.audit_dispatch:AuditDispatchEnv",
    BATCH_DISPATCH_ID: "envs.batch_dispatch:BatchDispatchEnv",
}


def register_envs() -> None:
    """Register both environments (idempotent). No ``max_episode_steps``: the simulated
    horizon ends every episode."""
    from gymnasium.envs.registration import register, registry

    for env_id, entry in _SPECS.items():
        if env_id not in registry:
            register(id=env_id, entry_point=entry, max_episode_steps=None)
