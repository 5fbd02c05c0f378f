"""German words for the contract's codes where they appear in texts for people (rejections)."""
from __future__ import annotations

STATUS = {"waiting": "wartend", "open": "offen", "done": "erledigt", "cancelled": "abgebrochen"}


def status(code: str) -> str:
    return STATUS.get(code, code)

ROLE = {"at": "AT-Mitglied", "vpa_manager": "VPA Manager", "system": "System"}


def role(code: str | None) -> str:
    return ROLE.get(code or "", code or "unbekannt")
