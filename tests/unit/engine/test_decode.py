"""Validation at the edge (DESIGN 4.2 to 4.5, fine print 5.5) through services.engine.decode.decode."""
import json
from datetime import date, timedelta

import pytest

from services.engine.decode import Decoded, Invalid, Unknown, decode
from tests import builders

AT = {"initials": "AB", "role": "at"}
SYS = {"initials": "SYS", "role": "system"}


def raw(type_: str, data: dict | None = None, **overrides) -> str:
    env = builders.record(type_, data, at="2026-11-26T09:12:00+01:00", vpa_id="V-1042",
                          actor=AT if type_.startswith("cmd.") else None, event_id="e-1")
    env.update(overrides)
    return json.dumps(env)


def decoded(text):
    outcome = decode(text)
    assert isinstance(outcome, Decoded), outcome
    return outcome.envelope


def invalid(text) -> str:
    outcome = decode(text)
    assert isinstance(outcome, Invalid), outcome
    assert outcome.reason.startswith(("invalid:", "undecodable:")), outcome.reason
    return outcome.reason


ABSENCE = {"absence_id": "abs-1", "starts_on": "2026-12-01", "ends_on": "2026-12-05"}
REGISTERED = {"name": "Anna", "started_on": "2026-01-15", "at_owner": "AB"}


# ---- not an envelope at all ----------------------------------------------------------------

@pytest.mark.parametrize("data", [b"\xff\xfe\xfd", b"{\"type\": \"vpa.registered\"\xff}", b"not json", b""])
def test_undecodable_bytes(data):
    assert invalid(data).startswith("undecodable:")


@pytest.mark.parametrize("text", ["[]", "[1, 2]", "\"vpa.registered\"", "42", "null", "true"])
def test_non_object_json(text):
    assert "object" in invalid(text)


def test_missing_type():
    env = json.loads(raw("vpa.registered", REGISTERED))
    del env["type"]
    assert "type" in invalid(json.dumps(env))


@pytest.mark.parametrize("type_", [None, 7, "", ["vpa.registered"]])
def test_type_not_a_non_empty_string(type_):
    assert "type" in invalid(raw("vpa.registered", REGISTERED, type=type_))


def test_unknown_type_is_unknown_not_invalid():
    assert decode(raw("vpa.teleported", {"where": "moon"})) == Unknown("vpa.teleported")


def test_unknown_type_need_not_be_a_valid_envelope():
    assert decode(json.dumps({"type": "something.else"})) == Unknown("something.else")


def test_bytes_and_str_decode_alike():
    text = raw("vpa.absence_registered", ABSENCE)
    assert decoded(text) == decoded(text.encode("utf-8"))


# ---- envelope fields -----------------------------------------------------------------------

def test_naive_occurred_at_is_rejected():
    assert "occurred_at" in invalid(raw("vpa.absence_registered", ABSENCE, occurred_at="2026-11-26T09:12:00"))


def test_z_counts_as_an_offset():
    env = decoded(raw("vpa.absence_registered", ABSENCE, occurred_at="2026-11-26T08:12:00Z"))
    assert env.occurred_at.utcoffset() == timedelta(0)
    assert env.occurred_at == decoded(raw("vpa.absence_registered", ABSENCE)).occurred_at


@pytest.mark.parametrize("value", ["2026-11-26", "26.11.2026 09:12", "", 1764144720])
def test_occurred_at_must_be_an_rfc3339_datetime(value):
    assert "occurred_at" in invalid(raw("vpa.absence_registered", ABSENCE, occurred_at=value))


@pytest.mark.parametrize("field", ["event_id", "occurred_at", "data"])
def test_required_envelope_fields(field):
    env = json.loads(raw("vpa.absence_registered", ABSENCE))
    del env[field]
    assert field in invalid(json.dumps(env))


def test_empty_event_id_is_invalid():
    assert "event_id" in invalid(raw("vpa.absence_registered", ABSENCE, event_id=""))


def test_unsupported_schema_version_is_invalid():
    assert "schema_version" in invalid(raw("vpa.absence_registered", ABSENCE, schema_version=2))


@pytest.mark.parametrize("type_, data", [
    ("vpa.absence_registered", ABSENCE),
    ("vpa.offboarded", {}),
    ("cmd.case.resolve", {"task_id": "case:absence:V-1042:abs-1"}),
])
@pytest.mark.parametrize("vpa_id", [None, "missing"])
def test_vpa_id_required_for_vpa_and_cmd(type_, data, vpa_id):
    env = json.loads(raw(type_, data))
    if vpa_id == "missing":
        del env["vpa_id"]
    else:
        env["vpa_id"] = None
    assert "vpa_id" in invalid(json.dumps(env))


