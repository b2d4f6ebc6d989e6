"""Where a pydantic validation error is, named as the client wrote it: ``messages[0].content``.

pydantic's ``loc`` is the validator's path, not the document's: it holds the member of
an untagged union it tried (``ts.int``, ``tool_choice.literal['auto','none','required']``)
and the tag of a tagged union (``messages.0.user.content``). :func:`error_param` walks
the model's core schema along ``loc`` and keeps only what the client's JSON has: field
names, list indexes and dict keys. The socket's frames (:mod:`gateway.ws.messages`) and
the HTTP bodies report ``param`` through it, so both name a field the same way.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from pydantic import BaseModel
from pydantic_core import ErrorDetails

Loc = tuple[int | str, ...]
_Schema = Mapping[str, Any]

# Errors about the tag itself: the loc ends at the union; the tag's field is what is wrong.
_TAG_ERRORS: Final = frozenset({"union_tag_invalid", "union_tag_not_found"})
_ANY: Final[_Schema] = {"type": "any"}


def error_param(model: type[BaseModel], err: ErrorDetails) -> str:
    """``err``'s location in what the client sent to ``model``: ``messages[0].role``."""
    return render(client_loc(model, err))


def client_loc(model: type[BaseModel], err: ErrorDetails) -> Loc:
    """``err["loc"]`` without union members and tags, and with the tag's field named when
    the tag is wrong (``messages.0`` -> ``messages.0.role``). A loc the schema cannot
    explain (it never should) is kept as it is rather than guessed at."""
    loc = tuple(err["loc"])
    walked = _walk(model.__pydantic_core_schema__, loc, {})
    kept = loc if walked is None else walked
    if err["type"] in _TAG_ERRORS:
        tag = str((err.get("ctx") or {}).get("discriminator", "")).strip("'")
        return (*kept, tag) if tag else kept
    return kept


def render(loc: Loc) -> str:
    """``("messages", 0, "role")`` -> ``messages[0].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


def _walk(schema: _Schema, loc: Loc, defs: dict[str, _Schema]) -> Loc | None:
    """The client's part of ``loc`` below ``schema``; ``None`` if ``loc`` does not fit it."""
    kind = schema["type"]
    if kind == "definitions":
        defs.update((d["ref"], d) for d in schema["definitions"])
        return _walk(schema["schema"], loc, defs)
    if kind == "definition-ref":
        return _walk(defs[schema["schema_ref"]], loc, defs)
    if not loc:
        return ()
    head, rest = loc[0], loc[1:]
    if kind == "model-fields":
        field = schema["fields"].get(head)
        if field is None:  # a field the model does not have (extra="forbid")
            return None if rest else loc
        return _under(head, _walk(field["schema"], rest, defs))
    if kind in ("list", "tuple", "set", "frozenset"):
        if not isinstance(head, int):
            return None
        return _under(head, _walk(schema.get("items_schema", _ANY), rest, defs))
    if kind == "dict":
        if rest == ("[key]",):
            return (head,)
        return _under(head, _walk(schema.get("values_schema", _ANY), rest, defs))
    if kind == "tagged-union":
        choice = schema["choices"].get(head)
        return None if choice is None else _walk(choice, rest, defs)
    if kind == "union":
        # ``head`` is the member's label: dropped. The member meant is the one the rest fits.
        for choice in schema["choices"]:
            member = choice[0] if isinstance(choice, tuple) else choice
            walked = _walk(member, rest, defs)
            if walked is not None:
                return walked
        return None
    inner = schema.get("schema")  # wrappers: model, nullable, default, validators
    return None if inner is None else _walk(inner, loc, defs)


def _under(head: int | str, rest: Loc | None) -> Loc | None:
    return None if rest is None else (head, *rest)
