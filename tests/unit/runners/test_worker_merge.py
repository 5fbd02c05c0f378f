"""The Kafka worker's time-ordered merge when a burst of records arrives on several inputs at
different moments (issue 12, found by the crash test): an input that has been empty for a while
is not taken as caught up until the broker says so after the first record of the burst arrived."""
from __future__ import annotations

import asyncio
import json
import time

from services.broker.client import Record
from services.detector.service import Detector
from tests import builders
from tests.unit.runner_drivers import WorkerRunner


def env(n: str, type_: str, at: str, vpa, data: dict, actor=None) -> str:  # noqa: ANN001
    return builders.line(type_, data, at=at, vpa_id=vpa, actor=actor, event_id=f"m-{n}")


def test_a_record_of_a_new_burst_waits_for_the_earlier_records_still_on_their_way():
    runner = WorkerRunner(Detector())
    runner.submit_raw(env("m", "roster.member_upserted", "2026-03-02T05:00:00+01:00", None,
                          {"initials": "FK", "name": "Frida Kahl", "role": "at", "deputy": None, "active": True}), "m")
    runner.submit_raw(env("r", "vpa.registered", "2026-03-02T06:00:00+01:00", "V-1",
                          {"name": "Hannah Kaiser", "started_on": "2021-12-26", "at_owner": "FK"}), "r")
    runner.submit_raw(env("i", "vpa.activity_status_changed", "2026-03-02T17:13:04+01:00", "V-1",
                          {"status": "inactive"}), "i")  # follow-up: Tuesday 3 March, 09:00
    # The next burst: the platform wrote the activity of 07:04 and 07:12, then a command of 11:06
    # came in; the command has been handed over, the two events are still on their way.
    runner.d.in_flight[("vpa.events", 0)] = 2
    runner.submit_raw(env("c", "cmd.case.resolve", "2026-03-03T11:06:23+01:00", "V-2",
                          {"task_id": "case:schedule_change:V-2:x", "note": "erledigt"},
                          actor={"initials": "FK", "role": "at"}), "c")
    assert runner.worker.engine.clock.isoformat() < "2026-03-03", "the command overtook the events"
    runner.d.in_flight.clear()
    runner.submit_raw(env("s", "vpa.activity_seen", "2026-03-03T07:04:51+01:00", "V-1", {"channel": "web"}), "s")
    runner.submit_raw(env("a", "vpa.activity_status_changed", "2026-03-03T07:12:31+01:00", "V-1",
                          {"status": "active"}), "a")
    case = [t for t in runner.sent("dashlet.tasks") if t["kind"] == "inactive"][-1]
    assert (case["status"], case["reasons"]) == ("done", ["active_again"])
    assert runner.worker.engine.clock.isoformat().startswith("2026-03-03T11:06:23")
    runner.loop.close()


def test_an_event_waits_for_an_earlier_roster_record_still_on_its_way():
    """The roster comes through a client of its own: its partitions are asked too."""
    runner = WorkerRunner(Detector())
    runner.submit_raw(env("m", "roster.member_upserted", "2026-03-02T05:00:00+01:00", None,
                          {"initials": "FK", "name": "Frida Kahl", "role": "at", "deputy": None, "active": True}), "m")
    runner.d.in_flight[("at.roster", 0)] = 1
    runner.submit_raw(env("r", "vpa.registered", "2026-03-02T09:00:00+01:00", "V-1",
                          {"name": "Hannah Kaiser", "started_on": "2021-12-26", "at_owner": "FK"}), "r")
    assert runner.worker.engine.clock.isoformat().startswith("2026-03-02T05:00"), "the event overtook the roster"
    runner.d.in_flight.clear()
    runner.submit_raw(env("v", "roster.absence_registered", "2026-03-02T08:59:00+01:00", None,
                          {"absence_id": "U1", "initials": "FK", "kind": "vacation", "starts_on": "2026-03-02",
                           "ends_on": "2026-03-06"}), "v")
    assert runner.worker.engine.clock.isoformat().startswith("2026-03-02T09:00")
    runner.loop.close()


def _record(offset: int, raw: str, topic: str = "vpa.events", key: object = "vpa_id") -> Record:
    if key == "vpa_id":
        key = json.loads(raw)["vpa_id"].encode()
    return Record(topic, 0, offset, key, raw.encode(), int(time.time() * 1000))


def _offer(runner: WorkerRunner, offset: int, raw: str, topic: str = "vpa.events", key: object = "vpa_id") -> None:
    runner.worker.offer(topic, [_record(offset, raw, topic, key)], offset + 1)
    runner._run()


