"""Calendar arithmetic (DESIGN 2, fine print 5.17 and 5.25) in services.core.timeutil."""
from datetime import date, datetime, time, timezone

import pytest

from services.config.settings import Settings
from services.core.timeutil import add_months, at_local, fmt, local_date, months_between, next_working_day, parse

TZ = Settings().tz
WORKDAYS = Settings().working_days


@pytest.mark.parametrize("start, months, expected", [
    (date(2026, 11, 30), 3, date(2027, 2, 28)),   # DESIGN 5.17
    (date(2026, 1, 31), 3, date(2026, 4, 30)),
    (date(2026, 1, 31), 1, date(2026, 2, 28)),
    (date(2028, 1, 31), 1, date(2028, 2, 29)),    # leap year
    (date(2027, 11, 30), 3, date(2028, 2, 29)),   # leap year
    (date(2028, 2, 29), 12, date(2029, 2, 28)),   # from a leap day
    (date(2028, 2, 29), 48, date(2032, 2, 29)),
    (date(2026, 1, 15), 0, date(2026, 1, 15)),
    (date(2026, 10, 15), 3, date(2027, 1, 15)),   # across a year
    (date(2026, 1, 15), 12, date(2027, 1, 15)),
])
def test_add_months_clamps_to_the_month_end(start, months, expected):
    assert add_months(start, months) == expected


@pytest.mark.parametrize("start, on, expected", [
    (date(2026, 1, 15), date(2026, 1, 15), 0),
    (date(2026, 1, 15), date(2026, 2, 14), 0),
    (date(2026, 1, 15), date(2026, 2, 15), 1),
    (date(2026, 1, 15), date(2026, 4, 14), 2),
    (date(2026, 1, 15), date(2026, 4, 15), 3),
    (date(2026, 11, 30), date(2027, 2, 27), 2),
    (date(2026, 11, 30), date(2027, 2, 28), 3),   # 30 Nov + 3 months = 28 Feb
    (date(2026, 1, 31), date(2026, 2, 28), 1),
    (date(2026, 1, 31), date(2026, 3, 30), 1),
    (date(2026, 1, 31), date(2026, 3, 31), 2),
    (date(2025, 1, 15), date(2026, 1, 15), 12),
    (date(2025, 1, 15), date(2026, 1, 14), 11),
])
def test_months_between(start, on, expected):
    assert months_between(start, on) == expected


def test_months_between_before_the_start_is_negative():
    assert months_between(date(2026, 1, 15), date(2026, 1, 14)) < 0


def test_fmt_winter_offset_to_the_second():
    dt = datetime(2026, 11, 26, 8, 12, 34, 987654, tzinfo=timezone.utc)
    assert fmt(dt, TZ) == "2026-11-26T09:12:34+01:00"


def test_fmt_summer_offset_to_the_second():
    dt = datetime(2026, 7, 1, 8, 0, 0, 1, tzinfo=timezone.utc)
    assert fmt(dt, TZ) == "2026-07-01T10:00:00+02:00"


def test_fmt_none():
    assert fmt(None, TZ) is None


def test_fmt_round_trips_through_parse():
    s = "2026-03-29T03:30:00+02:00"  # just after the switch to summer time
    assert fmt(parse(s), TZ) == s
    assert parse("2026-11-26T08:00:00Z") == parse("2026-11-26T09:00:00+01:00")


def test_local_date_in_berlin():
    assert local_date(parse("2026-11-26T23:30:00Z"), TZ) == date(2026, 11, 27)
    assert local_date(parse("2026-11-26T22:59:59Z"), TZ) == date(2026, 11, 26)


def test_at_local_gives_the_berlin_instant():
    assert fmt(at_local(date(2026, 11, 30), time(12, 0), TZ), TZ) == "2026-11-30T12:00:00+01:00"
    assert fmt(at_local(date(2026, 6, 1), time(9, 0), TZ), TZ) == "2026-06-01T09:00:00+02:00"


@pytest.mark.parametrize("day, expected", [
    (date(2026, 11, 27), date(2026, 11, 30)),  # Friday -> Monday
    (date(2026, 11, 28), date(2026, 11, 30)),  # Saturday -> Monday
    (date(2026, 11, 29), date(2026, 11, 30)),  # Sunday -> Monday
    (date(2026, 11, 26), date(2026, 11, 27)),  # Thursday -> Friday
    (date(2026, 11, 30), date(2026, 12, 1)),   # Monday -> Tuesday
])
def test_next_working_day(day, expected):
    assert next_working_day(day, WORKDAYS) == expected


def test_next_working_day_skips_holidays():
    holidays = (date(2026, 12, 25), date(2026, 12, 28))
    assert next_working_day(date(2026, 12, 24), WORKDAYS, holidays) == date(2026, 12, 29)


def test_next_working_day_needs_working_days():
    with pytest.raises(ValueError):
        next_working_day(date(2026, 11, 27), ())
