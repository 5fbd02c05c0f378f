"""The envelope every topic value is wrapped in (DESIGN.md 4.2), one model per type."""
from __future__ import annotations

from typing import Any, Generic, Optional, TypeVar

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic import field_validator

from schemas.base import Data, NonEmpty, OffsetDatetime, Role
from schemas.commands import COMMAND_DATA
from schemas.events import EVENT_DATA
from schemas.roster import ROSTER_DATA
from schemas.topics import Topic

D = TypeVar("D", bound=Data)


class Actor(BaseModel):
    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    initials: str = Field(pattern=r"^[A-Z]{2,4}$")
    role: Role

    @model_validator(mode="after")
    def _system_is_sys(self) -> "Actor":
        if (self.role == Role.system) != (self.initials == "SYS"):
            raise ValueError("the system actor is exactly {initials: SYS, role: system}")
        return self


SYSTEM_ACTOR = Actor(initials="SYS", role=Role.system)


class Envelope(BaseModel, Generic[D]):
    """A message on any topic. ``data`` is validated by the model registered for ``type``."""

    model_config = ConfigDict(strict=True, frozen=True, extra="ignore")

    event_id: NonEmpty
    type: NonEmpty
    occurred_at: OffsetDatetime
    vpa_id: Optional[NonEmpty] = None
    actor: Optional[Actor] = None
    schema_version: int = 1
    data: D

    @field_validator("schema_version")
    @classmethod
    def _known_version(cls, v: int) -> int:
        if v != 1:
            raise ValueError(f"unsupported schema_version {v}")
        return v

    @model_validator(mode="after")
    def _required_by_type(self) -> "Envelope[D]":
        if self.type.startswith(("vpa.", "cmd.")) and not self.vpa_id:
            raise ValueError(f"vpa_id is required for {self.type}")
        if self.type.startswith("cmd.") and self.actor is None:
            raise ValueError(f"actor is required for {self.type}")
        return self

    def to_json_dict(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)

    def to_bytes(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()


DATA_MODELS: dict[str, type[Data]] = {**EVENT_DATA, **ROSTER_DATA, **COMMAND_DATA}

# One concrete envelope model per type: used to decode, and exported as JSON Schema.
ENVELOPE_TYPES: dict[str, type[Envelope[Any]]] = {
    t: Envelope[m] for t, m in DATA_MODELS.items()  # type: ignore[valid-type]  # made at import, per type
}

TOPIC_OF_TYPE: dict[str, str] = {
    **{t: Topic.events for t in EVENT_DATA},
    **{t: Topic.roster for t in ROSTER_DATA},
    **{t: Topic.commands for t in COMMAND_DATA},
}


def topic_for_type(type_: str) -> Optional[str]:
    return TOPIC_OF_TYPE.get(type_)
