"""Every dispatcher, selectable by name: see :func:`make_policy` and :func:`list_policies`.

* :mod:`~dispatch.policies.base`: the interface (:class:`Policy`, :class:`PolicyMode`);
* :mod:`~dispatch.policies.registry`: names -> classes, parameter listing;
* :mod:`~dispatch.policies.rules`: classical pull rules and trunk reservation;
* :mod:`~dispatch.policies.batch`: the OR-Tools optimisers ``flow``, ``lsa``, ``cpsat``;
* :mod:`~dispatch.policies.weighted`: hybrid assigners steered by per-bucket weights;
* :mod:`~dispatch.policies.learned`: a model trained by ``dispatch train``;
* the ``onnx`` policy (an exported model) lives in :mod:`dispatch.deploy` for now.
"""

from dispatch.policies.base import Policy, PolicyMode
from dispatch.policies.registry import list_policies, make_policy, register

__all__ = ["Policy", "PolicyMode", "list_policies", "make_policy", "register"]
