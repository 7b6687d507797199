"""Policies by name: the CLI, experiment files and notebooks all go through here."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from dispatch.errors import ConfigError
from dispatch.policies.base import Policy

_REGISTRY: dict[str, type[Policy]] = {}
_LOADED = False


def register(cls: type[Policy]) -> type[Policy]:
    """Class decorator: make a policy selectable by its ``name``."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"policy name {cls.name!r} registered twice")
    _REGISTRY[cls.name] = cls
    return cls


# Modules whose import registers the built-in policies. ``dispatch.deploy`` holds the
# ``onnx`` policy until it moves to ``dispatch.policies.onnx`` (branch struct-b).
BUILTIN_MODULES = (
    "dispatch.policies.rules",
    "dispatch.policies.batch",
    "dispatch.policies.optimal",
    "dispatch.policies.learned",
    "dispatch.policies.onnx",
)


def _load_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(mod)


def policy_classes() -> dict[str, type[Policy]]:
    _load_builtin()
    return dict(_REGISTRY)


def make_policy(name: str, **params: Any) -> Policy:
    """Build a registered policy; unknown names or bad parameters raise ConfigError."""
    classes = policy_classes()
    if name not in classes:
        raise ConfigError(
            f"unknown policy '{name}'; choose one of: {', '.join(sorted(classes))} "
            "(see `dispatch policies`)",
            field="policy",
        )
    try:
        return classes[name](**_nest_dotted(params))
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        msg = "unknown parameter" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{msg}", field=f"policy {name}: {loc}") from None


def _nest_dotted(params: dict[str, Any]) -> dict[str, Any]:
    """``{"value.deferral": 20}`` (``-p value.deferral=20``) -> ``{"value": {"deferral": 20}}``."""
    out: dict[str, Any] = {}
    for key, v in params.items():
        *path, last = key.split(".")
        node = out
        for part in path:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = dict(child) if isinstance(child, dict) else {}
            node = child
        if isinstance(node.get(last), dict) and isinstance(v, dict):
            node[last] = {**node[last], **v}
        else:
            node[last] = v
    return out


def list_policies() -> list[tuple[str, str, dict[str, str]]]:
    """(name, summary, {param: description with default}) for every policy.

    Parameter groups (``value``, ``aggregation``, ... of the batch optimisers) are listed
    key by key as ``group.key``, the form ``-p`` and experiment files take.
    """
    out = []
    for name, cls in sorted(policy_classes().items()):
        out.append((name, cls.summary, _describe_fields(cls.Params)))
    return out


def _describe_fields(model: type[BaseModel], prefix: str = "") -> dict[str, str]:
    from dispatch.policies.batch.params import ParamGroup

    params: dict[str, str] = {}
    for pname, f in model.model_fields.items():
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, ParamGroup):
            params.update(_describe_fields(ann, f"{prefix}{pname}."))
            continue
        if f.is_required():
            default = "required"
        else:
            value = f.get_default(call_default_factory=True)
            if isinstance(value, BaseModel):
                value = value.model_dump()
            default = f"default {value!r}"
        desc = " ".join((f.description or "").split())
        params[f"{prefix}{pname}"] = f"{desc} ({default})".strip()
    return params
