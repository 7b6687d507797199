"""The scenario file format as text: every field, nested, with type, default and description.

``dispatch schema`` prints it (as ``dispatch policies`` prints the policies). It is read off
the pydantic models of :mod:`dispatch.scenario` and :mod:`dispatch.distributions`, so it
cannot drift from what the loader accepts. A model is expanded where it first appears and
referred to by name afterwards.
"""

from __future__ import annotations

import inspect
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

__all__ = ["schema_lines"]


def schema_lines(model: type[BaseModel] | None = None) -> list[str]:
    """The fields of ``model`` (default :class:`~dispatch.scenario.Scenario`) as lines."""
    if model is None:
        from dispatch.scenario import Scenario

        model = Scenario
    lines: list[str] = [f"{model.__name__}: {_doc(model)}"]
    _fields(model, 1, lines, {model})
    return lines


def _fields(model: type[BaseModel], depth: int, lines: list[str], seen: set[type]) -> None:
    pad = "  " * depth
    for name, f in model.model_fields.items():
        key = f.alias or name
        default = "required" if f.is_required() else f"default {_default(f)}"
        lines.append(f"{pad}{key}: {_type(f.annotation)} ({default})")
        if f.description:
            lines.append(f"{pad}    {' '.join(f.description.split())}")
        for sub in _models(f.annotation):
            if sub in seen:
                continue
            seen.add(sub)
            kind = sub.model_fields.get("kind")
            tag = f" (kind: {kind.default})" if kind is not None else ""
            lines.append(f"{pad}  {sub.__name__}{tag}: {_doc(sub)}")
            _fields(sub, depth + 2, lines, seen)


def _default(f: Any) -> str:
    if f.default is not PydanticUndefined:
        value = f.default
    else:
        value = f.get_default(call_default_factory=True)
    if isinstance(value, BaseModel):
        value = value.model_dump(exclude_defaults=False)
    return repr(value)


def _doc(model: type) -> str:
    doc = inspect.getdoc(model) or ""
    if doc.startswith("Usage docs:") or model.__doc__ is None:
        return ""
    return " ".join(doc.split("\n\n")[0].split())


def _models(ann: Any) -> list[type[BaseModel]]:
    """Pydantic models inside an annotation (list items, dict values, union members)."""
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return [ann]
    out: list[type[BaseModel]] = []
    for arg in typing.get_args(ann):
        out += _models(arg)
    return out


def _type(ann: Any) -> str:
    origin = typing.get_origin(ann)
    args = typing.get_args(ann)
    if origin is typing.Annotated:
        return _type(args[0])
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(_type(a) for a in args)
    if origin is list:
        return f"list[{_type(args[0])}]"
    if origin is dict:
        return f"dict[{_type(args[0])}, {_type(args[1])}]"
    if ann is type(None):
        return "None"
    if isinstance(ann, type):
        return ann.__name__
    return str(ann)
