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


def _load_builtin() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    import importlib

    for mod in (
        "dispatch.policies.rules",
        "dispatch.policies.solver_policies",
        "dispatch.policies.optimal",
        "dispatch.policies.learned",
        "dispatch.deploy",
    ):
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as exc:  # pragma: no cover - optional modules
            if exc.name != mod:
                raise


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
        return classes[name](**params)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"])
        msg = "unknown parameter" if first["type"] == "extra_forbidden" else first["msg"]
        raise ConfigError(f"{msg}", field=f"policy {name}: {loc}") from None


def list_policies() -> list[tuple[str, str, dict[str, str]]]:
    """(name, summary, {param: description with default}) for every policy."""
    out = []
    for name, cls in sorted(policy_classes().items()):
        params = {}
        for pname, f in cls.Params.model_fields.items():
            if f.is_required():
                default = "required"
            else:
                value = f.get_default(call_default_factory=True)
                if isinstance(value, BaseModel):
                    value = value.model_dump()
                default = f"default {value!r}"
            desc = " ".join((f.description or "").split())
            params[pname] = f"{desc} ({default})".strip()
        out.append((name, cls.summary, params))
    return out
