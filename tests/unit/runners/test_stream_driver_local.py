"""The Kafka runner's whole driver (``StreamDriver``) on the in-memory broker, where what needs a
real broker elsewhere takes milliseconds: the wall clock moved by hand (wall and catch-up modes,
no tick written to any topic), a partition moving to a second member of the group with its state,
and a fetch that fails (issue 21, point 2)."""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from schemas.topics import Topic
from services.broker.local import LocalBroker
from services.core.clock import ManualClock
from services.core.processor import set_timer
from tests.unit.runner_drivers import StreamRunner
from tests.unit.runners.test_embedded_runner import Recorder, entries, line

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


def timers(rec: Recorder) -> list[tuple]:
    return [e for e in entries(rec) if e[0] == "timer"]


def test_in_wall_mode_a_timer_fires_when_the_machines_clock_passes_it_and_no_tick_is_written():
    machine = ManualClock(START)
    rec = Recorder()
    rec.plan["e1"] = lambda s: set_timer(s, "x", at(30), "n")
    runner = StreamRunner(rec, machine=machine, clock_mode="wall", wall_tick_seconds=0.01)
    runner.submit_raw(line("e1", at(0)), "test")
    machine.forward(29 * 60)
    runner.settle()
    assert timers(rec) == [], "fired before its time"
    machine.forward(60)
    runner.until(lambda: timers(rec), "the timer to fire")
    assert timers(rec) == [("timer", "x", at(30))]
    assert len(runner.broker.records(Topic.events)) == 1  # the event; the wall clock wrote nothing


def test_in_catch_up_mode_a_backlog_runs_in_stream_time_then_the_machines_clock_takes_over():
    machine = ManualClock(at(600))  # the backlog is ten hours old
    broker = LocalBroker(machine=machine)
    for event_id, minute in (("e1", 0), ("e2", 60)):
        broker.append(Topic.events, b"V-1", line(event_id, at(minute)).encode())
    rec = Recorder()
    rec.plan["e1"] = lambda s: set_timer(s, "x", at(30), "n")
    rec.plan["e2"] = lambda s: set_timer(s, "y", at(900), "n")  # due five hours from the machine's now
    runner = StreamRunner(rec, lambda cfg: broker, machine=machine, clock_mode="catchup", wall_tick_seconds=0.01)
    assert [e[:2] for e in entries(rec)] == [("event", "e1"), ("timer", "x"), ("event", "e2")]
    assert timers(rec) == [("timer", "x", at(30))]  # in stream time, between the two events
    runner.until(lambda: runner.clock.now() == machine.wall(), "the wall clock to take over")
    machine.forward(5 * 3600)
    runner.until(lambda: len(timers(rec)) == 2, "the second timer to fire")
    assert timers(rec)[1] == ("timer", "y", at(900))


def test_a_partition_that_moves_to_a_new_member_of_the_group_takes_its_state_along():
    rec = Recorder()
    counted = lambda s: s.__setitem__("n", s.get("n", 0) + 1)  # noqa: E731 - a plan step
    for i in range(6):
        rec.plan[f"e{i}"] = counted
    first = StreamRunner(rec)
    for i in range(3):
        first.submit_raw(line(f"e{i}", at(i)), "test")
    assert first.state_of("rec", "V-1") == {"n": 3}
    first.close()  # leaves the group: the partition's next owner reads its changelog
    second = StreamRunner(rec, lambda cfg: first.broker)
    for i in range(3, 6):
        second.submit_raw(line(f"e{i}", at(i)), "test")
    assert second.state_of("rec", "V-1") == {"n": 6}
    assert [e[1] for e in entries(rec)] == [f"e{i}" for i in range(6)]  # none handled twice, none skipped


def test_a_fetch_that_fails_is_tried_again_and_the_driver_goes_on():
    rec = Recorder()
    runner = StreamRunner(rec)
    consumer = runner.driver.consumer
    fetch, failures = consumer.fetch, []

    async def failing_once(timeout: float):  # noqa: ANN202
        if not failures:
            failures.append(1)
            raise ConnectionError("the group coordinator went away")
        return await fetch(timeout)
    consumer.fetch = failing_once
    runner.submit_raw(line("e1", at(0)), "test")
    assert failures == [1] and [e[1] for e in entries(rec)] == ["e1"]
