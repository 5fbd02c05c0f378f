"""A VPA's profile as every service keeps it, from ``vpa.registered`` and ``vpa.profile_updated``.

One definition, so the detector, reminders and journey agree on owner, name and buddy
(DESIGN 5.11) however an update is worded.
"""
from __future__ import annotations

from typing import Any, Optional, cast

from services.core.state import Profile

# Fields an update may clear with null; for the others a null means "no change".
CLEARABLE = {"buddy"}


def from_registration(data: Any, known: Optional[Profile] = None) -> Profile:
    """The profile a registration describes; a class seen before the registration is kept."""
    known = known or {}
    return {
        "name": data.name, "started_on": data.started_on.isoformat(), "part_time": data.part_time,
        "class": data.vpa_class.value if data.vpa_class else known.get("class"),
        "at_owner": data.at_owner, "buddy": data.buddy, "uses_mobile_app": data.uses_mobile_app,
    }


def apply_update(profile: Profile, data: Any) -> Profile:
    """Apply the fields present in a ``vpa.profile_updated``; returns the same dict."""
    for name in data.model_fields_set:
        value = getattr(data, name)
        if value is not None or name in CLEARABLE:
            cast(dict[str, Any], profile)[name] = value  # the update names its fields
    return profile
