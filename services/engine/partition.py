"""The partition engine: one algorithm for both runners (DESIGN 3; arroyo's StreamProcessor).

A synchronous, I/O-free engine over one partition's worth of VPAs (the embedded runner: all of
them; the Kafka runner: one partition of one service). It owns what both runners used to write
twice: decode outcomes, duplicate detection and input positions (``ledger``), the clock, the timer
index, the local midnights of roster boundaries, re-evaluation on roster changes, and
copy-and-catch around every call into a service's rules. A driver feeds it inputs in key order (``services.engine.order``) and takes back
what to send (task versions, commands, DLQ records) and what to store (changed slots, meta).

State is kept in *slots*, one per VPA (``Slot``): each service's domain state plus the runner's
own bookkeeping beside it (recent event ids, the order keys of pending timers, the last step
applied), never inside the domain state. The engine reads and writes slots through a mutable
mapping; the embedded runner passes a dict, the Kafka driver a write-back buffer over its table.

Order of work (DESIGN 5.1 to 5.4): every step has an order key; pending work (timers due,
midnights with a roster boundary, commands the services emitted) happens in key order. A timer due
at or before the instant of an input fires before that input; a timer set in the past fires right
after the step that set it; a command is handled right after its cause, by every service of the
engine that consumes ``vpa.commands``.
"""
from __future__ import annotations

import heapq
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any, Iterable, MutableMapping, Optional, cast

from schemas.dead_letters import DlqKind
from schemas.envelope import Envelope, topic_for_type
from schemas.topics import Topic
from services.config.clock_mode import ClockMode
from services.config.settings import Settings
from services.core.processor import Context, Processor, Result, Timer, json_copy
from services.core.roster import Roster, apply_roster_event, is_present, roster_key
from services.core.timeutil import at_local, local_date, parse
from services.engine.decode import Decoded, Invalid, Outcome, Unknown
from services.engine.order import (
    RANK_MIDNIGHT, OrderKey, child_key, end_key, input_key, instant_of, micros, timer_key,
)
from services.engine.roster_index import (
    BoundaryIndex, DependencyIndex, MemberChange, policy_view,
)
from services.engine.records import (
    MEMBER_PREFIX, META_SLOT, ROSTER_SLOT, DlqRecord, EngineLimits, MemberRecord, MetaRecord, Origin, Output,
    RosterRecord, Slot, new_slot,
)
from services.engine.ledger import InputLedger
from services.engine.timer_index import TimerIndex

_TIMER_ORIGIN = Origin("timer")
_ROSTER_ORIGIN = Origin("roster re-evaluation")


