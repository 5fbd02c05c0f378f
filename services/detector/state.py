"""The detector's state of one VPA (the JSON its changelog holds), typed, and its codec."""
from __future__ import annotations

from typing import Optional, TypedDict

from services.core.state import COMMON_UPGRADES, ServiceState, StateCodec


class AbsenceRecord(TypedDict, total=False):
    """A remembered absence: only its start and whether it was cancelled count for later ones."""

    starts_on: str  # ISO date
    cancelled: bool


class Episode(TypedDict):
    """The running inactivity episode (from ``inactive`` to the next ``active``)."""

    case_id: str


class _TrackEvents(TypedDict, total=False):
    """The first event of each kind of activity seen since the inactivity (for the evidence)."""

    web_event: str
    mobile_event: str
    active_event: str  # the status change to active


class InactivityTrack(_TrackEvents):
    """Per inactive case: its follow-up, the activity seen since, decision and reminder bookkeeping."""

    inactive_at: str
    follow_up: str
    decided: bool
    web: bool
    mobile: bool
    status_active: bool
    reminder: bool  # its automatic follow-up reminder was requested
    self_closed: bool  # it closed itself (part time, no contact): a later complaint reopens it


class ComplaintFacts(TypedDict, total=False):
    event_id: str
    summary: Optional[str]


class DetectorState(ServiceState, total=False):
    absences: dict[str, AbsenceRecord]  # absence_id -> facts (within the `frequent` window and then some)
    rising_star: bool  # the flag of the last class change
    complaints: dict[str, str]  # complaint_id -> occurred_at
    complaint_facts: dict[str, ComplaintFacts]  # complaint_id -> its evidence
    episode: Optional[Episode]
    inactivity: dict[str, InactivityTrack]  # case task_id -> its track


CODEC: StateCodec[DetectorState] = StateCodec("detector", COMMON_UPGRADES)
