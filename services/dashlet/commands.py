"""``POST /api/commands``: the request body (a command envelope without actor), its checks, and
the server's stamp (DESIGN 4.8): ``actor`` from the token, ``occurred_at`` from the server's clock,
``event_id`` when missing. A client's ``actor`` or ``occurred_at`` is ignored.

The request models are derived from the contract's ``cmd.*`` data models, so the OpenAPI
document shows the body as their discriminated union (on ``type``).
"""
from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any, Literal, Optional, Union

from pydantic import (
    BaseModel, ConfigDict, Field, StringConstraints, TypeAdapter, ValidationError, create_model, model_validator,
)

from schemas.commands import COMMAND_DATA, SYSTEM_ONLY_COMMANDS
from schemas.envelope import Envelope
from services.core.timeutil import fmt
from services.dashlet.auth import Principal
from services.dashlet.errors import ApiError, ErrorCode
from services.dashlet.query import FIRST_YEAR, LAST_YEAR, SAFE_TEXT
from services.engine.decode import Decoded, Invalid, Unknown, decode

EventId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=SAFE_TEXT)]
VpaId = Annotated[str, StringConstraints(min_length=1, max_length=200, pattern=SAFE_TEXT)]
MAX_DEPTH = 16  # a command is three levels deep; deeper JSON is not a command
SERVER_EVENT_PREFIX = "dashlet:"


# What a person may put into a command's ``data`` (DESIGN 4.8, issue 28): exactly the fields of its
# type, ids of a plain form, free text without control characters (line breaks allowed) and at
# most 2,000 characters. The contract's models ignore unknown fields of the upstream's events; the
# API is stricter, and only the validated model is passed on.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,119}$"  # an id a person chooses (reminder_id)
# A task's id is built from upstream ids (an absence's, an event's), whose form is theirs: any
# printable characters but no spaces.
TASK_ID_PATTERN = r"^[^\s\x00-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]{1,300}$"
_CONTROL = re.compile(r"[\x00-\x09\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_IDS = {"reminder_id": (ID_PATTERN, "nur Buchstaben, Ziffern und . _ : - (höchstens 120 Zeichen)"),
        "task_id": (TASK_ID_PATTERN, "ohne Leer- und Steuerzeichen, höchstens 300 Zeichen"),
        "case_task_id": (TASK_ID_PATTERN, "ohne Leer- und Steuerzeichen, höchstens 300 Zeichen")}


def _strict(data: type[BaseModel]) -> type[BaseModel]:
    def check(values: Any) -> Any:  # a pydantic "after" model validator: the validated model
        for name, (pattern, rule) in _IDS.items():
            value = getattr(values, name, None)
            if value is not None and not re.match(pattern, value):
                raise ValueError(f"data.{name}: {rule}")
        note = getattr(values, "note", None)
        if note is not None:
            if _CONTROL.search(note):
                raise ValueError("data.note: enthält Steuerzeichen (erlaubt sind Zeilenumbrüche)")
            if not note.strip():
                raise ValueError("data.note: ist leer (nur Leerzeichen)")
        return values

    return type(data.__name__, (data,), {  # the same name: the OpenAPI document shows the contract's
        "model_config": ConfigDict(**{**data.model_config, "extra": "forbid"}),
        "check_person_input": model_validator(mode="after")(check),
        "__module__": __name__,
    })


def _request_model(type_: str, data: type[BaseModel]) -> type[BaseModel]:
    name = "".join(part.capitalize() for part in type_.split(".")[1:]) + "Command"  # ReminderSetCommand
    data = _strict(data)
    return create_model(
        name,
        __config__=ConfigDict(extra="ignore", title=name),
        __doc__=f"`{type_}`: the envelope without actor; occurred_at and actor are set by the server.",
        type=(Literal[type_], ...),
        vpa_id=(VpaId, ...),
        event_id=(Optional[EventId], Field(None, description="eindeutig; fehlt es, vergibt der Server eines")),
        schema_version=(Literal[1], 1),
        data=(data, ...),
    )


REQUEST_MODELS: dict[str, type[BaseModel]] = {t: _request_model(t, m) for t, m in COMMAND_DATA.items()
                                              if t not in SYSTEM_ONLY_COMMANDS}
CommandRequest = Annotated[Union[tuple(REQUEST_MODELS.values())], Field(discriminator="type")]  # type: ignore[valid-type]
COMMAND_REQUEST = TypeAdapter(CommandRequest)


class Accepted(BaseModel):
    """202: the command was accepted for processing under this event_id (the server scopes a client's
    id to its principal: ``dashlet:AB:<id>``). ``repeated``: the same principal sent this id before;
    the command was not applied again."""

    model_config = ConfigDict(title="Accepted")
    event_id: str
    repeated: bool = False


# ---- German reasons for validation errors -------------------------------------------------------

_MESSAGES = {
    "missing": "fehlt",
    "string_too_long": "ist zu lang",
    "string_too_short": "ist leer",
    "string_pattern_mismatch": "hat nicht das erwartete Format",
    "timezone_aware": "braucht einen UTC-Offset",
    "literal_error": "ist kein erlaubter Wert",
    "enum": "ist kein erlaubter Wert",
    "union_tag_invalid": "ist kein bekannter Befehl",
    "union_tag_not_found": "fehlt",
    "extra_forbidden": "ist kein Feld dieses Befehls",
}


