"""Every threshold of the business rules is a setting with the documented default (DESIGN.md 2).

Settings come from environment variables (``VPA_*``, see README "Configuration") so the same
image runs anywhere; ``Settings.from_env()`` reads and validates them (a bad value is a
``ConfigError`` naming the variable). Tests build ``Settings(...)`` with keyword arguments, which
never reads the environment.

Lists are comma-separated in the environment: ``VPA_WORKING_DAYS=0,1,2,3,4``,
``VPA_HOLIDAYS=2026-12-25,2026-12-26``, ``VPA_SHIFTS=08:00-14:00,14:00-20:00``.
"""
from __future__ import annotations

from datetime import date, time
from functools import cached_property
from typing import Annotated, Any, Mapping, Optional
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import field_validator
from pydantic_settings import NoDecode

from services.config.loader import EnvModel, load, setting

_DAYS = "comma-separated weekday numbers from 0 (Monday) to 6 (Sunday), e.g. 0,1,2,3,4"
_TIME = "a local time HH:MM, e.g. 09:00"


def _split(value: Any) -> Any:
    """A comma-separated variable as a tuple of stripped parts; anything else unchanged."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


class Settings(EnvModel):
    timezone: str = setting("Europe/Berlin", "an IANA time zone name, e.g. Europe/Berlin")
    # Monday..Friday, date.weekday()
    working_days: Annotated[tuple[int, ...], NoDecode] = setting((0, 1, 2, 3, 4), _DAYS, min_length=1)
    holidays: Annotated[tuple[date, ...], NoDecode] = setting((), "comma-separated dates YYYY-MM-DD")
    # absences
    long_absence_days: int = setting(21, "a positive integer (days)", gt=0)
    frequent_absence_count: int = setting(3, "a positive integer", gt=0)
    frequent_absence_window_days: int = setting(90, "a positive integer (days)", gt=0)
    short_notice_days: int = setting(1, "a whole number of days, 0 or more", ge=0)
    # inactivity
    follow_up_time: time = setting(time(9, 0), _TIME)
    monday_follow_up_time: time = setting(time(12, 0), _TIME)
    complaint_window_days: int = setting(14, "a whole number of days, 0 or more", ge=0)
    # N-VPA tenure
    new_vpa_months: int = setting(3, "a whole number of months, 0 or more", ge=0)
    # shifts: (start, end) local times; an end not after its start runs over midnight
    shifts: Annotated[tuple[tuple[time, time], ...], NoDecode] = setting(
        ((time(8), time(14)), (time(14), time(20))),
        "comma-separated local time windows HH:MM-HH:MM, e.g. 08:00-14:00,14:00-20:00", min_length=1)
    # journey
    journey_sweep_time: time = setting(time(6, 0), _TIME)
    journey_grace_days: int = setting(30, "a positive integer (days)", gt=0)
    # runners: how long a repeated event_id is recognised (stream time), and how far ahead of the
    # wall clock an occurred_at may lie where the clock follows it (DESIGN 4.2, 5.4)
    dedupe_window_days: int = setting(7, "a positive integer (days)", gt=0)
    max_future_minutes: int = setting(60, "a positive integer (minutes)", gt=0)
    # state: how long (stream time) a closed task's tombstone stays in a service's state, and with
    # it how far back absences are kept beyond the `frequent` window (services.core.tasks)
    # (0: kept as long as the VPA's state, so an erasure names every task the store holds)
    task_retention_days: int = setting(90, "a whole number of days, 0 or more", ge=0)
    # data protection: an offboarded VPA's state and tasks are erased this long after offboarding
    erase_after_days: int = setting(180, "a positive integer (days)", gt=0)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @field_validator("working_days", "holidays", mode="before")
    @classmethod
    def _comma_list(cls, value: Any) -> Any:
        return _split(value)

    @field_validator("working_days")
    @classmethod
    def _weekdays(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 0 <= d <= 6 for d in value):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")
        return value

    @field_validator("shifts", mode="before")
    @classmethod
    def _windows(cls, value: Any) -> Any:
        if isinstance(value, str):
            windows = []
            for part in _split(value):
                start, sep, end = part.partition("-")
                if not sep:
                    raise ValueError(f"{part!r} is not a window HH:MM-HH:MM")
                windows.append((start.strip(), end.strip()))
            return tuple(windows)
        return value

    @cached_property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @classmethod
    def from_env(cls, env: Optional[Mapping[str, str]] = None) -> "Settings":
        return load(cls, env)


SETTING_NAMES = tuple(Settings.model_fields)
