"""The Kafka worker's waits, on a hand-moved machine clock: how long a record waits for the other
inputs (``input_idle_seconds``), for a followed service (``upstream_wait_seconds``), and when timers
move by the wall clock (``wall_tick_seconds``; catch-up mode only once caught up). Each at its
boundary, in microseconds of test time instead of seconds of real time (issue 21, point 2)."""
from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import REGISTRY

from services.broker.client import Record
from services.config.clock_mode import ClockMode
from services.core.clock import ManualClock
from services.detector.service import Detector
from services.reminders.service import Reminders
from tests import builders
from tests.unit.runner_drivers import WorkerRunner

START = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)


def activity(n: int, at: str = "2026-03-02T09:00:00+01:00") -> Record:
    return builders.kafka_record(builders.activity("V-1", at=at, event_id=f"w-{n}"), offset=n)


def timeouts() -> float:
    return REGISTRY.get_sample_value("vpa_upstream_wait_timeouts_total",
                                     {"service": "reminders", "upstream": "detector"}) or 0.0


def choose(runner: WorkerRunner, machine: ManualClock) -> str:
    return runner.worker._choose(machine.monotonic())[0]


def test_a_record_waits_the_idle_time_from_its_arrival_for_the_other_inputs_and_not_a_moment_more():
    machine = ManualClock(START)
    runner = WorkerRunner(Detector(), machine=machine, input_idle_seconds=0.5)
    machine.forward(60)  # vpa.commands has been empty for a minute: that proves nothing about this burst
    runner.worker.offer("vpa.events", [activity(0)], 1)
    assert runner.worker._choose(machine.monotonic()) == ("wait", machine.monotonic() + 0.5)
    machine.forward(0.25)
    assert choose(runner, machine) == "wait"
    machine.forward(0.25)  # exactly the idle time after the record arrived
    assert choose(runner, machine) == "step"
    runner.loop.close()


def test_a_record_of_a_later_burst_waits_again_from_its_own_arrival():
    machine = ManualClock(START)
    runner = WorkerRunner(Detector(), machine=machine, input_idle_seconds=0.5)
    runner.worker.offer("vpa.events", [activity(0)], 1)
    assert choose(runner, machine) == "wait"  # the worker looks as soon as a record is handed over
    machine.forward(0.5)
    runner._run()
    assert runner.worker.engine.clock is not None, "the first record was not taken"
    machine.forward(30)
    runner.worker.offer("vpa.events", [activity(1, "2026-03-02T09:30:00+01:00")], 2)
    assert choose(runner, machine) == "wait"
    machine.forward(0.5)
    assert choose(runner, machine) == "step"
    runner.loop.close()


def test_a_follower_waits_for_its_upstream_up_to_the_upstream_wait_then_goes_on_and_counts_it():
    machine = ManualClock(START)
    runner = WorkerRunner(Reminders(), machine=machine, follows=("detector",), upstream_wait_seconds=5.0)
    runner.worker.offer("vpa.events", [activity(0)], 1)
    assert runner.worker._choose(machine.monotonic()) == ("wait", machine.monotonic() + 5.0)
    machine.forward(4.75)
    assert choose(runner, machine) == "wait"
    before = timeouts()
    machine.forward(0.25)
    assert choose(runner, machine) == "step"
    assert runner.worker.engine.watermarks.get("detector") is not None  # it went on without it
    assert timeouts() == before + 1
    runner.loop.close()


def test_in_wall_mode_timers_move_with_the_wall_clock_once_per_tick():
    machine = ManualClock(START)
    runner = WorkerRunner(Detector(), machine=machine, mode=ClockMode.wall, wall_tick_seconds=1.0)
    worker = runner.worker
    worker._maybe_advance(machine.monotonic(), idle=True)
    assert worker.engine.clock == START
    machine.forward(0.75)
    worker._maybe_advance(machine.monotonic(), idle=True)
    assert worker.engine.clock == START, "moved before a tick had passed"
    machine.forward(0.25)
    worker._maybe_advance(machine.monotonic(), idle=True)
    assert worker.engine.clock == machine.wall()
    runner.loop.close()


def test_in_catch_up_mode_the_wall_clock_takes_over_only_once_every_input_stayed_empty_the_idle_time():
    machine = ManualClock(START)
    runner = WorkerRunner(Detector(), machine=machine, mode=ClockMode.catchup, input_idle_seconds=2.0,
                          wall_tick_seconds=1.0)
    worker = runner.worker
    runner.worker.offer("vpa.events", [activity(0)], 1)
    assert choose(runner, machine) == "wait"
    machine.forward(2.0)
    runner._run()  # the record is taken; vpa.events is empty from now on
    stream_time = worker.engine.clock
    assert stream_time == datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)  # 09:00+01:00, the event's time
    machine.forward(1.75)
    worker._maybe_advance(machine.monotonic(), idle=True)
    assert worker.engine.clock == stream_time, "the wall clock took over before the inputs were idle"
    machine.forward(0.25)
    worker._maybe_advance(machine.monotonic(), idle=True)
    assert worker.engine.clock == machine.wall()
    runner.loop.close()