def test_clock_tick_without_vpa_id_is_valid():
    env = decoded(json.dumps({"event_id": "tick-1", "type": "clock.tick",
                              "occurred_at": "2026-11-27T00:00:00+01:00", "data": {}}))
    assert env.vpa_id is None
    assert env.type == "clock.tick"


def test_roster_events_need_no_vpa_id():
    data = {"initials": "AB", "name": "Anna Berg", "role": "at", "deputy": None, "active": True}
    assert decoded(raw("roster.member_upserted", data, vpa_id=None)).vpa_id is None


def test_actor_required_for_commands():
    assert "actor" in invalid(raw("cmd.case.resolve", {"task_id": "t"}, actor=None))


def test_system_actor_sends_commands():
    env = decoded(raw("cmd.case.resolve", {"task_id": "t"}, actor=SYS))
    assert env.actor.initials == "SYS"


@pytest.mark.parametrize("actor", [
    {"initials": "SYS", "role": "at"},
    {"initials": "AB", "role": "system"},
    {"initials": "AB", "role": "boss"},
    {"initials": "AB"},
])
def test_bad_actor_is_invalid(actor):
    assert "actor" in invalid(raw("cmd.case.resolve", {"task_id": "t"}, actor=actor))


def test_unknown_envelope_and_data_fields_are_ignored():
    data = dict(ABSENCE, colour="blue", nested={"x": 1})
    env = decoded(raw("vpa.absence_registered", data, trace_id="abc"))
    assert env.data.absence_id == "abs-1"
    assert not hasattr(env.data, "colour")


# ---- dates -----------------------------------------------------------------------------------

def test_dates_are_yyyy_mm_dd():
    env = decoded(raw("vpa.absence_registered", ABSENCE))
    assert env.data.starts_on == date(2026, 12, 1)
    assert env.data.ends_on == date(2026, 12, 5)


@pytest.mark.parametrize("value", ["01.12.2026", "2026-12-1", "2026/12/01", "2026-12-01T00:00:00", 20261201, ""])
def test_other_date_formats_are_invalid(value):
    assert "starts_on" in invalid(raw("vpa.absence_registered", dict(ABSENCE, starts_on=value)))


def test_ends_on_before_starts_on_is_invalid():
    assert "ends_on" in invalid(raw("vpa.absence_registered", dict(ABSENCE, ends_on="2026-11-30")))


def test_one_day_absence_is_valid():
    env = decoded(raw("vpa.absence_registered", dict(ABSENCE, ends_on="2026-12-01")))
    assert env.data.starts_on == env.data.ends_on


def test_roster_absence_ends_on_before_starts_on_is_invalid_and_null_is_open_ended():
    data = {"absence_id": "r-1", "initials": "AB", "kind": "sick", "starts_on": "2026-12-01"}
    assert invalid(raw("roster.absence_registered", dict(data, ends_on="2026-11-30"), vpa_id=None))
    assert decoded(raw("roster.absence_registered", dict(data, ends_on=None), vpa_id=None)).data.ends_on is None
    assert decoded(raw("roster.absence_registered", data, vpa_id=None)).data.ends_on is None


def test_naive_datetime_inside_data_is_rejected():
    data = {"reminder_id": "r-1", "due_at": "2026-11-27T09:00:00", "owner": "AB"}
    assert "due_at" in invalid(raw("cmd.reminder.set", data))
    assert decoded(raw("cmd.reminder.set", dict(data, due_at="2026-11-27T08:00:00Z"))).data.due_at


# ---- initials, booleans, required and optional fields -------------------------------------------

@pytest.mark.parametrize("initials", ["AB", "ABC", "ABCD"])
def test_initials_with_2_to_4_capitals(initials):
    assert decoded(raw("vpa.registered", dict(REGISTERED, at_owner=initials))).data.at_owner == initials


@pytest.mark.parametrize("initials", ["A", "ABCDE", "ab", "Ab", "A1", "ÄB", "", "A B"])
def test_other_initials_are_invalid(initials):
    assert "at_owner" in invalid(raw("vpa.registered", dict(REGISTERED, at_owner=initials)))


@pytest.mark.parametrize("initials", ["A", "ABCDE", "ab"])
def test_initials_pattern_for_actor_and_roster(initials):
    assert invalid(raw("cmd.case.resolve", {"task_id": "t"}, actor={"initials": initials, "role": "at"}))
    member = {"initials": initials, "name": "X", "role": "at", "active": True}
    assert invalid(raw("roster.member_upserted", member, vpa_id=None))


