"""``data`` payloads of the ``vpa.events`` topic (DESIGN.md 4.3)."""
from __future__ import annotations

from enum import Enum
from typing import Optional

from pydantic import Field, model_validator

from schemas.base import Data, Day, Initials, NonEmpty, OffsetDatetime, Text, VpaClass


class Registered(Data):
    name: NonEmpty
    started_on: Day
    part_time: bool = False
    vpa_class: Optional[VpaClass] = Field(default=None, alias="class")
    at_owner: Initials
    buddy: Optional[Initials] = None
    uses_mobile_app: bool = False


class ProfileUpdated(Data):
    """Only the fields present change; ``model_fields_set`` tells which (a null buddy removes it)."""

    name: Optional[NonEmpty] = None
    part_time: Optional[bool] = None
    at_owner: Optional[Initials] = None
    buddy: Optional[Initials] = None
    uses_mobile_app: Optional[bool] = None


class ScheduleChanged(Data):
    accepts_new_customers: bool
    accepts_orders: bool


class AbsenceRegistered(Data):
    absence_id: NonEmpty
    starts_on: Day
    ends_on: Day
    reason: Optional[Text] = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "AbsenceRegistered":
        if self.ends_on < self.starts_on:
            raise ValueError("ends_on is before starts_on")
        return self


class AbsenceCancelled(Data):
    absence_id: NonEmpty


class ClassChanged(Data):
    vpa_class: VpaClass = Field(alias="class")
    previous: Optional[VpaClass] = None
    rising_star: bool = False


class ActivityStatus(str, Enum):
    active = "active"
    inactive = "inactive"


class ActivityStatusChanged(Data):
    status: ActivityStatus


class Channel(str, Enum):
    web = "web"
    mobile = "mobile"


class ActivitySeen(Data):
    channel: Channel


class CustomerComplaint(Data):
    complaint_id: NonEmpty
    summary: Optional[Text] = None


class OnboardingCallCompleted(Data):
    pass


class CheckinCallScheduled(Data):
    scheduled_for: OffsetDatetime
    buddy: Optional[Initials] = None


class Offboarded(Data):
    pass


class ClockTick(Data):
    pass


EVENT_DATA: dict[str, type[Data]] = {
    "vpa.registered": Registered,
    "vpa.profile_updated": ProfileUpdated,
    "vpa.schedule_changed": ScheduleChanged,
    "vpa.absence_registered": AbsenceRegistered,
    "vpa.absence_cancelled": AbsenceCancelled,
    "vpa.class_changed": ClassChanged,
    "vpa.activity_status_changed": ActivityStatusChanged,
    "vpa.activity_seen": ActivitySeen,
    "vpa.customer_complaint": CustomerComplaint,
    "vpa.onboarding_call_completed": OnboardingCallCompleted,
    "vpa.checkin_call_scheduled": CheckinCallScheduled,
    "vpa.offboarded": Offboarded,
    "clock.tick": ClockTick,
}
