"""``vpa replay`` end to end on JSONL files (DESIGN 4.6, 4.7, fine print 5.1 and 5.4)."""
import json
from pathlib import Path

from services.app.cli import main
from tests import builders

# DESIGN 4.6, in the order listed there.
TASK_KEYS = [
    "task_id", "tab", "kind", "stage", "vpa_id", "vpa_name", "status", "priority", "reasons", "title",
    "action", "owner", "assignee", "due_at", "message_draft", "created_at", "updated_at", "version", "history",
    "evidence",
]


def env(event_id: str, type_: str, at: str, data: dict, vpa_id: str | None = "V-1", actor: dict | None = None) -> dict:
    return builders.record(type_, data, at=at, vpa_id=vpa_id, actor=actor, event_id=event_id)


def registered(event_id: str, at: str, vpa_id: str = "V-1", owner: str = "AB", name: str = "Anna Schmidt") -> dict:
    return env(event_id, "vpa.registered", at, {"name": name, "started_on": "2025-01-15", "at_owner": owner},
               vpa_id=vpa_id)


def absence(event_id: str, at: str, absence_id: str, starts_on: str, ends_on: str, vpa_id: str = "V-1") -> dict:
    return env(event_id, "vpa.absence_registered", at,
               {"absence_id": absence_id, "starts_on": starts_on, "ends_on": ends_on}, vpa_id=vpa_id)


def cancelled(event_id: str, at: str, absence_id: str, vpa_id: str = "V-1") -> dict:
    return env(event_id, "vpa.absence_cancelled", at, {"absence_id": absence_id}, vpa_id=vpa_id)


def resolve(event_id: str, at: str, task_id: str, vpa_id: str = "V-1") -> dict:
    return env(event_id, "cmd.case.resolve", at, {"task_id": task_id, "note": "erledigt"}, vpa_id=vpa_id,
               actor={"initials": "CD", "role": "at"})


def member(event_id: str, at: str, initials: str) -> dict:
    return env(event_id, "roster.member_upserted", at,
               {"initials": initials, "name": "Carla Dorn", "role": "at", "deputy": None, "active": True},
               vpa_id=None)


def write_jsonl(path: Path, lines: list) -> str:
    path.write_text("".join((l if isinstance(l, str) else json.dumps(l)) + "\n" for l in lines), encoding="utf-8")
    return str(path)