@pytest.mark.parametrize("value", ["true", 1, 0, "yes", None])
def test_booleans_are_strict(value):
    data = {"accepts_new_customers": value, "accepts_orders": True}
    assert "accepts_new_customers" in invalid(raw("vpa.schedule_changed", data))


def test_real_booleans_are_accepted():
    env = decoded(raw("vpa.schedule_changed", {"accepts_new_customers": False, "accepts_orders": True}))
    assert env.data.accepts_new_customers is False and env.data.accepts_orders is True


def test_registered_optional_fields_default():
    d = decoded(raw("vpa.registered", REGISTERED)).data
    assert (d.part_time, d.uses_mobile_app, d.vpa_class, d.buddy) == (False, False, None, None)


def test_registered_class_is_read_from_the_class_key():
    assert decoded(raw("vpa.registered", dict(REGISTERED, **{"class": "B"}))).data.vpa_class.value == "B"
    assert invalid(raw("vpa.registered", dict(REGISTERED, **{"class": "E"})))


@pytest.mark.parametrize("field", ["absence_id", "starts_on", "ends_on"])
def test_required_data_fields(field):
    data = dict(ABSENCE)
    del data[field]
    assert field in invalid(raw("vpa.absence_registered", data))


def test_class_change_defaults():
    d = decoded(raw("vpa.class_changed", {"class": "A"})).data
    assert (d.previous, d.rising_star) == (None, False)


def test_reminder_complete_without_file_updated_decodes():
    # A missing flag is a rejection by the reminders service (5.5), not an invalid line.
    env = decoded(raw("cmd.reminder.complete", {"reminder_id": "r-1"}))
    assert env.data.file_updated is None


def test_reminder_complete_file_updated_is_strict():
    assert invalid(raw("cmd.reminder.complete", {"reminder_id": "r-1", "file_updated": "true"}))


def test_journey_clear_stage_must_be_known():
    assert decoded(raw("cmd.journey.clear", {"stage": "NEW_GT_12"})).data.stage.value == "NEW_GT_12"
    assert "stage" in invalid(raw("cmd.journey.clear", {"stage": "NEW_12_15"}))


# ---- poison pills (issue 9; DESIGN 5.4/5.5): invalid at the edge, never further in ----------------

def test_u0000_anywhere_is_invalid():
    assert "U+0000" in invalid(raw("vpa.registered", {**REGISTERED, "name": "An\u0000na"}))
    assert "U+0000" in invalid(raw("vpa.customer_complaint", {"complaint_id": "c", "summary": "x\u0000"}))
    assert "U+0000" in invalid(raw("vpa.registered", REGISTERED, event_id="e\u0000"))


def test_json_nested_ten_thousand_levels_is_invalid_not_a_crash():
    deep = "[" * 10_000 + "]" * 10_000
    assert "nested" in invalid('{"type": "vpa.registered", "data": ' + deep + "}")
    assert "nested" in invalid(raw("vpa.registered", {**REGISTERED, "x": [[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]}))


@pytest.mark.parametrize("value", [None, b"", ""])
def test_an_empty_record_is_invalid(value):
    outcome = decode(value)
    assert isinstance(outcome, Invalid) and "empty" in outcome.reason


def test_a_record_larger_than_an_envelope_can_be_is_invalid():
    assert "bytes" in invalid(raw("vpa.customer_complaint", {"complaint_id": "c", "summary": "x" * 300_000}))


@pytest.mark.parametrize("at", ["0001-01-01T00:00:00+00:00", "1899-12-31T23:59:59+00:00",
                                "3000-01-01T00:00:00+00:00", "9999-12-31T23:59:59+00:00"])
def test_occurred_at_outside_the_years_1900_to_2999_is_invalid(at):
    assert "year" in invalid(raw("vpa.registered", REGISTERED, occurred_at=at))


@pytest.mark.parametrize("at", ["1900-01-01T00:00:00+00:00", "2999-12-31T23:59:59+00:00"])
def test_occurred_at_at_the_edges_of_the_years_is_valid(at):
    assert decoded(raw("vpa.registered", REGISTERED, occurred_at=at)).occurred_at.year in (1900, 2999)


@pytest.mark.parametrize("field, value", [("started_on", "9999-01-01"), ("started_on", "0001-01-01")])
def test_dates_outside_the_years_are_invalid(field, value):
    assert "year" in invalid(raw("vpa.registered", {**REGISTERED, field: value}))


def test_free_text_has_a_length_limit():
    assert invalid(raw("cmd.case.resolve", {"task_id": "case:x", "note": "n" * 2001}))
    assert decoded(raw("cmd.case.resolve", {"task_id": "case:x", "note": "n" * 2000}))
