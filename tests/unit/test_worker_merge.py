"""The Kafka worker's time-ordered merge when a burst of records arrives on several inputs at
different moments (issue 12, found by the crash test): an input that has been empty for a while
is not taken as caught up until the broker says so after the first record of the burst arrived."""
from __future__ import annotations

import json

from services.detector.service import Detector
from tests.unit.runner_drivers import WorkerRunner


def env(n: str, type_: str, at: str, vpa, data: dict, actor=None) -> str:  # noqa: ANN001
    return json.dumps({"event_id": f"m-{n}", "type": type_, "occurred_at": at, "vpa_id": vpa, "actor": actor,
                       "schema_version": 1, "data": data})


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


def _event(offset: int, raw: str, topic: str = "vpa.events", key: object = "vpa_id"):  # noqa: ANN202
    import json
    import time
    from types import SimpleNamespace

    if key == "vpa_id":
        key = json.loads(raw)["vpa_id"].encode()
    message = SimpleNamespace(topic=topic, partition=0, offset=offset, key=key, timestamp=time.time())
    return SimpleNamespace(message=message, value=raw.encode())


def _offer(runner: WorkerRunner, offset: int, raw: str, topic: str = "vpa.events", key: object = "vpa_id") -> None:
    runner.worker.offer(runner._stream, _event(offset, raw, topic, key))
    runner._run()


def _registered(n: int) -> str:
    return env(f"g{n}", "vpa.registered", f"2026-03-02T0{n}:00:00+01:00", f"V-{n}",
               {"name": "Hannah Kaiser", "started_on": "2021-12-26", "at_owner": "FK"})


def test_records_the_client_skipped_are_read_again_from_where_the_state_stands():
    """Found by the scale-out test: after a rebalance faust handed a worker offset 180 first while
    179 had never been applied, and committed over it (it never delivers such records again). The
    worker knows from its stored state which offset must come next; it reads the skipped ones with
    a client of its own and takes them first, then what arrived meanwhile."""
    from services.common.kafka.worker import PartitionWorker

    runner = WorkerRunner(Detector())
    for n in (0, 1):
        _offer(runner, n, _registered(n))
    runner.loop.run_until_complete(runner.worker._flush())
    # A new worker for the partition (a rebalance), over the same table; offset 2 is skipped.
    runner.worker = runner.d.worker = PartitionWorker(runner.d, 0)
    runner.d.broker[("vpa.events", 0)] = {2: _event(2, _registered(2))}
    _offer(runner, 3, _registered(3))
    _offer(runner, 4, _registered(4))
    assert runner.d.reads == [("vpa.events", 0, 2, 3)]
    assert runner.worker.engine.stats["processed"] == 3
    assert {k for k in runner.worker.slots if k.startswith("V-")} == {f"V-{n}" for n in range(5)}
    runner.loop.close()


def test_a_gap_in_the_middle_of_a_partition_is_read_again_too_and_one_gone_is_skipped():
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0))
    runner.d.broker[("vpa.events", 0)] = {1: _event(1, _registered(1))}
    _offer(runner, 2, _registered(2))
    assert runner.d.reads == [("vpa.events", 0, 1, 2)]
    assert runner.worker.engine.stats["processed"] == 3
    _offer(runner, 5, _registered(5))  # 3 and 4 are gone (retention): logged, and it goes on
    assert runner.d.reads[-1] == ("vpa.events", 0, 3, 5)
    assert runner.worker.engine.stats["processed"] == 4
    _offer(runner, 2, _registered(2))  # delivered again: already taken
    assert runner.worker.engine.stats["processed"] == 4
    runner.loop.close()


def test_an_envelope_keyed_otherwise_than_by_its_vpa_id_goes_to_the_dlq():
    """DESIGN 4.1: the key is the vpa_id. A record keyed otherwise sits in a partition that does not
    hold the VPA's state: taking it would split the state. Without a key, or with another, it is invalid."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0), key=None)
    _offer(runner, 1, _registered(1), key=b"V-0")
    _offer(runner, 2, _registered(2))
    reasons = [r.reason for r in runner.worker.engine.out.dlq] + [
        h for t, _, _, _, headers in runner.d.app.producer.records if t == "vpa.dlq"
        for n, h in (headers or []) if n == "reason"]
    assert any("no key, but the message is about 'V-0'" in str(r) for r in reasons), reasons
    assert any("key 'V-0', but the message is about 'V-1'" in str(r) for r in reasons), reasons
    assert runner.worker.engine.stats["processed"] == 1
    runner.loop.close()


def test_inputs_are_acked_only_after_their_state_is_on_the_broker():
    """faust commits the offsets of acked inputs without draining its producer buffer, where the
    table's changelog records wait. Found by the crash test: acked first, a SIGKILL left offsets
    committed past the state. Outputs are flushed, then the state written and flushed, then acked."""
    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0))
    journal = runner.d.journal
    assert "ack" in journal
    first_ack = journal.index("ack")
    assert "state" in journal[:first_ack]
    assert journal[journal.index("state"):first_ack].count("flush") >= 1
    runner.loop.close()


def test_records_the_client_dropped_at_the_end_of_a_partition_are_read_after_a_while():
    """Found by the soak: the client dropped the rest of a fetched batch, and no later record came
    to show the gap; the worker waited for them for good. The broker's end says they exist: after
    a while without them the worker reads them itself. When the client hands them over after all,
    they are taken once and acked, so that commits go past them."""
    import time

    from services.common.kafka.worker import TAIL_STALL_SECONDS

    runner = WorkerRunner(Detector())
    _offer(runner, 0, _registered(0))
    runner.d.broker[("vpa.events", 0)] = {1: _event(1, _registered(1)), 2: _event(2, _registered(2))}
    start = time.monotonic()
    assert runner.worker._choose(start)[0] == "idle"
    assert runner.worker._watch_tails(start) == start + TAIL_STALL_SECONDS
    assert runner.d.reads == []
    runner.worker._watch_tails(start + TAIL_STALL_SECONDS)
    runner._run()
    assert runner.d.reads == [("vpa.events", 0, 1, 3)]
    assert runner.worker.engine.stats["processed"] == 3
    acks = runner.d.journal.count("ack")
    _offer(runner, 1, _registered(1))
    _offer(runner, 2, _registered(2))
    assert runner.worker.engine.stats["processed"] == 3
    assert runner.d.journal.count("ack") == acks + 2
    runner.loop.close()


def test_a_record_delivered_again_before_it_is_applied_is_acked_once_it_is():
    runner = WorkerRunner(Detector())
    runner.d.cfg.upstream_wait_seconds = 0.0
    worker = runner.worker
    worker.offer(runner._stream, _event(0, _registered(0)))
    worker.offer(runner._stream, _event(0, _registered(0)))  # again, while the first is buffered
    assert runner.d.journal.count("ack") == 0
    runner._run()
    assert worker.engine.stats["processed"] == 1
    assert runner.d.journal.count("ack") == 2
    runner.loop.close()
