"""Did-you-mean for unknown configuration keys.

pydantic says "Extra inputs are not permitted" and, left alone, the error line shows the
value too. For a misspelt key that value may be a secret (``secrte = "…"``), so an unknown
key's line names the key's path and a suggestion, never its value.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterator, Sequence

from pydantic import BaseModel

__all__ = ["section_fields", "unknown_key_message"]


def _submodel(annotation: object) -> tuple[type[BaseModel], str] | None:
    """The model inside a field's type and how it nests there: ``""``, ``"dict"``, ``"list"``."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
        return None
    if origin is typing.Annotated:
        return _submodel(typing.get_args(annotation)[0])
    if origin is dict:
        inner = _submodel(typing.get_args(annotation)[1])
        return (inner[0], "dict") if inner is not None else None
    if origin is list:
        inner = _submodel(typing.get_args(annotation)[0])
        return (inner[0], "list") if inner is not None else None
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, ""
    return None


def _model_at(root: type[BaseModel], loc: Sequence[int | str]) -> type[BaseModel] | None:
    """The model that holds the keys at ``loc`` (``("hedges", 0)`` -> the hedge model)."""
    model: type[BaseModel] = root
    parts = list(loc)
    while parts:
        name = parts.pop(0)
        field = model.model_fields.get(str(name))
        if field is None:
            return None
        found = _submodel(field.annotation)
        if found is None:
            return None
        model, nesting = found
        if nesting:  # skip the dict key or the list index
            if not parts:
                return None
            parts.pop(0)
    return model


def section_fields(root: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Every ``(section, key)`` of the settings: ``("", "mode")``, ``("[paper]", "maker_fee")``."""
    for name, field in root.model_fields.items():
        found = _submodel(field.annotation)
        if found is None:
            yield (f"[{prefix}]" if prefix else "", name)
            continue
        child, nesting = found
        path = f"{prefix}.{name}" if prefix else name
        if nesting == "dict":
            path += ".NAME"
        for section, key in section_fields(child, path):
            # An array of tables is written [[hedges]] in TOML.
            yield (f"[{section}]" if nesting == "list" and section == f"[{path}]" else section, key)


def unknown_key_message(root: type[BaseModel], loc: Sequence[int | str]) -> str:
    """What to say about the unknown key at ``loc``: a near key of its section, a key of that
    name in another section, or the section's keys."""
    key = str(loc[-1])
    model = _model_at(root, loc[:-1])
    known = sorted(model.model_fields) if model is not None else []
    close = difflib.get_close_matches(key.lower(), known, n=1, cutoff=0.6)
    if close:
        parent = ".".join(str(part) for part in loc[:-1])
        return f"unknown key; did you mean {f'{parent}.' if parent else ''}{close[0]}?"
    everywhere = list(section_fields(root))
    names = sorted({name for _, name in everywhere})
    near = difflib.get_close_matches(key.lower(), names, n=1, cutoff=0.75)
    elsewhere = sorted(f"{section} {name}".strip() for section, name in everywhere if name in near)
    if elsewhere:
        return f"unknown key here; did you mean {' or '.join(elsewhere)}?"
    return f"unknown key; known here: {', '.join(known)}" if known else "unknown key"
