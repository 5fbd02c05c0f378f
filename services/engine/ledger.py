"""Which inputs an engine has applied: recent event ids (duplicates, DESIGN 4.2 and 5.4a) and input
positions (a restarted driver gets the records since its last commit again, and skips those whose
effect its state holds already).

Where each is kept: a VPA's recent event ids and input positions in its slot; a roster member's
event ids in that member's slot; the event ids of other keyless inputs and the roster's read
positions in the roster slot; the positions of keyless inputs (ticks) in the partition's meta.
The ledger writes into the engine's slots and marks what it changed in the engine's dirty set.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, MutableMapping, Optional

from schemas.envelope import Envelope, topic_for_type
from schemas.topics import Topic
from services.core.roster import roster_key
from services.engine.order import micros
from services.engine.records import MEMBER_PREFIX, META_SLOT, ROSTER_SLOT, Origin, RosterRecord, Slot, new_slot


def dedupe_key(env: Envelope[Any]) -> str:
    """DESIGN 5.4a: a repeated event_id is dropped only within its source. Commands (the dashlet's,
    already scoped to their principal, and the system's) are kept apart from the upstream's events,
    so no command's id can make an upstream event look repeated, or the other way round."""
    return f"cmd|{env.event_id}" if env.type.startswith("cmd.") else env.event_id


class InputLedger:
    def __init__(self, slots: MutableMapping[str, Any], dirty: set[str], window: timedelta,
                 positions: dict[str, int], roster: RosterRecord) -> None:
        self._slots, self._dirty, self._window_us = slots, dirty, window // timedelta(microseconds=1)
        # The last offset applied per input topic: of keyless inputs (ticks) by the engine, of every
        # input by a driver that calls note_input (kept in META).
        self.positions = positions
        self.roster_positions: dict[int, int] = {int(k): v for k, v in roster.get("positions", {}).items()}
        self.roster_seen: dict[str, int] = dict(roster.get("seen", {}))
        self.member_seen: dict[str, dict[str, int]] = {}

    # ---- positions ------------------------------------------------------------------------------

    def note_roster_position(self, partition: int, next_offset: int) -> None:
        if self.roster_positions.get(partition, 0) < next_offset:
            self.roster_positions[partition] = next_offset
            self._dirty.add(ROSTER_SLOT)

    def note_input(self, topic: str, offset: int) -> None:
        if self.positions.get(topic, -1) < offset:
            self.positions[topic] = offset
            self._dirty.add(META_SLOT)

    def already_applied(self, env: Envelope[Any], origin: Origin) -> bool:
        """After a restart the records since the last commit come again: recognise those whose
        effect is stored already (by the input position the slot records)."""
        if origin.offset < 0 or not origin.topic:
            return False
        if origin.topic == Topic.roster:
            return origin.offset < self.roster_positions.get(origin.partition, 0)
        if env.vpa_id is not None:
            slot = self._slots.get(env.vpa_id)
            if not slot:
                return False
            applied: int = slot.get("pos", {}).get(origin.topic, -1)
            return applied >= origin.offset
        return self.positions.get(origin.topic, -1) >= origin.offset

    # ---- recent event ids -----------------------------------------------------------------------

    def is_duplicate(self, env: Envelope[Any]) -> bool:
        seen = self._seen_of(env)
        if seen and dedupe_key(env) in seen:
            return True
        # Roster event ids kept in the roster slot before members had slots of their own.
        return env.vpa_id is None and env.event_id in self.roster_seen

    def remember(self, env: Envelope[Any], origin: Origin, clock: Optional[datetime]) -> None:
        """Keep the event id for the dedupe window (DESIGN 4.2), forgetting older ones."""
        at = micros(env.occurred_at)
        horizon = micros(clock) - self._window_us if clock else at
        if env.vpa_id is None:
            if origin.offset >= 0 and origin.topic != Topic.roster:
                self.positions[origin.topic] = origin.offset
            if env.type == "clock.tick":
                return  # ticks carry no meaning to repeat, and there are many
            if topic_for_type(env.type) == Topic.roster:
                initials = roster_key(env)
                seen = self.member_seen.setdefault(initials, {})
                self._dirty.add(MEMBER_PREFIX + initials)
                if self.roster_seen and min(self.roster_seen.values()) < horizon:
                    self.roster_seen = {e: t for e, t in self.roster_seen.items() if t >= horizon}
                    self._dirty.add(ROSTER_SLOT)
            else:
                seen = self.roster_seen
                self._dirty.add(ROSTER_SLOT)
        else:
            slot: Optional[Slot] = self._slots.get(env.vpa_id)
            if slot is None:
                slot = self._slots[env.vpa_id] = new_slot()
            seen = slot.setdefault("seen", {})
            if origin.offset >= 0:
                slot.setdefault("pos", {})[origin.topic] = origin.offset
            self._slots[env.vpa_id] = slot  # a write-back store must know the slot changed
            self._dirty.add(env.vpa_id)
        for event_id in [e for e, t in seen.items() if t < horizon]:
            del seen[event_id]
        seen[dedupe_key(env)] = at

    def _seen_of(self, env: Envelope[Any]) -> Optional[dict[str, Any]]:
        if env.vpa_id is None:
            if topic_for_type(env.type) == Topic.roster:
                return self.member_seen.get(roster_key(env))
            return self.roster_seen
        slot = self._slots.get(env.vpa_id)
        return slot.get("seen") if slot else None
