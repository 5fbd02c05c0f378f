"""Class-change cases (DESIGN 2.1 ``class_change``; fine print 5.6, 5.15, 5.20, 5.21)."""
import pytest

from services.detector.class_rules import class_reasons
from services.detector.drafts import draft_is_safe
from tests.unit.detector_helpers import VPA, Harness, envelope, registered


@pytest.mark.parametrize("new, previous, rising, was, expected", [
    ("B", "A", False, False, ["negative"]),
    ("C", "D", False, False, ["positive"]),
    ("A", "D", False, False, ["positive"]),
    ("D", "A", False, False, ["negative"]),
    ("B", "B", False, False, []),
    ("B", "B", True, False, ["rising_star"]),
    ("B", "B", True, True, []),                 # rising star not newly set
    ("A", "B", True, False, ["positive", "rising_star"]),
    ("A", "B", True, True, ["positive"]),
    ("C", "B", True, False, ["negative", "rising_star"]),
    ("C", None, False, False, []),              # unknown previous, no rising star
    ("C", None, True, False, ["rising_star"]),
])
def test_class_reasons(new, previous, rising, was, expected):
    assert class_reasons(new, previous, rising, was) == expected


def changed(cls: str, previous: str | None = None, rising_star: bool | None = None,
            when: str = "2026-11-26T10:00:00+01:00", **kw):
    data: dict = {"class": cls}
    if previous is not None:
        data["previous"] = previous
    if rising_star is not None:
        data["rising_star"] = rising_star
    return envelope("vpa.class_changed", data, at=when, **kw)


def test_a_to_b_is_negative_without_a_draft():
    h = Harness()
    h.send(registered(vpa_class="A"))
    [task] = h.send(changed("B", "A", event_id="cls-1")).tasks
    assert task["task_id"] == f"case:class_change:{VPA}:cls-1"
    assert (task["tab"], task["kind"], task["status"], task["due_at"]) == ("cases", "class_change", "open", None)
    assert (task["reasons"], task["priority"]) == (["negative"], "normal")
    assert task["message_draft"] is None
    assert "Ursachen prüfen" in task["action"]
    assert "A" in task["title"] and "B" in task["title"]  # internal: the dashlet may show classes


def test_d_to_c_is_positive_with_a_praise_draft_that_never_names_the_class():
    h = Harness()
    h.send(registered(vpa_class="D", name="Carla Dietz"))
    [task] = h.send(changed("C", "D")).tasks
    assert (task["reasons"], task["priority"]) == (["positive"], "low")
    draft = task["message_draft"]
    assert draft.startswith("Hallo Carla,")
    assert draft_is_safe(draft)
    assert "C" not in draft.split() and "Klasse" not in draft


def test_unknown_previous_uses_the_class_the_vpa_had():
    h = Harness()
    h.send(registered(vpa_class="C"))
    [task] = h.send(changed("B")).tasks
    assert task["reasons"] == ["positive"]
    [task] = h.send(changed("D", when="2026-11-27T10:00:00+01:00")).tasks  # B (from the last change) -> D
    assert (task["reasons"], task["priority"]) == (["negative", "positive"], "normal")


def test_unknown_previous_and_unknown_class_opens_nothing():
    h = Harness()
    h.send(registered())
    assert h.send(changed("B")).tasks == []
    assert h.cases("class_change") == []


def test_equal_class_opens_nothing():
    h = Harness()
    h.send(registered(vpa_class="B"))
    assert h.send(changed("B")).tasks == []


def test_rising_star_with_unknown_previous_praises():
    h = Harness()
    h.send(registered())
    [task] = h.send(changed("B", rising_star=True)).tasks
    assert (task["reasons"], task["priority"]) == (["rising_star"], "low")
    assert draft_is_safe(task["message_draft"])
    assert "rising" not in task["message_draft"].lower()


def test_rising_star_already_set_is_not_new_but_set_again_after_being_dropped_is():
    h = Harness()
    h.send(registered(vpa_class="B"))
    case = h.send(changed("B", "B", rising_star=True)).tasks[0]["task_id"]
    h.send(envelope("cmd.case.resolve", {"task_id": case}, at="2026-11-26T11:00:00+01:00",
                    actor={"initials": "AB", "role": "at"}))
    assert h.send(changed("B", "B", rising_star=True, when="2026-11-26T12:00:00+01:00")).tasks == []
    assert h.send(changed("B", "B", when="2026-11-26T13:00:00+01:00")).tasks == []  # flag dropped
    [task] = h.send(changed("B", "B", rising_star=True, when="2026-11-26T14:00:00+01:00")).tasks
    assert task["reasons"] == ["rising_star"]


def test_later_change_updates_the_open_case_and_never_lowers_priority():
    h = Harness()
    h.send(registered(vpa_class="A"))
    first = h.send(changed("B", "A", event_id="cls-1")).tasks[0]
    [second] = h.send(changed("A", "B", rising_star=True, when="2026-11-27T10:00:00+01:00")).tasks
    assert second["task_id"] == first["task_id"]
    assert second["reasons"] == ["negative", "positive", "rising_star"]
    assert second["priority"] == "normal"
    assert second["message_draft"] and draft_is_safe(second["message_draft"])
    assert second["version"] == 2
    assert len(h.cases("class_change")) == 1


def test_draft_leaves_out_a_first_name_that_would_reveal_a_class():
    h = Harness()
    h.send(registered(vpa_class="D", name="B. Klassen"))
    [task] = h.send(changed("C", "D")).tasks
    assert task["message_draft"].startswith("Hallo,")
    assert draft_is_safe(task["message_draft"])


def test_a_renamed_vpa_gets_a_new_draft():
    h = Harness()
    h.send(registered(vpa_class="D"))
    h.send(changed("C", "D"))
    [task] = h.send(envelope("vpa.profile_updated", {"name": "Berta Lang"}, at="2026-11-27T10:00:00+01:00")).tasks
    assert task["message_draft"].startswith("Hallo Berta,")
    assert task["vpa_name"] == "Berta Lang"


def test_unregistered_vpa_case_is_filled_in_when_the_profile_arrives():
    h = Harness()
    [task] = h.send(changed("B", "A")).tasks
    assert (task["owner"], task["vpa_name"]) == (None, None)
    [task] = h.send(registered("2026-11-27T10:00:00+01:00", name="Dora Beck", owner="AB")).tasks
    assert (task["owner"], task["assignee"], task["vpa_name"]) == ("AB", "AB", "Dora Beck")
    # a registration without a class keeps the class learnt from the change
    assert h.send(changed("C", when="2026-11-28T10:00:00+01:00")).tasks[0]["reasons"] == ["negative"]
