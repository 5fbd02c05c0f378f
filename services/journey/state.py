"""The journey service's state of one VPA (the JSON its changelog holds), typed, and its codec."""
from __future__ import annotations

from typing import Optional

from services.core.state import COMMON_UPGRADES, ServiceState, StateCodec


class JourneyState(ServiceState, total=False):
    vpa_id: str  # the journey's task ids are built from it
    registered_event: Optional[str]  # the registration's event_id: the source of the tenure fact


CODEC: StateCodec[JourneyState] = StateCodec("journey", COMMON_UPGRADES)
