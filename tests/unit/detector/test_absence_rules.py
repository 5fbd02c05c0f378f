"""Absence rules as pure functions (DESIGN 2.1 ``absence``, fine print 5.2, 5.18, 5.19)."""
from datetime import date, timedelta

import pytest

from services.config.settings import Settings
from services.core.timeutil import local_date, parse
from services.detector.absence_rules import (
    AbsenceFacts,
    absence_reasons,
    is_frequent,
    is_long,
    is_short_notice,
)

S = Settings()
REGISTERED_ON = date(2026, 11, 26)


def absence(absence_id: str, starts_on: str, ends_on: str | None = None, cancelled: bool = False) -> AbsenceFacts:
    start = date.fromisoformat(starts_on)
    end = date.fromisoformat(ends_on) if ends_on else start
    return AbsenceFacts(absence_id, start, end, cancelled)


# ---- long: ends_on - starts_on + 1 > 21 ------------------------------------------------------

def test_duration_counts_both_ends():
    assert absence("a", "2026-12-01", "2026-12-01").days == 1
    assert absence("a", "2026-12-01", "2026-12-21").days == 21


def test_exactly_21_days_is_not_long():
    assert not is_long(absence("a", "2026-12-01", "2026-12-21"), S)


def test_22_days_is_long():
    assert is_long(absence("a", "2026-12-01", "2026-12-22"), S)


def test_long_across_a_month_end():
    # 20 Dec .. 10 Jan = 12 + 10 = 22 days
    assert is_long(absence("a", "2026-12-20", "2027-01-10"), S)
    assert not is_long(absence("a", "2026-12-21", "2027-01-10"), S)


# ---- frequent: 3rd non-cancelled absence starting in [starts_on - 90, starts_on] ---------------

NEW = absence("new", "2026-11-30", "2026-12-02")  # window: 2026-09-01 .. 2026-11-30


def test_window_start_is_90_days_before():
    assert NEW.starts_on - timedelta(days=90) == date(2026, 9, 1)


def test_third_absence_within_90_days_is_frequent():
    known = [absence("a1", "2026-10-01"), absence("a2", "2026-11-01")]
    assert is_frequent(NEW, known, S)


def test_two_absences_are_not_frequent():
    assert not is_frequent(NEW, [absence("a1", "2026-11-01")], S)


def test_oldest_exactly_90_days_before_is_inside_the_window():
    known = [absence("a1", "2026-09-01"), absence("a2", "2026-11-01")]
    assert is_frequent(NEW, known, S)


def test_oldest_91_days_before_is_outside_the_window():
    known = [absence("a1", "2026-08-31", "2026-09-05"), absence("a2", "2026-11-01")]
    assert not is_frequent(NEW, known, S)


def test_only_starts_on_counts_not_an_overlap_into_the_window():
    # a1 runs into the window but starts before it
    known = [absence("a1", "2026-08-20", "2026-09-10"), absence("a2", "2026-11-01")]
    assert not is_frequent(NEW, known, S)


def test_an_absence_starting_the_same_day_is_inside_the_window():
    known = [absence("a1", "2026-10-01"), absence("a2", "2026-11-30", "2026-11-30")]
    assert is_frequent(NEW, known, S)


def test_later_starting_absences_are_not_counted():
    known = [absence("a1", "2026-10-01"), absence("later", "2026-12-01")]
    assert not is_frequent(NEW, known, S)


def test_cancelled_absences_are_not_counted():
    known = [absence("a1", "2026-10-01", cancelled=True), absence("a2", "2026-11-01")]
    assert not is_frequent(NEW, known, S)


def test_a_re_registered_absence_id_counts_once():
    known = [absence("a1", "2026-10-01"), absence("a1", "2026-10-03", "2026-10-04")]
    assert not is_frequent(NEW, known, S)


def test_the_absence_itself_among_the_known_counts_once():
    known = [absence("a1", "2026-10-01"), NEW]
    assert not is_frequent(NEW, known, S)
    assert is_frequent(NEW, known + [absence("a2", "2026-11-01")], S)


# ---- short notice: starts_on <= registered + 1 day and ends_on >= registered (5.19) ------------

@pytest.mark.parametrize(
    "starts_on, expected",
    [("2026-11-26", True), ("2026-11-27", True), ("2026-11-28", False)],
    ids=["notice-0-days", "notice-1-day", "notice-2-days"],
)
def test_short_notice_by_days_of_notice(starts_on, expected):
    a = absence("a", starts_on, "2026-12-05")
    assert is_short_notice(a, REGISTERED_ON, S) is expected


def test_absence_already_over_when_registered_is_not_short_notice():
    assert not is_short_notice(absence("a", "2026-11-20", "2026-11-25"), REGISTERED_ON, S)


def test_absence_ending_on_the_registration_day_is_short_notice():
    assert is_short_notice(absence("a", "2026-11-20", "2026-11-26"), REGISTERED_ON, S)


def test_absence_started_in_the_past_and_still_running_is_short_notice():
    assert is_short_notice(absence("a", "2026-11-20", "2026-11-30"), REGISTERED_ON, S)


def test_registration_date_is_the_local_berlin_date():
    # 23:30 UTC on 26 Nov is 00:30 on 27 Nov in Berlin (winter time, +01:00)
    registered_on = local_date(parse("2026-11-26T23:30:00Z"), S.tz)
    assert registered_on == date(2026, 11, 27)
    starts_day_after_local_registration = absence("a", "2026-11-28", "2026-11-29")
    assert is_short_notice(starts_day_after_local_registration, registered_on, S)
    # judged by the UTC date (26 Nov) it would be two days' notice
    assert not is_short_notice(starts_day_after_local_registration, date(2026, 11, 26), S)


def test_registration_date_in_summer_time():
    # 22:30 UTC on 30 Jun is 00:30 on 1 Jul in Berlin (+02:00)
    assert local_date(parse("2026-06-30T22:30:00Z"), S.tz) == date(2026, 7, 1)
    assert local_date(parse("2026-06-30T21:59:59Z"), S.tz) == date(2026, 6, 30)


# ---- all reasons -------------------------------------------------------------------------

def test_no_reason():
    a = absence("a", "2026-12-10", "2026-12-12")
    assert absence_reasons(a, [], REGISTERED_ON, S) == []


def test_all_reasons_in_canonical_order():
    a = absence("a", "2026-11-27", "2026-12-31")
    known = [absence("a1", "2026-10-01"), absence("a2", "2026-11-01")]
    assert absence_reasons(a, known, REGISTERED_ON, S) == ["short_notice", "long", "frequent"]


def test_settings_change_the_thresholds():
    s = Settings(long_absence_days=10, frequent_absence_count=2, short_notice_days=3)
    a = absence("a", "2026-11-29", "2026-12-09")  # 11 days, notice 3 days
    assert absence_reasons(a, [absence("a1", "2026-11-01")], REGISTERED_ON, s) == [
        "short_notice", "long", "frequent",
    ]
