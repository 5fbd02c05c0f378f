"""Shifts (DESIGN 2.2): what is due in the current shift. services/reminders/shifts.py."""
from __future__ import annotations

from datetime import datetime, time
from zoneinfo import ZoneInfo

import pytest

from services.config.settings import Settings
from services.reminders.shifts import current_shift, due_in_current_shift

BERLIN = ZoneInfo("Europe/Berlin")
S = Settings()


def local(y, mo, d, h, mi=0, s=0):
    return datetime(y, mo, d, h, mi, s, tzinfo=BERLIN)


@pytest.mark.parametrize("now, expected", [
    (local(2026, 11, 26, 8), (local(2026, 11, 26, 8), local(2026, 11, 26, 14))),  # start inclusive
    (local(2026, 11, 26, 13, 59, 59), (local(2026, 11, 26, 8), local(2026, 11, 26, 14))),
    (local(2026, 11, 26, 14), (local(2026, 11, 26, 14), local(2026, 11, 26, 20))),  # end exclusive
    (local(2026, 11, 26, 19, 59, 59), (local(2026, 11, 26, 14), local(2026, 11, 26, 20))),
    (local(2026, 11, 28, 9), (local(2026, 11, 28, 8), local(2026, 11, 28, 14))),  # Saturday too
])
def test_current_shift_default_settings(now, expected):
    assert current_shift(now, S) == expected


@pytest.mark.parametrize("now", [local(2026, 11, 26, 20), local(2026, 11, 26, 23), local(2026, 11, 26, 7, 59, 59)])
def test_no_shift_outside_the_windows(now):
    assert current_shift(now, S) is None


def test_now_in_utc_is_read_in_the_business_time_zone():
    from datetime import timezone
    start, end = current_shift(datetime(2026, 11, 26, 12, 30, tzinfo=timezone.utc), S)  # 13:30 Berlin
    assert (start.hour, end.hour) == (8, 14)
    # Summer time: 06:30 UTC is 08:30 CEST.
    start, end = current_shift(datetime(2026, 7, 1, 6, 30, tzinfo=timezone.utc), S)
    assert start == local(2026, 7, 1, 8) and end.utcoffset().total_seconds() == 7200


def test_configured_shift_over_midnight():
    s = Settings(shifts=((time(6), time(22)), (time(22), time(6))))
    assert current_shift(local(2026, 11, 26, 23), s) == (local(2026, 11, 26, 22), local(2026, 11, 27, 6))
    assert current_shift(local(2026, 11, 27, 5), s) == (local(2026, 11, 26, 22), local(2026, 11, 27, 6))
    assert current_shift(local(2026, 11, 27, 6), s) == (local(2026, 11, 27, 6), local(2026, 11, 27, 22))


def task(status="waiting", due_at="2026-11-26T14:00:00+01:00"):
    return {"status": status, "due_at": due_at}


NOW = local(2026, 11, 26, 10)  # in the 08:00-14:00 shift


@pytest.mark.parametrize("t, expected", [
    (task(due_at="2026-11-26T14:00:00+01:00"), True),  # due exactly at the shift's end
    (task(due_at="2026-11-26T14:00:01+01:00"), False),
    (task(due_at="2026-11-26T13:00:00Z"), True),  # 14:00 Berlin, other offset
    (task("open", "2026-11-20T09:00:00+01:00"), True),  # overdue
    (task("open", "2026-11-26T09:00:00+01:00"), True),
    (task("done", "2026-11-26T11:00:00+01:00"), False),
    (task("cancelled", "2026-11-26T11:00:00+01:00"), False),
    (task("open", None), False),
    (task(due_at=local(2026, 11, 26, 12)), True),  # datetime accepted as well
])
def test_due_in_current_shift(t, expected):
    assert due_in_current_shift(t, NOW, S) is expected


def test_nothing_is_due_in_the_current_shift_between_shifts():
    assert due_in_current_shift(task("open", "2026-11-20T09:00:00+01:00"), local(2026, 11, 26, 21), S) is False


def test_later_shift_includes_reminders_due_until_its_end():
    t = task(due_at="2026-11-26T19:00:00+01:00")
    assert due_in_current_shift(t, local(2026, 11, 26, 10), S) is False
    assert due_in_current_shift(t, local(2026, 11, 26, 14), S) is True
