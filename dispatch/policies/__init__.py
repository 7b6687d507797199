"""Dispatch policies, selectable by name: see :func:`make_policy` and :func:`list_policies`."""

from dispatch.policies.base import Policy, PolicyMode
from dispatch.policies.registry import list_policies, make_policy, register

__all__ = ["Policy", "PolicyMode", "list_policies", "make_policy", "register"]
