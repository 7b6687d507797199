"""Dispatch policies, selectable by name: see :func:`make_policy` and :func:`list_policies`."""

from dispatch.policies.base import Policy
from dispatch.policies.registry import list_policies, make_policy, register

__all__ = ["Policy", "list_policies", "make_policy", "register"]
