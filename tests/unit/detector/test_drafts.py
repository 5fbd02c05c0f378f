"""Drafts for the assistant never reveal the class (DESIGN 2, 5.21): the guard and a property test."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.config.settings import Settings
from services.core.processor import Context
from services.detector.drafts import contact_draft, draft_is_safe, first_name, praise_draft
from services.detector.service import Detector
from services.engine.decode import Decoded, decode
from tests.unit.detector_helpers import envelope

CLASSES = ("A", "B", "C", "D")
# Names as the platform might send them: anything printable or not, but no lone surrogates
# (they cannot be encoded as UTF-8 JSON).
NAMES = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=60)
NAME_PARTS = st.sampled_from(["Anna", "Bea", "A.", "B", "Klasse", "CLASS", "Rising", "Star", "rising star",
                              "Ｃ", "Kla\u200bsse", "Ümit", "D'Angelo", "Jean-Claude", "Ana-B", "C3PO"])
MIXED_NAMES = st.lists(NAME_PARTS | NAMES, min_size=1, max_size=4).map(" ".join).filter(
    lambda n: 0 < len(n) <= 200 and "\x00" not in n)  # U+0000 is invalid at the edge (decode)


# ---- the guard ----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Klasse", "klasse", "KLASSE", "Klassen", "class", "Class", "CLASSES", "Rising Star", "rising star",
    "RISING  STAR", "Rising-Star", "risingstar", "Du bist jetzt A", "A", "B.", "(C)", "Note: D",
    "Hallo B,", "A-Team", "B2B", "ＫＬＡＳＳＥ", "Kla\u200bsse", "Ｂ", "Klaſſe",
])
def test_guard_rejects(text):
    assert not draft_is_safe(text)


@pytest.mark.parametrize("text", [
    "Hallo Anna, toll gemacht!", "AT-Team", "Abend", "Deine Entwicklung", "Bea", "Das ist super", "",
])
def test_guard_accepts(text):
    assert draft_is_safe(text)


@settings(deadline=None)
@given(cls=st.sampled_from(CLASSES), before=st.text(max_size=20), after=st.text(max_size=20))
def test_guard_rejects_any_text_naming_a_class(cls, before, after):
    assert not draft_is_safe(f"{before} {cls} {after}")
    assert not draft_is_safe(f"{before}Klasse {cls}{after}")
    assert not draft_is_safe(f"{before}rising star{after}")
    assert not draft_is_safe(f"{before}CLASS{after}")


# ---- the drafts ----------------------------------------------------------------------------------

def test_templates_without_a_name_are_safe():
    for draft in (praise_draft(None), contact_draft(None), contact_draft(None, complaint=True)):
        assert draft_is_safe(draft)
        assert draft.startswith("Hallo,")


def test_drafts_address_the_first_name():
    assert praise_draft("Anna Schmidt").startswith("Hallo Anna,\n")
    assert contact_draft("  Jean-Claude  Dupont").startswith("Hallo Jean-Claude,\n")


@pytest.mark.parametrize("name", ["A Müller", "B. Meier", "Klasse", "Class Act", "Ｃ Weber", "D"])
def test_a_first_name_that_would_trip_the_guard_is_left_out(name):
    assert praise_draft(name).startswith("Hallo,\n")


def test_first_name():
    assert first_name("Anna Maria Schmidt") == "Anna"
    assert first_name("  ") is None
    assert first_name(None) is None
    assert first_name("Anna\nSchmidt") == "Anna"


@settings(deadline=None, max_examples=300)
@given(name=MIXED_NAMES, complaint=st.booleans())
def test_every_draft_passes_the_guard_whatever_the_name(name, complaint):
    for draft in (praise_draft(name), contact_draft(name, complaint)):
        assert draft_is_safe(draft)
        first = first_name(name)
        if first and f"Hallo {first}," in draft:
            assert draft_is_safe(first)


def _decoded(raw: dict):
    outcome = decode(json.dumps(raw))
    assert isinstance(outcome, Decoded), outcome
    return outcome.envelope


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=MIXED_NAMES, previous=st.sampled_from(CLASSES), new=st.sampled_from(CLASSES),
       rising=st.booleans())
def test_class_change_drafts_never_name_the_class(name, previous, new, rising):
    """Through the detector: every class change, any name, the praise draft passes the guard."""
    det, state = Detector(), {}
    reg = _decoded({"event_id": "r", "type": "vpa.registered", "occurred_at": "2026-11-01T09:00:00+01:00",
                    "vpa_id": "V-1", "data": {"name": name, "started_on": "2025-01-01", "at_owner": "AB",
                                              "class": previous}})
    ctx = Context(reg.occurred_at, Settings())
    det.handle(state, reg, ctx)
    change = envelope("vpa.class_changed", {"class": new, "previous": previous, "rising_star": rising},
                      at="2026-11-26T10:00:00+01:00", vpa_id="V-1")
    result = det.handle(state, change, Context(change.occurred_at, Settings()))
    praised = (new < previous) or rising  # "A" < "B": better class
    assert bool(result.tasks) == (praised or new != previous)
    for task in result.tasks:
        draft = task["message_draft"]
        assert (draft is not None) == praised
        if draft is not None:
            assert draft_is_safe(draft)
            for cls in CLASSES:
                assert cls not in draft.replace(",", " ").replace(".", " ").split()