def replay(tmp_path: Path, files: list[str], *extra: str, out_name: str = "out.json") -> list[dict]:
    out = tmp_path / out_name
    assert main(["replay", *files, "--output", str(out), *extra]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


# ---- output shape ----------------------------------------------------------------------------

def test_31_day_absence_gives_one_long_case_in_the_task_shape(tmp_path):
    f = write_jsonl(tmp_path / "events.jsonl", [
        registered("r1", "2026-11-01T09:00:00+01:00"),
        absence("a1", "2026-11-02T10:30:00+01:00", "abs-1", "2026-12-01", "2026-12-31"),
    ])
    tasks = replay(tmp_path, [f])
    assert len(tasks) == 1
    task = tasks[0]
    assert list(task) == TASK_KEYS
    assert task["task_id"] == "case:absence:V-1:abs-1"
    assert (task["tab"], task["kind"], task["status"], task["priority"]) == ("cases", "absence", "open", "normal")
    assert task["reasons"] == ["long"]
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("AB", "AB", "Anna Schmidt")
    assert task["due_at"] is None and task["stage"] is None and task["message_draft"] is None
    assert task["created_at"] == task["updated_at"] == "2026-11-02T10:30:00+01:00"
    assert task["version"] == 1
    assert [set(h) for h in task["history"]] == [{"at", "change", "by"}]


def test_output_goes_to_stdout_without_output_option(tmp_path, capsys):
    f = write_jsonl(tmp_path / "events.jsonl", [
        absence("a1", "2026-11-02T10:30:00+01:00", "abs-1", "2026-12-01", "2026-12-31"),
    ])
    assert main(["replay", f]) == 0
    tasks = json.loads(capsys.readouterr().out)
    assert [t["task_id"] for t in tasks] == ["case:absence:V-1:abs-1"]


def test_output_is_sorted_by_task_id_and_holds_every_status(tmp_path):
    f = write_jsonl(tmp_path / "events.jsonl", [
        absence("a1", "2026-11-02T09:00:00+01:00", "z-abs", "2026-12-01", "2026-12-31", vpa_id="V-2"),
        absence("a2", "2026-11-02T09:01:00+01:00", "b-abs", "2026-12-01", "2026-12-31", vpa_id="V-10"),
        absence("a3", "2026-11-02T09:02:00+01:00", "a-abs", "2026-12-01", "2026-12-31", vpa_id="V-2"),
        absence("a4", "2026-11-02T09:03:00+01:00", "c-abs", "2026-12-01", "2026-12-31", vpa_id="V-1"),
        cancelled("c1", "2026-11-02T09:04:00+01:00", "c-abs", vpa_id="V-1"),
    ])
    tasks = replay(tmp_path, [f])
    ids = [t["task_id"] for t in tasks]
    assert ids == sorted(ids)
    # plain string order: "V-10:" sorts before "V-1:" because "0" < ":"
    assert ids == ["case:absence:V-10:b-abs", "case:absence:V-1:c-abs",
                   "case:absence:V-2:a-abs", "case:absence:V-2:z-abs"]
    assert tasks[1]["status"] == "cancelled"


def test_lines_are_sorted_by_occurred_at_before_replay(tmp_path):
    # the cancel is written first but happened after the registration
    f = write_jsonl(tmp_path / "events.jsonl", [
        cancelled("c1", "2026-11-03T09:00:00+01:00", "abs-1"),
        absence("a1", "2026-11-02T09:00:00+01:00", "abs-1", "2026-12-01", "2026-12-31"),
    ])
    [task] = replay(tmp_path, [f])
    assert task["status"] == "cancelled"


# ---- bad input ---------------------------------------------------------------------------------

def test_invalid_lines_are_reported_with_file_line_and_reason_and_the_run_continues(tmp_path, capsys):
    path = tmp_path / "events.jsonl"
    f = write_jsonl(path, [
        "this is not json",
        absence("bad", "2026-11-02T09:00:00", "abs-0", "2026-12-01", "2026-12-31"),  # naive datetime
        absence("a1", "2026-11-02T09:00:00+01:00", "abs-1", "2026-12-01", "2026-12-31"),
        env("u1", "vpa.teleported", "2026-11-02T09:30:00+01:00", {}),
    ])
    tasks = replay(tmp_path, [f])
    assert [t["task_id"] for t in tasks] == ["case:absence:V-1:abs-1"]
    err = capsys.readouterr().err
    assert f"{path}:1: undecodable" in err
    assert f"{path}:2: invalid" in err
    assert "occurred_at" in err
    assert "1 unknown types skipped" in err


def test_until_without_offset_is_refused(tmp_path, capsys):
    f = write_jsonl(tmp_path / "events.jsonl", [])
    assert main(["replay", f, "--until", "2026-12-01T00:00:00"]) == 2
    assert "offset" in capsys.readouterr().err


# ---- one stream or files per topic (5.1) -------------------------------------------------------

def _stream() -> list[dict]:
    """One stream in time order, with ties whose order matters."""
    T0 = "2026-11-02T09:00:00+01:00"
    T1 = "2026-11-03T09:00:00+01:00"
    T2 = "2026-11-04T09:00:00+01:00"
    T3 = "2026-11-05T09:00:00+01:00"
    return [
        member("m1", T0, "CD"),
        registered("r1", T0),
        # same instant: registered, then cancelled -> the case ends cancelled
        absence("a1", T1, "abs-1", "2026-12-01", "2026-12-31"),
        cancelled("c1", T1, "abs-1"),
        # same instant: cancelled (nothing to cancel yet), then registered -> the case stays open
        cancelled("c2", T1, "abs-2"),
        absence("a2", T1, "abs-2", "2026-11-04", "2026-11-05"),
        # same instant across topics: the event (events file first on the command line) before the command
        absence("a3", T2, "abs-3", "2026-12-01", "2026-12-31"),
        resolve("k1", T2, "case:absence:V-1:abs-3"),
        # registered again later: reopens the resolved case
        absence("a3b", T3, "abs-3", "2026-12-01", "2027-01-31"),
    ]


def test_splitting_one_stream_into_files_per_topic_gives_the_same_output(tmp_path):
    stream = _stream()
    whole = write_jsonl(tmp_path / "all.jsonl", stream)
    events = write_jsonl(tmp_path / "events.jsonl", [e for e in stream if e["type"].startswith("vpa.")])
    commands = write_jsonl(tmp_path / "commands.jsonl", [e for e in stream if e["type"].startswith("cmd.")])
    roster = write_jsonl(tmp_path / "roster.jsonl", [e for e in stream if e["type"].startswith("roster.")])

    one = replay(tmp_path, [whole], out_name="one.json")
    split = replay(tmp_path, [roster, events, commands], out_name="split.json")

    assert split == one
    by_id = {t["task_id"]: t for t in one}
    assert by_id["case:absence:V-1:abs-1"]["status"] == "cancelled"
    assert by_id["case:absence:V-1:abs-2"]["status"] == "open"
    assert by_id["case:absence:V-1:abs-3"]["status"] == "open"
    assert by_id["case:absence:V-1:abs-3"]["version"] == 3  # opened, resolved, reopened


def test_tie_order_follows_the_command_line_order_of_files(tmp_path):
    T1 = "2026-11-03T09:00:00+01:00"
    first = write_jsonl(tmp_path / "first.jsonl", [absence("a1", T1, "abs-1", "2026-12-01", "2026-12-31")])
    second = write_jsonl(tmp_path / "second.jsonl", [cancelled("c1", T1, "abs-1")])
    [task] = replay(tmp_path, [first, second], out_name="a.json")
    assert task["status"] == "cancelled"
    assert replay(tmp_path, [second, first], out_name="b.json")[0]["status"] == "open"


# ---- --until (5.4) -------------------------------------------------------------------------------

def test_until_earlier_than_the_last_event_changes_nothing(tmp_path):
    f = write_jsonl(tmp_path / "events.jsonl", _stream())
    plain = replay(tmp_path, [f], out_name="plain.json")
    early = replay(tmp_path, [f], "--until", "2026-11-01T00:00:00+01:00", out_name="early.json")
    assert early == plain


def test_until_later_than_the_last_event_keeps_the_tasks(tmp_path):
    f = write_jsonl(tmp_path / "events.jsonl", _stream())
    plain = replay(tmp_path, [f], out_name="plain.json")
    late = replay(tmp_path, [f], "--until", "2027-03-01T00:00:00Z", out_name="late.json")
    assert late == plain
