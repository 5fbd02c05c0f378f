"""Validation at the edge: raw bytes -> a typed envelope, or a clear reason why not.

Three outcomes, each handled differently by the runners (DESIGN.md 3, "bad input"):
``Decoded`` goes to the handlers, ``Invalid`` goes to ``vpa.dlq`` with its reason, ``Unknown`` (a
well-formed envelope of a type we do not know) is counted and skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Optional, Union

import msgspec
from pydantic import ValidationError

from schemas.dead_letters import DlqKind, DlqReason
from schemas.envelope import ENVELOPE_TYPES, Envelope


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope[Any]


@dataclass(frozen=True)
class Invalid:
    """Not usable, and why: the kind is typed, the detail is for people."""

    detail: str
    kind: DlqKind = DlqKind.invalid

    @property
    def reason(self) -> str:
        """The text of the DLQ's ``reason`` header: ``<kind>: <detail>``."""
        return str(DlqReason(self.kind, self.detail))


@dataclass(frozen=True)
class Unknown:
    type: str


Outcome = Union[Decoded, Invalid, Unknown]


def _summarise(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "envelope"
        parts.append(f"{loc}: {e['msg']}")
    return "; ".join(parts)


MAX_DEPTH = 16  # an envelope is 3 levels deep; anything much deeper is not one
MAX_BYTES = 256 * 1024  # the largest envelope the contract allows is a few KB


def poison_in(obj: object) -> str | None:
    """What PostgreSQL or the runners could not take, found before validation: U+0000 in any
    string (PostgreSQL refuses it in text and jsonb) and nesting deeper than ``MAX_DEPTH``; the
    detail of an ``invalid`` reason."""
    stack: list[tuple[object, int]] = [(obj, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                return "a string holds U+0000"
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            for k, v in value.items():
                if "\x00" in k:
                    return "a key holds U+0000"
                stack.append((v, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                return f"nested deeper than {MAX_DEPTH} levels"
            stack.extend((v, depth + 1) for v in value)
    return None


class _Head(msgspec.Struct):
    """The one field read before the envelope's own model: its type (the rest is skipped)."""

    type: Any = None


_HEAD = msgspec.json.Decoder(_Head)


def _type_of_clean(raw: bytes | str) -> Optional[str]:
    """The type of an envelope that is plainly free of poison, read in C without building it; None
    when that is not plain (the full read in ``decode`` then says why, in its own words).

    U+0000 can reach a decoded string only through the escape ``\\u0000`` (a raw control character
    is not JSON), and nesting deeper than ``MAX_DEPTH`` needs more than ``MAX_DEPTH`` brackets: a
    record with neither cannot hold what ``poison_in`` looks for."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if b"\\u0000" in data or data.count(b"{") + data.count(b"[") > MAX_DEPTH:
        return None
    try:
        if not data.isascii():
            data.decode("utf-8")  # msgspec does not check the bytes of what it skips
        type_ = _HEAD.decode(data).type
    except Exception:  # not JSON, not an object, or what only Python's reader takes (NaN)
        return None
    return type_ if isinstance(type_, str) and type_ else None


def decode(raw: bytes | str | None) -> Outcome:
    if not raw:
        return Invalid("empty record (a null value or no bytes)", DlqKind.undecodable)
    if len(raw) > MAX_BYTES:
        return Invalid(f"{len(raw)} bytes, more than the {MAX_BYTES} an envelope may have")
    type_ = _type_of_clean(raw)
    if type_ is None:
        return _decode_checked(raw)
    return _validate(raw, type_)


def _decode_checked(raw: bytes | str) -> Outcome:
    """Every check, one after the other (a record the fast read of ``decode`` did not take)."""
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Invalid(str(exc), DlqKind.undecodable)
    except RecursionError:
        return Invalid(f"nested deeper than {MAX_DEPTH} levels")
    if not isinstance(obj, dict):
        return Invalid("envelope must be a JSON object")
    poison = poison_in(obj)
    if poison:
        return Invalid(poison)
    type_ = obj.get("type")
    if not isinstance(type_, str) or not type_:
        return Invalid("type: missing or not a string")
    return _validate(raw, type_)


def _validate(raw: bytes | str, type_: str) -> Outcome:
    model = ENVELOPE_TYPES.get(type_)
    if model is None:
        return Unknown(type_)
    try:
        # Validate from JSON so strict mode accepts RFC 3339 strings for dates and datetimes.
        return Decoded(model.model_validate_json(raw))
    except ValidationError as exc:
        return Invalid(_summarise(exc))
    except (ValueError, OverflowError, RecursionError) as exc:  # anything else pydantic lets through
        return Invalid(f"{type(exc).__name__}: {exc}")
