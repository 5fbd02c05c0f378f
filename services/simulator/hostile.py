"""Hostile lines for reliability tests (``--bad-ratio``): each one is invalid per ``schemas/``.

Every kind must end as *invalid* (``vpa.dlq``), never as an unknown type or a duplicate, so a
test can count them. They come from a random source of their own: the valid lines of a run are
the same with or without them. A hostile line carries the time of the line before it where it has
a time at all, so the output stays in time order.
"""
from __future__ import annotations

import json
import random
from typing import Callable, Iterator

from services.simulator.config import SimConfig


def _dump(obj) -> bytes:  # noqa: ANN001
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _with(env: dict, n: int, **changes) -> dict:
    out = dict(env, event_id=f"bad-{n}")
    out.update(changes)
    return out


def _without(env: dict, n: int, key: str) -> dict:
    out = _with(env, n)
    out.pop(key, None)
    return out


KINDS: tuple[tuple[str, Callable[[dict, int], bytes]], ...] = (
    ("not JSON", lambda env, n: b"this is not JSON at all"),
    ("truncated JSON", lambda env, n: _dump(_with(env, n))[: max(1, len(_dump(env)) // 2)]),
    ("invalid UTF-8", lambda env, n: b"\xff\xfe" + _dump(_with(env, n))[2:]),
    ("a JSON array", lambda env, n: b"[1,2,3]"),
    ("an empty object", lambda env, n: b"{}"),
    ("no type", lambda env, n: _dump(_without(env, n, "type"))),
    ("type not a string", lambda env, n: _dump(_with(env, n, type=42))),
    ("no occurred_at", lambda env, n: _dump(_without(env, n, "occurred_at"))),
    ("occurred_at without offset", lambda env, n: _dump(_with(env, n, occurred_at=env["occurred_at"][:19]))),
    ("occurred_at not a date", lambda env, n: _dump(_with(env, n, occurred_at="gestern um neun"))),
    ("schema_version 2", lambda env, n: _dump(_with(env, n, schema_version=2))),
    ("vpa event without vpa_id", lambda env, n: _dump(_with(
        env, n, type="vpa.activity_seen", vpa_id=None, actor=None, data={"channel": "web"}))),
    ("command without actor", lambda env, n: _dump(_with(
        env, n, type="cmd.case.resolve", vpa_id=env.get("vpa_id") or "V-1001", actor=None,
        data={"task_id": "case:schedule_change:V-1001:x", "note": "ohne Absender"}))),
    ("actor of an unknown role", lambda env, n: _dump(_with(
        env, n, type="cmd.case.resolve", vpa_id=env.get("vpa_id") or "V-1001",
        actor={"initials": "AB", "role": "admin"}, data={"task_id": "case:x", "note": None}))),
    ("date in German format", lambda env, n: _dump(_with(
        env, n, type="vpa.absence_registered", vpa_id=env.get("vpa_id") or "V-1001", actor=None,
        data={"absence_id": f"bad-{n}", "starts_on": "24.12.2026", "ends_on": "31.12.2026"}))),
    ("ends_on before starts_on", lambda env, n: _dump(_with(
        env, n, type="vpa.absence_registered", vpa_id=env.get("vpa_id") or "V-1001", actor=None,
        data={"absence_id": f"bad-{n}", "starts_on": "2026-12-31", "ends_on": "2026-12-01"}))),
    ("class E", lambda env, n: _dump(_with(
        env, n, type="vpa.class_changed", vpa_id=env.get("vpa_id") or "V-1001", actor=None,
        data={"class": "E", "previous": "A", "rising_star": False}))),
    ("a flag as a string", lambda env, n: _dump(_with(
        env, n, type="vpa.schedule_changed", vpa_id=env.get("vpa_id") or "V-1001", actor=None,
        data={"accepts_new_customers": "ja", "accepts_orders": True}))),
    ("lower-case initials", lambda env, n: _dump(_with(
        env, n, type="roster.member_upserted", vpa_id=None, actor=None,
        data={"initials": "ab", "name": "Anna Bauer", "role": "at", "deputy": None, "active": True}))),
    ("data missing", lambda env, n: _dump(_without(_with(env, n, type="vpa.offboarded"), n, "data"))),
)


class Hostile:
    def __init__(self, cfg: SimConfig) -> None:
        self._rng = random.Random(cfg.seed * 1_000_003 + 17)
        ratio = cfg.bad_ratio
        self._chance = ratio / (1.0 - ratio)  # per valid line, so hostile lines make up ``ratio`` of all
        self._n = 0

    def after(self, env: dict) -> Iterator[bytes]:
        """Zero or more hostile lines to put after the valid line ``env``."""
        chance = self._chance
        while chance > 0:
            if self._rng.random() >= min(chance, 1.0):
                return
            chance -= 1.0
            self._n += 1
            yield self._rng.choice(KINDS)[1](env, self._n)