def _registered(n: int) -> str:
    return env(f"g{n}", "vpa.registered", f"2026-03-02T0{n}:00:00+01:00", f"V-{n}",
               {"name": "Hannah Kaiser", "started_on": "2021-12-26", "at_owner": "FK"})


def test_a_worker_taking_a_partition_over_continues_right_after_what_its_state_applied():
    """The stored state carries the offset of the last input it applied: a new worker (a
    rebalance, a restart) starts there, and records the client hands over again before it are
    not applied twice."""
    runner = WorkerRunner(Detector())
    for n in (0, 1):
        _offer(runner, n, _registered(n))
    worker = runner.d.new_worker()
    runner.worker = worker
    assert worker.start_offsets() == {"vpa.events": 2}
    assert worker.inputs["vpa.events"].fetched_to == 2
    _offer(runner, 1, _registered(1))  # delivered again from an older commit: not taken
    _offer(runner, 2, _registered(2))
    assert worker.engine.stats["processed"] == 1
    assert {k for k in worker.slots if k.startswith("V-")} == {"V-0", "V-1", "V-2"}
    runner.loop.close()


def test_offsets_without_a_record_do_not_hold_a_partition_back():
    """Transaction markers (read_committed) and compaction leave offsets without a record: the
    client's position, not the last record, says how far an input is read."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0))
    runner.worker.offer("vpa.events", [], 3)  # a commit marker at 1, an aborted record at 2
    assert runner.worker._caught_up(runner.worker.inputs["vpa.events"]) or runner.d.stable_end("vpa.events", 0) == 3
    runner.worker.offer("vpa.events", [_record(3, _registered(3))], 4)
    runner._run()
    assert runner.worker.engine.stats["processed"] == 2
    assert runner.d.commits[-1] == {"vpa.events": 4}
    runner.loop.close()


def test_an_envelope_keyed_otherwise_than_by_its_vpa_id_goes_to_the_dlq():
    """DESIGN 4.1: the key is the vpa_id. A record keyed otherwise sits in a partition that does not
    hold the VPA's state: taking it would split the state. Without a key, or with another, it is invalid."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0), key=None)
    _offer(runner, 1, _registered(1), key=b"V-0")
    _offer(runner, 2, _registered(2))
    reasons = [h for t, _, _, _, headers in runner.d.producer.records if t == "vpa.dlq"
               for n, h in (headers or []) if n == "reason"]
    assert any(b"no key, but the message is about 'V-0'" in r for r in reasons), reasons
    assert any(b"key 'V-0', but the message is about 'V-1'" in r for r in reasons), reasons
    assert runner.worker.engine.stats["processed"] == 1
    runner.loop.close()


def test_offsets_are_committed_only_after_their_state_is_on_the_broker():
    """Outputs are sent and acknowledged, then the state goes to the changelog and is acknowledged,
    then into the local copy, and only then are the inputs' offsets committed (found by the crash
    test on the earlier runner: committed first, a SIGKILL left offsets past the state)."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, env("a", "vpa.absence_registered", "2026-03-02T09:00:00+01:00", "V-0",
                          {"absence_id": "A-1", "starts_on": "2026-04-01", "ends_on": "2026-05-01"}))
    journal = runner.d.journal
    assert runner.sent("dashlet.tasks"), "a long absence opens a case"
    first_commit = journal.index("commit")
    assert journal.index("output") < journal.index("changelog") < journal.index("state") < first_commit
    runner.loop.close()


def test_the_meta_slot_is_the_last_changelog_record_of_a_batch():
    """A batch whose state write broke off halfway leaves VPA slots ahead of the input positions,
    never positions ahead of a slot: the inputs come again and are recognised as seen."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0))
    keys = [k.decode() for t, k, _, _, _ in runner.d.producer.records if t == runner.d.changelog]
    assert keys[-1] == "__meta__" and "V-0" in keys


def test_a_revoked_worker_stops_promptly_even_when_woken_at_the_same_moment():
    """CPython 3.11's wait_for can swallow a cancellation when the awaited event is set at the same
    moment; a worker must end when asked to stop, with what it applied flushed."""
    runner = WorkerRunner(Detector())
    worker = runner.worker
    _offer(runner, 0, _registered(0))

    async def scenario() -> float:
        task = asyncio.ensure_future(worker.run())
        await asyncio.sleep(0.01)
        worker.stopping = True
        worker.wake.set()
        started = time.monotonic()
        await asyncio.wait_for(task, 2)
        return time.monotonic() - started

    assert runner.loop.run_until_complete(scenario()) < 1.0
    runner.loop.close()
