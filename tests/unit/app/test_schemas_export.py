"""The committed JSON Schema files (schemas/json/) match the pydantic contract models."""
import json

import pytest

from schemas.envelope import ENVELOPE_TYPES
from schemas.export import DEFAULT_DIR, render_all

HOW_TO_FIX = "the contract models changed without re-export: run `vpa schemas export` and commit schemas/json/"

# DESIGN 4.3 to 4.5, written out by hand so a type dropped from the models is noticed too.
DESIGN_TYPES = [
    # 4.3 vpa.events
    "vpa.registered", "vpa.profile_updated", "vpa.schedule_changed", "vpa.absence_registered",
    "vpa.absence_cancelled", "vpa.class_changed", "vpa.activity_status_changed", "vpa.activity_seen",
    "vpa.customer_complaint", "vpa.onboarding_call_completed", "vpa.checkin_call_scheduled",
    "vpa.offboarded", "clock.tick",
    # 4.4 at.roster
    "roster.member_upserted", "roster.absence_registered", "roster.absence_ended",
    # 4.5 vpa.commands
    "cmd.reminder.set", "cmd.reminder.complete", "cmd.reminder.reschedule", "cmd.case.resolve",
    "cmd.journey.clear",
]


def committed() -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(DEFAULT_DIR.glob("*.json"))}


def test_committed_files_are_exactly_the_rendered_ones():
    rendered, on_disk = render_all(), committed()
    missing = sorted(set(rendered) - set(on_disk))
    stale = sorted(set(on_disk) - set(rendered))
    assert not missing, f"missing in schemas/json/: {missing}; {HOW_TO_FIX}"
    assert not stale, f"stale files in schemas/json/: {stale}; {HOW_TO_FIX}"


@pytest.mark.parametrize("name", sorted(render_all()))
def test_committed_file_content_is_current(name):
    path = DEFAULT_DIR / name
    assert path.exists(), f"{path} is missing; {HOW_TO_FIX}"
    assert path.read_text(encoding="utf-8") == render_all()[name], f"{path} is out of date; {HOW_TO_FIX}"


def test_render_is_deterministic():
    assert render_all() == render_all()


@pytest.mark.parametrize("type_", DESIGN_TYPES)
def test_every_design_type_has_a_model_and_a_schema_file(type_):
    assert type_ in ENVELOPE_TYPES
    path = DEFAULT_DIR / f"{type_}.json"
    assert path.exists(), f"{path} is missing; {HOW_TO_FIX}"
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["title"] == type_
    assert schema["properties"]["type"]["const"] == type_


# Beyond DESIGN 4.5: erasure on request (issue 13, data protection), sent by `vpa erase`.
EXTENSIONS = ["cmd.vpa.erase"]


def test_no_types_beyond_design_and_its_documented_extensions():
    assert sorted(ENVELOPE_TYPES) == sorted(DESIGN_TYPES + EXTENSIONS)


def test_task_schema_file_has_the_design_fields():
    schema = json.loads((DEFAULT_DIR / "task.json").read_text(encoding="utf-8"))
    assert set(schema["properties"]) == {
        "task_id", "tab", "kind", "stage", "vpa_id", "vpa_name", "status", "priority", "reasons", "title",
        "action", "owner", "assignee", "due_at", "message_draft", "created_at", "updated_at", "version",
        "history", "evidence", "case_task_id",  # the last two: contract notes in the README
    }
