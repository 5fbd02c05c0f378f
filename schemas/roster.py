"""``data`` payloads of the ``at.roster`` topic (DESIGN.md 4.4)."""
from __future__ import annotations

from enum import Enum
from typing import Literal, Optional

from pydantic import model_validator

from schemas.base import Data, Day, Initials, NonEmpty


class MemberUpserted(Data):
    initials: Initials
    name: NonEmpty
    role: Literal["at", "vpa_manager"]
    deputy: Optional[Initials] = None
    active: bool


class AbsenceKind(str, Enum):
    vacation = "vacation"
    sick = "sick"


class RosterAbsenceRegistered(Data):
    absence_id: NonEmpty
    initials: Initials
    kind: AbsenceKind
    starts_on: Day
    ends_on: Optional[Day] = None  # null: open-ended, until roster.absence_ended

    @model_validator(mode="after")
    def _ends_after_start(self) -> "RosterAbsenceRegistered":
        if self.ends_on is not None and self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class RosterAbsenceEnded(Data):
    absence_id: NonEmpty
    initials: Initials


ROSTER_DATA: dict[str, type[Data]] = {
    "roster.member_upserted": MemberUpserted,
    "roster.absence_registered": RosterAbsenceRegistered,
    "roster.absence_ended": RosterAbsenceEnded,
}
