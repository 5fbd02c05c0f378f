"""The shared VPA profile: registration, and what a null in an update means (DESIGN 5.11)."""
from __future__ import annotations

import json

from services.core import profile
from services.engine.decode import decode


def data(type_: str, payload: dict):
    return decode(json.dumps({"event_id": "e", "type": type_, "occurred_at": "2026-11-26T09:00:00+01:00",
                              "vpa_id": "V-1", "data": payload})).envelope.data


REG = {"name": "Anna Schmidt", "started_on": "2026-01-15", "at_owner": "AB", "buddy": "CD"}


def test_registration_defaults_and_known_class():
    p = profile.from_registration(data("vpa.registered", REG), {"class": "B"})
    assert p == {"name": "Anna Schmidt", "started_on": "2026-01-15", "part_time": False, "class": "B",
                 "at_owner": "AB", "buddy": "CD", "uses_mobile_app": False}
    assert profile.from_registration(data("vpa.registered", {**REG, "class": "A"}), {"class": "B"})["class"] == "A"


def test_update_changes_only_present_fields_null_clears_only_the_buddy():
    p = profile.from_registration(data("vpa.registered", REG))
    profile.apply_update(p, data("vpa.profile_updated", {"at_owner": "EF"}))
    assert (p["at_owner"], p["name"], p["buddy"]) == ("EF", "Anna Schmidt", "CD")
    profile.apply_update(p, data("vpa.profile_updated", {"buddy": None, "at_owner": None, "name": None}))
    assert (p["at_owner"], p["name"], p["buddy"]) == ("EF", "Anna Schmidt", None)