def _german(err: ValidationError) -> str:
    parts = []
    for e in err.errors(include_url=False)[:5]:
        loc = ".".join(str(x) for x in e["loc"] if not str(x).endswith("Command") and not str(x).startswith("cmd."))
        kind = e["type"]
        if kind == "value_error":
            parts.append(e["msg"].removeprefix("Value error, "))
            continue
        if kind == "string_too_long" and loc.endswith("note"):
            text = "ist zu lang (höchstens 2.000 Zeichen)"
        elif kind in _MESSAGES:
            text = _MESSAGES[kind]
        elif kind.startswith(("datetime", "date")):
            text = "ist kein Zeitpunkt im Format RFC 3339 mit UTC-Offset"
        elif kind.endswith("_type") or kind.endswith("_parsing"):
            text = "hat den falschen Typ"
        else:
            text = e["msg"]
        parts.append(f"{loc or 'Befehl'}: {text}")
    return "Ungültiger Befehl: " + "; ".join(parts)


def _bad(code: ErrorCode, reason: str, status: int = 400) -> ApiError:
    return ApiError(status, code, reason)


def _check_text(value: Any, depth: int = 0) -> None:
    """No NUL and no lone surrogate anywhere (PostgreSQL and UTF-8 refuse them), bounded depth."""
    if depth > MAX_DEPTH:
        raise _bad(ErrorCode.bad_json, f"JSON ist tiefer als {MAX_DEPTH} Ebenen verschachtelt")
    if isinstance(value, str):
        if "\x00" in value:
            raise _bad(ErrorCode.bad_encoding, "Text enthält das Zeichen U+0000")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise _bad(ErrorCode.bad_encoding, "Text enthält ein einzelnes Surrogat (kein gültiges Unicode)") from None
    elif isinstance(value, dict):
        for k, v in value.items():
            _check_text(k, depth + 1)
            _check_text(v, depth + 1)
    elif isinstance(value, list):
        for v in value:
            _check_text(v, depth + 1)


def check_media_type(content_type: str, charset: Optional[str]) -> None:
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise _bad(ErrorCode.unsupported_media_type, "Befehle werden als application/json gesendet", 415)
    if charset is not None and charset.lower().replace("_", "-") not in ("utf-8", "utf8"):
        raise _bad(ErrorCode.unsupported_media_type, f"Zeichensatz {charset[:40]!r} wird nicht unterstützt: nur UTF-8",
                   415)


def parse_body(body: bytes) -> dict:
    """Bytes -> a command's JSON object, with a German 400 for anything else (never an exception)."""
    obj = parse_object(body)
    type_ = obj.get("type")
    if not isinstance(type_, str) or type_ not in REQUEST_MODELS:
        shown = type_[:60] if isinstance(type_, str) else type_.__class__.__name__
        raise _bad(ErrorCode.unknown_command_type,
                   f"Unbekannter Befehl {shown!r}: erlaubt sind {', '.join(sorted(REQUEST_MODELS))}")
    return obj


def parse_object(body: bytes) -> dict:
    """Bytes -> a JSON object of safe text, with a German 400 for anything else."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _bad(ErrorCode.bad_encoding, f"Der Inhalt ist kein gültiges UTF-8 (Byte {exc.start})") from None
    try:
        obj = json.loads(text)
    except RecursionError:
        raise _bad(ErrorCode.bad_json, "JSON ist zu tief verschachtelt") from None
    except ValueError as exc:  # JSONDecodeError, and numbers too long to convert
        raise _bad(ErrorCode.bad_json, f"Der Inhalt ist kein JSON: {str(exc)[:120]}") from None
    if not isinstance(obj, dict):
        raise _bad(ErrorCode.bad_json, "Der Inhalt muss ein JSON-Objekt sein")
    _check_text(obj)
    return obj


def scoped_event_id(who: Principal, client_id: Optional[str]) -> str:
    """DESIGN 5.4a: a client's event_id is its own, within its principal; none: a fresh one."""
    return f"{SERVER_EVENT_PREFIX}{who.initials}:{client_id or uuid.uuid4().hex}"


def stamp(obj: dict, who: Principal, now: datetime, tz: Any) -> tuple[Envelope, bytes]:
    """The envelope as the server sends it on: validated, stamped, and decoded as the services will."""
    try:
        request = COMMAND_REQUEST.validate_json(json.dumps(obj))
    except ValidationError as exc:
        in_data = any(e["loc"][1:2] == ("data",) or e["loc"][:1] == ("data",) for e in exc.errors(include_url=False))
        raise _bad(ErrorCode.invalid_command, _german(exc), 422 if in_data else 400) from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise _bad(ErrorCode.invalid_command, f"Ungültiger Befehl: {str(exc)[:120]}") from None
    due = getattr(request.data, "due_at", None)
    if due is not None and not FIRST_YEAR <= due.year <= LAST_YEAR:
        raise _bad(ErrorCode.invalid_command,
                   f"Ungültiger Befehl: data.due_at liegt außerhalb der Jahre {FIRST_YEAR} bis {LAST_YEAR}")
    envelope = {
        "event_id": scoped_event_id(who, request.event_id),
        "type": request.type,
        "occurred_at": fmt(now, tz),
        "vpa_id": request.vpa_id,
        "actor": {"initials": who.initials, "role": who.role},
        "schema_version": 1,
        # only what was validated, as the model has it (a field left out stays left out)
        "data": request.data.model_dump(mode="json", by_alias=True, exclude_unset=True),
    }
    raw = json.dumps(envelope, ensure_ascii=False).encode("utf-8")
    outcome = decode(raw)
    if isinstance(outcome, Invalid):
        raise _bad(ErrorCode.invalid_command, f"Ungültiger Befehl: {outcome.reason}")
    if isinstance(outcome, Unknown):  # cannot happen: the type was checked above
        raise _bad(ErrorCode.unknown_command_type, f"Unbekannter Befehl {outcome.type!r}")
    assert isinstance(outcome, Decoded)
    return outcome.envelope, raw