class PartitionEngine:
    def __init__(self, processors: Iterable[Processor], settings: Settings, *, name: str = "embedded",
                 mode: ClockMode = ClockMode.stream, slots: Optional[MutableMapping[str, Any]] = None,
                 limits: EngineLimits = EngineLimits(), follows: Iterable[str] = ()) -> None:
        self.processors = sorted(processors, key=_rank_of)
        self._by_name = {p.name: p for p in self.processors}
        self.settings, self.name, self.mode, self.limits = settings, name, mode, limits
        self.slots: MutableMapping[str, Any] = {} if slots is None else slots
        self.out = Output()
        self.stats: Counter[Any] = Counter()
        self.timers = TimerIndex()
        self.deps = DependencyIndex()
        self._pending: list[tuple[OrderKey, int, Envelope[Any], Origin]] = []  # emitted, not yet handled
        self._pending_seq = 0
        self._busy = False
        self._dirty: set[str] = set()
        meta = self.slots.get(META_SLOT) or {}
        self.clock: Optional[datetime] = parse(meta["clock"]) if meta.get("clock") else None
        # The highest key of any step done: everything this engine will still do lies after it
        # (in stream mode), which is what a service following this one waits for.
        self.done_key: Optional[OrderKey] = tuple(meta["last"]) if meta.get("last") else None
        self.watermarks: dict[str, Optional[OrderKey]] = {
            s: (tuple(meta["watermarks"][s]) if meta.get("watermarks", {}).get(s) else None) for s in follows}
        roster = cast(RosterRecord, self.slots.get(ROSTER_SLOT) or {})
        self.roster: dict[str, dict[str, Any]] = Roster()  # versioned: see handover.presence
        self.ledger = InputLedger(self.slots, self._dirty, limits.dedupe_window, dict(meta.get("pos", {})), roster)
        self.positions = self.ledger.positions  # the last offset applied per input topic (META)
        self.roster_positions = self.ledger.roster_positions  # roster partition -> the next offset to read
        self._boundaries = BoundaryIndex()
        # (boundaries' version, the clock's local day ends at, the answer): see _next_midnight
        self._midnight: Optional[tuple[int, int, Optional[tuple[int, datetime]]]] = None
        for initials, member in roster.get("members", {}).items():
            # Written before members had slots of their own: rewritten so with the next batch.
            self._set_member(initials, member)
            self._dirty.add(ROSTER_SLOT)

    # ---- loading (a driver that restores slots from storage) ----------------------------------

    def load(self, keys: Iterable[str]) -> None:
        """Index the timers and roster dependencies of stored slots (after a restart)."""
        for key in keys:
            if key in (ROSTER_SLOT, META_SLOT):
                continue
            slot = self.slots.get(key)
            if not slot:
                continue
            if key.startswith(MEMBER_PREFIX):
                initials = key[len(MEMBER_PREFIX):]
                self.roster[initials] = slot["member"]
                self._boundaries.update(initials, slot["member"])
                self.ledger.member_seen[initials] = dict(slot.get("seen", {}))
                continue
            for service, timers in slot.get("timers", {}).items():
                for timer_id, tkey in timers.items():
                    self.timers.set((key, service, timer_id), tuple(tkey))
            for service, state in slot.get("states", {}).items():
                proc = self._by_name.get(service)
                if proc is not None:
                    self.deps.update((key, service), _dependencies(proc, state))

    # ---- inputs ------------------------------------------------------------------------------

    def submit(self, outcome: Outcome, raw: bytes, position: tuple[int, ...], origin: Origin,
               wall: Optional[datetime] = None) -> None:
        """One decoded input at ``position`` (rank, partition, offset: see ``order``)."""
        if isinstance(outcome, Invalid):
            self._dlq(outcome.kind, outcome.detail, self.name, origin, raw, None)
            self.stats["invalid"] += 1
            return
        if isinstance(outcome, Unknown):
            self.stats["unknown_types"] += 1
            self.out.counts[("unknown_types",)] += 1
            return
        assert isinstance(outcome, Decoded)
        env = outcome.envelope
        if self.mode is not ClockMode.stream and wall is not None and env.occurred_at > wall + self.limits.max_future:
            # DESIGN 5.4: one record must never fast-forward a live service.
            self._dlq(DlqKind.invalid, f"occurred_at {env.occurred_at.isoformat()} lies more than "
                      f"{_human(self.limits.max_future)} after the wall clock", self.name, origin, raw, env.vpa_id)
            self.stats["invalid"] += 1
            return
        self._step(env, input_key(env.occurred_at, position), origin, raw, wall)

    def submit_keyed(self, env: Envelope[Any], key: OrderKey, origin: Origin, upstream: str,
                     wall: Optional[datetime] = None) -> None:
        """A command the ``upstream`` service emitted, at the order key it was given there.

        That service emits in key order, so everything it will still emit lies after ``key``."""
        self.set_watermark(upstream, key)
        self._step(env, key, origin, None, wall)

    def note_roster_position(self, partition: int, next_offset: int) -> None:
        """Every roster record read counts as read, valid or not (a restart starts after it)."""
        self.ledger.note_roster_position(partition, next_offset)

    def note_input(self, topic: str, offset: int) -> None:
        """A driver handed over the record at ``offset`` of its partition of ``topic``: kept with the
        state (META), so a restarted driver knows where its inputs stand with the state it loads."""
        self.ledger.note_input(topic, offset)

    def set_watermark(self, service: str, key: OrderKey) -> None:
        """``service`` (which this engine follows) has done every step up to ``key``."""
        current = self.watermarks.get(service)
        if current is None or key > current:
            self.watermarks[service] = key
            self._dirty.add(META_SLOT)

    def advance(self, t: datetime) -> None:
        """Move the clock to ``t`` (``--until``, a wall-clock tick), doing all work due by then."""
        if self.clock is not None and t <= self.clock:
            self._work(end_key(t), self.clock)
            return
        reached = self._work(end_key(t), t)
        self._move_clock(reached)
        if reached == t:
            self._done(end_key(t))

    # ---- outputs -----------------------------------------------------------------------------

    def take_output(self) -> Output:
        out, self.out = self.out, Output()
        return out

    def clear_dirty(self) -> None:
        """For a driver whose slots mapping is the store itself (nothing to write back)."""
        self._dirty.clear()

    def has_dirty(self) -> bool:
        return bool(self._dirty)

    def take_dirty(self) -> dict[str, Any]:
        """The slots changed since the last call (meta and roster included), to store."""
        dirty = set(self._dirty)
        self._dirty.clear()  # one set, shared with the ledger
        out: dict[str, Any] = {}
        for key in sorted(dirty):
            if key == META_SLOT:
                out[key] = self.meta_record()
            elif key == ROSTER_SLOT:
                out[key] = self.roster_record()
            elif key.startswith(MEMBER_PREFIX):
                out[key] = self.member_record(key[len(MEMBER_PREFIX):])
            else:
                out[key] = self.slots.get(key)
        return out

    def meta_record(self) -> MetaRecord:
        return {"clock": self.clock.isoformat() if self.clock else None,
                "last": list(self.done_key) if self.done_key else None,
                "watermarks": {s: list(k) for s, k in self.watermarks.items() if k},
                "pos": self.positions}

    def roster_record(self) -> RosterRecord:
        return {"positions": {str(p): o for p, o in self.roster_positions.items()}, "seen": self.ledger.roster_seen}

    def member_record(self, initials: str) -> MemberRecord:
        return {"member": self.roster[initials], "seen": self.ledger.member_seen.get(initials, {})}

    def _set_member(self, initials: str, member: dict[str, Any]) -> None:
        self.roster[initials] = member
        self._boundaries.update(initials, member)
        self._dirty.add(MEMBER_PREFIX + initials)

    # ---- one step ------------------------------------------------------------------------------

    def _step(self, env: Envelope[Any], key: OrderKey, origin: Origin, raw: Optional[bytes],
              wall: Optional[datetime]) -> None:
        assert not self._busy, "the engine is not re-entrant"
        self._busy = True
        try:
            if self.mode is ClockMode.wall and wall is not None:
                self._move_clock(self._work(end_key(wall), wall))
            replayed = self.ledger.already_applied(env, origin)
            if not replayed and self.ledger.is_duplicate(env):
                self.stats["duplicates"] += 1
                self.out.counts[("duplicates",)] += 1
                return
            limit = self._upstream_limit()
            if limit is not None and key > limit:
                raise ValueError(f"{self.name}: input {key} is beyond the upstream watermark {limit}")
            t = env.occurred_at
            if self.mode is not ClockMode.wall:
                # Timers due by t (and before this input) first; the clock never goes back.
                target = t if self.clock is None or t > self.clock else self.clock
                self._move_clock(self._work(key, target))
            elif self.clock is None:
                self.clock = t
            if not replayed:
                self.ledger.remember(env, origin, self.clock)
                self.stats["processed"] += 1
                self._apply(env, key, origin, raw)
            else:
                self.stats["replayed"] += 1
            self._done(key)
            assert self.clock is not None  # moved to the input's time above, in every mode
            self._work(None, self.clock)  # timers it set in the past, then its commands
        finally:
            self._busy = False

    def _apply(self, env: Envelope[Any], key: OrderKey, origin: Origin, raw: Optional[bytes]) -> None:
        topic = topic_for_type(env.type)
        if topic == Topic.roster:
            self._apply_roster(env, key, origin)
            return
        if env.type == "clock.tick":
            return
        for proc in self.processors:
            if topic in proc.topics:
                if proc.types is None or env.type in proc.types:  # a type it ignores costs no call (no state copy)
                    # every input of a VPA topic names its VPA (the contract), so its slot key is set
                    self._call(proc, cast(str, env.vpa_id), key, origin, raw, env=env)
                self.out.counts[("events", proc.name, env.type)] += 1

    def _apply_roster(self, env: Envelope[Any], key: OrderKey, origin: Origin) -> None:
        initials = roster_key(env)
        old = self.roster.get(initials)
        member = apply_roster_event(old, env)
        self._set_member(initials, member)
        if origin.partition >= 0 and origin.topic == Topic.roster:
            self.note_roster_position(origin.partition, origin.offset + 1)
        self.out.counts[("events", self.name, env.type)] += 1
        today = local_date(self.clock or env.occurred_at, self.settings.tz)
        if policy_view(old, today) == policy_view(member, today):
            return  # nothing the policy reads today changed (e.g. an absence registered ahead)
        self._reassign([MemberChange(initials, (old or {}).get("role"), member.get("role"),
                                     is_present(old, today), is_present(member, today))], key)

    # ---- internal work in key order ------------------------------------------------------------

    def _work(self, before: Optional[OrderKey], upto: datetime) -> datetime:
        """Do pending work (emitted commands, timers, boundary midnights) due by ``upto`` whose key
        is below ``before`` and within the upstream watermark, in key order. Returns the instant
        reached (``upto``, or less when an upstream service has not got that far)."""
        limit = self._upstream_limit()
        upto_us = micros(upto)  # keys against the instant as integers: no datetime per comparison
        while True:
            best: Optional[tuple[OrderKey, str]] = None
            if self._pending:
                best = (self._pending[0][0], "command")
            head = self.timers.peek()
            if head is not None and head[0][0] <= upto_us and (best is None or head[0] < best[0]):
                best = (head[0], "timer")
            midnight = self._next_midnight()
            if midnight is not None and midnight[0] <= upto_us:
                mkey = (midnight[0], RANK_MIDNIGHT)
                if best is None or mkey < best[0]:
                    best = (mkey, "midnight")
            if best is None or (before is not None and best[0] >= before):
                return upto
            if limit is not None and best[0] > limit:
                # An upstream service has not done this far yet: its commands may still come first.
                reached = min(upto, instant_of(limit))
                return max(reached, self.clock) if self.clock else reached
            if best[1] == "command":
                k, _, env, origin = heapq.heappop(self._pending)
                self.out.commands.append((k, env))  # sent in key order: a follower needs them so
                self._handle_command(env, k, origin)
            elif best[1] == "timer":
                self._fire_timer()
            else:
                assert midnight is not None  # chosen only when there is one
                self._move_clock(midnight[1])
                day = local_date(midnight[1], self.settings.tz)
                yesterday = day - timedelta(days=1)
                changes = [MemberChange(m, self.roster[m].get("role"), self.roster[m].get("role"),
                                        is_present(self.roster[m], yesterday), is_present(self.roster[m], day))
                           for m in sorted(self._boundaries.members_on(day))]
                self._reassign(changes, (midnight[0], RANK_MIDNIGHT))
            self._done(best[0])

    def _upstream_limit(self) -> Optional[OrderKey]:
        if not self.watermarks:
            return None
        marks = list(self.watermarks.values())
        return (-1,) if any(m is None for m in marks) else min(marks)  # type: ignore[type-var]

    def _handle_command(self, env: Envelope[Any], key: OrderKey, origin: Origin) -> None:
        if self.ledger.is_duplicate(env):
            self.stats["duplicates"] += 1
            self.out.counts[("duplicates",)] += 1
            return
        self.ledger.remember(env, origin, self.clock)
        self.stats["processed"] += 1
        self._apply(env, key, origin, None)

    def _fire_timer(self) -> None:
        tkey, (slot_key, service, timer_id) = self.timers.pop()  # type: ignore[misc]
        due = instant_of(tkey)
        self._move_clock(due)
        proc = self._by_name[service]
        self._call(proc, slot_key, tkey, _TIMER_ORIGIN, None, timer_id=timer_id)
        self.stats["timers"] += 1

    def _next_midnight(self) -> Optional[tuple[int, datetime]]:
        """The next local midnight with a roster boundary after the clock's local day (its
        microseconds and instant). Asked before every piece of work; the answer holds until the
        clock leaves its local day or a boundary changes, so it is kept until then."""
        if self.clock is None or not self._boundaries.dates:
            return None
        cached = self._midnight
        if cached is not None and cached[0] == self._boundaries.version and micros(self.clock) < cached[1]:
            return cached[2]
        tz = self.settings.tz
        today = local_date(self.clock, tz)
        day = self._boundaries.next_after(today)
        found = None
        if day is not None:
            at = at_local(day, datetime.min.time(), tz)
            found = (micros(at), at)
        tomorrow = at_local(today + timedelta(days=1), datetime.min.time(), tz)
        self._midnight = (self._boundaries.version, micros(tomorrow), found)
        return found

    def _done(self, key: OrderKey) -> None:
        if self.done_key is None or key > self.done_key:
            self.done_key = key
            self._dirty.add(META_SLOT)

    def _move_clock(self, t: datetime) -> None:
        if self.clock is None or t > self.clock:
            self.clock = t
            self._dirty.add(META_SLOT)

    def _reassign(self, changes: list[MemberChange], key: OrderKey) -> None:
        if self.limits.targeted_reassign:
            targets = self.deps.affected(changes, self.roster)
        else:
            targets = sorted((k, s) for k, slot in self.slots.items()
                             if k not in (ROSTER_SLOT, META_SLOT) and not k.startswith(MEMBER_PREFIX)
                             for s in (slot or {}).get("states", {}))
        for slot_key, service in sorted(targets, key=lambda t: (t[0], _rank_of(self._by_name[t[1]]))):
            self._call(self._by_name[service], slot_key, key, _ROSTER_ORIGIN, None)

    # ---- calling a service ----------------------------------------------------------------------

    def _call(self, proc: Processor, slot_key: str, key: OrderKey, origin: Origin, raw: Optional[bytes], *,
              env: Optional[Envelope[Any]] = None, timer_id: Optional[str] = None) -> None:
        """handle (``env``), on_timer (``timer_id``) or else reassign, on a copy of the state: a
        failing call leaves the stored state as it was and sends its input to the DLQ."""
        slot: Optional[Slot] = self.slots.get(slot_key)
        if slot is None:
            slot = new_slot()
        stored = slot.get("states", {}).get(proc.name, {})
        if env is None and timer_id is None and not stored:
            return  # nothing to re-evaluate
        state = json_copy(stored)
        # The clock is set before any rule runs: the first input moves it before its call.
        ctx = Context(now=cast(datetime, self.clock), settings=self.settings, roster=self.roster)
        try:
            if env is not None:
                result = proc.handle(state, env, ctx)
            elif timer_id is not None:
                t = state.get("timers", {}).pop(timer_id)
                timer = Timer(timer_id, parse(t["due_at"]), t["name"], t["payload"])
                result = proc.on_timer(state, timer, ctx)
                self.out.counts[("timers", proc.name, timer.name)] += 1
            else:
                result = proc.reassign(state, ctx)
        except Exception as exc:  # noqa: BLE001 - a bug in one rule must not stop the partition
            self.stats["errors"] += 1
            value = raw if raw is not None else (env.to_bytes() if env is not None else
                                                 _describe_call(slot_key, proc.name, timer_id, stored, self.clock))
            self._dlq(DlqKind.error, f"{proc.name}: {type(exc).__name__}: {exc}", proc.name, origin, value, slot_key)
            if timer_id is None:
                return
            state = json_copy(stored)  # a failing timer is dropped, else it would fire for ever
            state.get("timers", {}).pop(timer_id, None)
            result = Result()
        self._store(slot_key, slot, proc, stored, state, key)
        self._publish(proc, result, key, origin, env, raw)
        if result.erase:
            self._erase(slot_key, proc)

    def _store(self, slot_key: str, slot: Slot, proc: Processor, stored: dict[str, Any],
               state: dict[str, Any], key: OrderKey) -> None:
        old_timers, new_timers = stored.get("timers", {}), state.get("timers", {})
        if state == stored and (slot_key in self.slots or not state):
            return
        keys = slot.setdefault("timers", {}).setdefault(proc.name, {})
        n = 0
        for timer_id, t in new_timers.items():
            before = old_timers.get(timer_id)
            if before is not None and before["due_at"] == t["due_at"] and timer_id in keys:
                continue  # unchanged: keeps its place among same-instant timers
            tkey = timer_key(parse(t["due_at"]), key, _rank_of(proc), n, self.clock)
            n += 1
            keys[timer_id] = list(tkey)
            self.timers.set((slot_key, proc.name, timer_id), tkey)
        for timer_id in [tid for tid in keys if tid not in new_timers]:
            del keys[timer_id]
            self.timers.discard((slot_key, proc.name, timer_id))
        if not keys:  # the slot keeps no empty container either (issue 22, as ``StateCodec.mark``)
            del slot["timers"][proc.name]
            if not slot["timers"]:
                del slot["timers"]
        states = slot.setdefault("states", {})
        if state:
            states[proc.name] = state
        else:
            states.pop(proc.name, None)
        self.slots[slot_key] = slot
        self._dirty.add(slot_key)
        self.deps.update((slot_key, proc.name), _dependencies(proc, state))

    def _erase(self, slot_key: str, proc: Processor) -> None:
        """Drop ``proc``'s state of this VPA; its tasks leave the store (issue 13, erasure). The slot
        goes with its last state (recent event ids included: nothing of the VPA is kept)."""
        slot: Optional[Slot] = self.slots.get(slot_key)
        if not slot:
            return
        state = slot.get("states", {}).pop(proc.name, None) or {}
        # live tasks and the tombstones of closed ones (services.core.tasks): both are in the store
        self.out.erased += sorted({*state.get("tasks", {}), *state.get("closed", {})})
        if slot_key not in self.out.erased_vpas:
            # ... and, for the tasks a retention made it forget, the VPA as a whole
            self.out.erased_vpas.append(slot_key)
        self.out.counts[("erased", proc.name)] += 1
        for timer_id in slot.get("timers", {}).pop(proc.name, {}):
            self.timers.discard((slot_key, proc.name, timer_id))
        self.deps.update((slot_key, proc.name), ())
        if slot.get("states"):
            self.slots[slot_key] = slot
        else:
            del self.slots[slot_key]
        self._dirty.add(slot_key)

    def _publish(self, proc: Processor, result: Result, key: OrderKey, origin: Origin,
                 env: Optional[Envelope[Any]], raw: Optional[bytes]) -> None:
        out = self.out
        out.tasks += result.tasks
        out.counts[("tasks", proc.name)] += len(result.tasks)
        for n, cmd in enumerate(result.commands):
            ckey = child_key(key, _rank_of(proc), n)
            self._pending_seq += 1
            heapq.heappush(self._pending, (ckey, self._pending_seq, cmd, Origin(f"{proc.name} (emitted)")))
        for detail in result.rejections:
            self.stats["rejected"] += 1
            out.counts[("rejected", proc.name, env.type if env else "timer")] += 1
            value = raw if raw is not None else (env.to_bytes() if env is not None else b"")
            self._dlq(DlqKind.rejected, detail, proc.name, origin, value, env.vpa_id if env else None)
        out.counts.update({(name,): n for name, n in result.counts.items()})

    def _dlq(self, kind: DlqKind, detail: str, service: str, origin: Origin, value: bytes,
             key: Optional[str]) -> None:
        self.out.dlq.append(DlqRecord(kind, detail, service, origin, value, key))
        self.out.counts[("dlq", kind.value)] += 1


def _rank_of(proc: Processor) -> int:
    return proc.rank


def _dependencies(proc: Processor, state: dict[str, Any]) -> set[str]:
    return set(proc.roster_dependencies(state))


def _describe_call(slot_key: str, service: str, timer_id: Optional[str], state: dict[str, Any],
                   now: Optional[datetime]) -> bytes:
    """What the DLQ gets for a failed timer or re-evaluation: enough to find and redo it."""
    timer = state.get("timers", {}).get(timer_id) if timer_id else None
    return json.dumps({"vpa_id": slot_key, "service": service, "timer_id": timer_id, "timer": timer,
                       "now": now.isoformat() if now else None}).encode()


def _human(d: timedelta) -> str:
    hours = d / timedelta(hours=1)
    return f"{hours:g} h" if hours >= 1 else f"{d / timedelta(minutes=1):g} min"
