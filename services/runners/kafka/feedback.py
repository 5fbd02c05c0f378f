"""Commands one stream service emits for another, on the emitting service's own topic.

The detector asks the reminders service for the automatic inactivity reminder and confirms
resolved cases. In the embedded runner such a command is handled right after its cause; on Kafka
the reminders service must see it at the same place among its own inputs. So the detector writes
each command with its order key (``services.engine.order``), in key order, to
``<prefix>-detector-commands`` (partition = the cause's partition), followed after each batch by a
*progress mark*: "every step up to this key is done, every command of them is above". The
reminders service merges that topic with its other inputs and takes no step beyond the last mark,
so no command can arrive behind a step it should have preceded.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Optional, Union

from schemas.envelope import Envelope
from services.engine.decode import Decoded, Invalid, decode
from services.engine.order import OrderKey

COMMAND, MARK = "command", "mark"


def command_record(key: OrderKey, env: Envelope) -> bytes:
    return json.dumps({"kind": COMMAND, "key": list(key), "envelope": json.loads(env.to_bytes())}).encode()


def mark_record(key: OrderKey) -> bytes:
    return json.dumps({"kind": MARK, "key": list(key)}).encode()


@dataclass(frozen=True)
class FeedbackCommand:
    key: OrderKey
    envelope: Envelope


@dataclass(frozen=True)
class ProgressMark:
    key: OrderKey


def parse_feedback(raw: Optional[bytes]) -> Union[FeedbackCommand, ProgressMark, Invalid]:
    """The record, or why it is not one (for the DLQ)."""
    try:
        obj = json.loads(raw or b"")
        kind, key = obj["kind"], tuple(int(k) for k in obj["key"])
        if kind == MARK:
            return ProgressMark(key)
        if kind == COMMAND:
            outcome = decode(json.dumps(obj["envelope"]).encode())
            if isinstance(outcome, Decoded):
                return FeedbackCommand(key, outcome.envelope)
            return Invalid(f"feedback command: {getattr(outcome, 'reason', outcome)}")
        return Invalid(f"feedback record of kind {kind!r}")
    except (ValueError, KeyError, TypeError, RecursionError) as exc:
        return Invalid(f"feedback record: {type(exc).__name__}: {exc}")
