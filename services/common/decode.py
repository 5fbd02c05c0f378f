"""Validation at the edge: raw bytes -> a typed envelope, or a clear reason why not.

Three outcomes, each handled differently by the runners (DESIGN.md 3, "bad input"):
``Decoded`` goes to the handlers, ``Invalid`` goes to ``vpa.dlq`` with its reason, ``Unknown`` (a
well-formed envelope of a type we do not know) is counted and skipped.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Union

from pydantic import ValidationError

from schemas.envelope import ENVELOPE_TYPES, Envelope


@dataclass(frozen=True)
class Decoded:
    envelope: Envelope


@dataclass(frozen=True)
class Invalid:
    reason: str


@dataclass(frozen=True)
class Unknown:
    type: str


Outcome = Union[Decoded, Invalid, Unknown]


def _summarise(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"]) or "envelope"
        parts.append(f"{loc}: {e['msg']}")
    return "invalid: " + "; ".join(parts)


def decode(raw: bytes | str) -> Outcome:
    try:
        obj = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return Invalid(f"undecodable: {exc}")
    if not isinstance(obj, dict):
        return Invalid("invalid: envelope must be a JSON object")
    type_ = obj.get("type")
    if not isinstance(type_, str) or not type_:
        return Invalid("invalid: type: missing or not a string")
    model = ENVELOPE_TYPES.get(type_)
    if model is None:
        return Unknown(type_)
    try:
        # Validate from JSON so strict mode accepts RFC 3339 strings for dates and datetimes.
        text = raw if isinstance(raw, (bytes, str)) else json.dumps(obj)
        return Decoded(model.model_validate_json(text))
    except ValidationError as exc:
        return Invalid(_summarise(exc))
