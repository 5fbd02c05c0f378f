"""Deterministic ids (DESIGN 5.6): derived from the events that caused them, never random."""
from __future__ import annotations

import hashlib
from typing import Iterable, Iterator


def case_id(kind: str, vpa_id: str, subject: str) -> str:
    return f"case:{kind}:{vpa_id}:{subject}"


def reminder_task_id(reminder_id: str) -> str:
    return f"reminder:{reminder_id}"


def follow_up_id(case_task_id: str) -> str:
    """The reminder_id of an inactivity case's automatic reminder (DESIGN 5.6)."""
    return f"follow-up:{case_task_id}"


def journey_task_id(vpa_id: str, stage: str) -> str:
    return f"journey:{vpa_id}:{stage}"


def command_id(service: str, *parts: str) -> str:
    """event_id of a command a service emits, stable across redelivery and replay."""
    return f"{service}:" + ":".join(parts)


def issued_by(event_id: str, service: str) -> bool:
    """Was this command emitted by ``service`` (see ``command_id``)?"""
    return event_id.startswith(f"{service}:")


def rendezvous_score(key: str, initials: str) -> int:
    """DESIGN 5.7: first 8 bytes, big-endian, of SHA-256 over key NUL initials."""
    return int.from_bytes(_digest8(f"{key}\0".encode(), initials), "big")


def rendezvous_ranks(key: str, names: Iterable[str]) -> Iterator[tuple[bytes, str]]:
    """(rank, initials) for each of ``names``: the rank is the 8 bytes ``rendezvous_score`` reads,
    which as bytes order exactly as the score does (big-endian) and are cheaper to compare; a pick
    over thousands of members makes these, not the integers."""
    prefix = f"{key}\0".encode()
    for name in names:
        yield _digest8(prefix, name), name


def rendezvous_rank(key: str, initials: str) -> tuple[bytes, str]:
    """One member's (rank, initials), as ``rendezvous_ranks`` gives them."""
    return _digest8(f"{key}\0".encode(), initials), initials


def _digest8(prefix: bytes, initials: str) -> bytes:
    return hashlib.sha256(prefix + initials.encode()).digest()[:8]


def rendezvous_pick(key: str, candidates: list[str]) -> str | None:
    if not candidates:
        return None
    return max(rendezvous_ranks(key, candidates))[1]
