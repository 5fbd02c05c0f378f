"""The calendar behind the open-work gauges: one working day back, and the longest shift."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from prometheus_client import REGISTRY

from services.config.settings import Settings
from services.store.gauges import OpenWork, longest_shift, publish, working_day_cutoff

BERLIN = ZoneInfo("Europe/Berlin")
S = Settings()


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=BERLIN)


@pytest.mark.parametrize("now, cutoff", [
    ("2026-11-25 10:00", "2026-11-24 10:00"),  # Wednesday -> Tuesday, same wall time
    ("2026-11-23 10:00", "2026-11-20 10:00"),  # Monday -> Friday: the weekend does not count
    ("2026-11-23 00:00", "2026-11-20 00:00"),  # Monday midnight: all of Friday lies between
    ("2026-11-21 15:00", "2026-11-20 00:00"),  # Saturday: Friday is the last working day, whole
    ("2026-11-22 23:59", "2026-11-20 00:00"),  # Sunday evening: the same
    ("2026-11-24 00:00", "2026-11-23 00:00"),  # Tuesday midnight: Monday whole
])
def test_one_working_day_back(now, cutoff):
    assert working_day_cutoff(at(now), S) == at(cutoff)


def test_holidays_do_not_count():
    s = Settings(holidays=(date(2026, 12, 25), date(2026, 12, 28)))  # Friday, Monday
    assert working_day_cutoff(at("2026-12-29 09:00"), s) == at("2026-12-24 09:00")


def test_a_working_day_is_one_of_wall_time_across_a_dst_change():
    # 2026-03-29 is a Sunday (clocks go forward); Monday 09:00 CEST -> Friday 09:00 CET
    cut = working_day_cutoff(at("2026-03-30 09:00"), S)
    assert cut == at("2026-03-27 09:00") and cut.utcoffset() == timedelta(hours=1)
    # every day a working day: across the change the day before is still the same wall time
    every_day = Settings(working_days=(0, 1, 2, 3, 4, 5, 6))
    assert working_day_cutoff(at("2026-03-29 12:00"), every_day) == at("2026-03-28 12:00")


def test_the_cutoff_is_the_boundary_of_staleness():
    """A task actionable at the cutoff has waited exactly one working day; a second earlier, more."""
    now = at("2026-11-23 10:00")
    cutoff = working_day_cutoff(now, S)
    assert cutoff == at("2026-11-20 10:00")
    assert working_day_cutoff(now + timedelta(seconds=1), S) == cutoff + timedelta(seconds=1)


def test_input_in_any_offset_gives_the_same_instant():
    now = at("2026-11-25 10:00")
    assert working_day_cutoff(now.astimezone(ZoneInfo("UTC")), S) == working_day_cutoff(now, S)


@pytest.mark.parametrize("shifts, longest", [
    (((time(8), time(14)), (time(14), time(20))), timedelta(hours=6)),
    (((time(6), time(22)), (time(22), time(6))), timedelta(hours=16)),
    (((time(22), time(6)),), timedelta(hours=8)),  # over midnight
    (((time(8, 30), time(12)),), timedelta(hours=3, minutes=30)),
    (((time(8), time(8)),), timedelta(hours=24)),  # end not after start: round the clock
])
def test_longest_shift(shifts, longest):
    assert longest_shift(Settings(shifts=shifts)) == longest


def test_publish_sets_every_series_and_zeros_for_finished_work():
    publish(OpenWork(tasks={("cases", "open"): 3}, oldest_open_age_seconds={"cases": 90.0},
                     older_than_working_day={"cases": 1}, handovers={"reminders": 2},
                     reminders_due=4, reminders_overdue=1))
    value = REGISTRY.get_sample_value
    assert value("vpa_open_tasks", {"tab": "cases", "status": "open"}) == 3
    assert value("vpa_open_tasks", {"tab": "journey", "status": "waiting"}) == 0
    assert value("vpa_oldest_open_task_age_seconds", {"tab": "cases"}) == 90
    assert value("vpa_open_tasks_older_than_working_day", {"tab": "cases"}) == 1
    assert value("vpa_handovers_in_force", {"tab": "reminders"}) == 2
    assert value("vpa_reminders_due", {"state": "due"}) == 4
    assert value("vpa_reminders_due", {"state": "overdue"}) == 1
    publish(OpenWork())
    assert value("vpa_open_tasks", {"tab": "cases", "status": "open"}) == 0
    assert value("vpa_oldest_open_task_age_seconds", {"tab": "cases"}) == 0
