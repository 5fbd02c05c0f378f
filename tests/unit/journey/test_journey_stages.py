"""Stage arithmetic of the new-VPA journey (DESIGN 2.3, fine print 5.17 and 5.23)."""
from datetime import date, timedelta

import pytest

from services.journey.stages import (
    NEW_0_3, NEW_3_6, NEW_6_9, NEW_9_12, NEW_GT_12, STAGE_NAMES, day_in_stage, next_boundary, stage_for_months,
    stage_on, stage_start, within_first_days,
)


@pytest.mark.parametrize("months, stage", [
    (0, NEW_0_3), (2, NEW_0_3), (3, NEW_3_6), (5, NEW_3_6), (6, NEW_6_9), (8, NEW_6_9), (9, NEW_9_12),
    (11, NEW_9_12), (12, NEW_GT_12), (40, NEW_GT_12), (-1, None),
])
def test_stage_by_whole_months(months, stage):
    assert stage_for_months(months) == stage


def test_started_31_january_reaches_3_months_on_30_april():
    start = date(2026, 1, 31)
    assert stage_on(start, date(2026, 4, 29)) == NEW_0_3
    assert stage_on(start, date(2026, 4, 30)) == NEW_3_6
    assert [stage_start(start, s) for s in STAGE_NAMES] == [
        date(2026, 1, 31), date(2026, 4, 30), date(2026, 7, 31), date(2026, 10, 31), date(2027, 1, 31)]


def test_30_november_plus_3_months_is_28_february_in_a_common_year():
    start = date(2024, 11, 30)
    assert stage_start(start, NEW_3_6) == date(2025, 2, 28)
    assert stage_on(start, date(2025, 2, 27)) == NEW_0_3
    assert stage_on(start, date(2025, 2, 28)) == NEW_3_6


def test_30_november_plus_3_months_is_29_february_in_a_leap_year():
    start = date(2023, 11, 30)
    assert stage_start(start, NEW_3_6) == date(2024, 2, 29)
    assert stage_on(start, date(2024, 2, 28)) == NEW_0_3
    assert stage_on(start, date(2024, 2, 29)) == NEW_3_6


def test_started_on_leap_day_reaches_12_months_on_28_february():
    start = date(2024, 2, 29)
    assert stage_start(start, NEW_GT_12) == date(2025, 2, 28)
    assert stage_on(start, date(2025, 2, 27)) == NEW_9_12
    assert stage_on(start, date(2025, 2, 28)) == NEW_GT_12
    assert stage_start(start, NEW_3_6) == date(2024, 5, 29)


def test_clamped_boundary_into_a_leap_february():
    start = date(2023, 5, 31)
    assert stage_start(start, NEW_9_12) == date(2024, 2, 29)
    assert stage_on(start, date(2024, 2, 28)) == NEW_6_9
    assert stage_on(start, date(2024, 2, 29)) == NEW_9_12


def test_before_started_on_there_is_no_stage():
    start = date(2026, 3, 1)
    assert stage_on(start, date(2026, 2, 28)) is None
    assert day_in_stage(start, date(2026, 2, 28)) is None
    assert not within_first_days(start, date(2026, 2, 28))
    assert stage_on(start, start) == NEW_0_3


def test_first_30_days_are_days_0_to_29_counted_from_the_clamped_start():
    start = date(2026, 1, 31)  # NEW_3_6 begins 30 April
    assert day_in_stage(start, date(2026, 4, 30)) == 0
    assert day_in_stage(start, date(2026, 5, 29)) == 29
    assert within_first_days(start, date(2026, 5, 29))
    assert day_in_stage(start, date(2026, 5, 30)) == 30
    assert not within_first_days(start, date(2026, 5, 30))
    assert not within_first_days(start, date(2026, 5, 31))
    assert within_first_days(start, date(2026, 5, 30), days=31)


def test_next_boundary_walks_the_stages_and_ends_after_gt_12():
    start = date(2026, 1, 31)
    assert next_boundary(start, date(2026, 1, 1)) == (NEW_0_3, date(2026, 1, 31))
    assert next_boundary(start, date(2026, 1, 31)) == (NEW_3_6, date(2026, 4, 30))
    assert next_boundary(start, date(2026, 4, 29)) == (NEW_3_6, date(2026, 4, 30))
    assert next_boundary(start, date(2026, 4, 30)) == (NEW_6_9, date(2026, 7, 31))
    assert next_boundary(start, date(2026, 12, 1)) == (NEW_GT_12, date(2027, 1, 31))
    assert next_boundary(start, date(2027, 1, 31)) is None


def test_stage_on_agrees_with_stage_start_for_every_start_and_date():
    for s in range(0, 4 * 366, 3):
        start = date(2023, 1, 1) + timedelta(days=s)
        for k in range(0, 420, 7):
            on = start + timedelta(days=k)
            stage = stage_on(start, on)
            assert stage_start(start, stage) <= on
            nxt = next_boundary(start, on)
            assert nxt is None or (nxt[1] > on and stage_on(start, nxt[1]) == nxt[0])
