"""Bearer tokens -> (initials, role). Configured as ``VPA_DASHLET_TOKENS=token=AB:at,other=CD:vpa_manager``."""
from __future__ import annotations

import hmac
import os
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class Principal:
    initials: str
    role: str  # at | vpa_manager


def parse_tokens(spec: str) -> dict[str, Principal]:
    tokens: dict[str, Principal] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        token, _, who = part.partition("=")
        initials, _, role = who.partition(":")
        if not token or not initials or role not in ("at", "vpa_manager"):
            raise ValueError(f"bad VPA_DASHLET_TOKENS entry {part!r}: want token=INITIALS:at|vpa_manager")
        tokens[token] = Principal(initials, role)
    return tokens


def tokens_from_env() -> dict[str, Principal]:
    return parse_tokens(os.environ.get("VPA_DASHLET_TOKENS", ""))


def authenticate(tokens: dict[str, Principal], header: Optional[str]) -> Optional[Principal]:
    if not header or not header.startswith("Bearer "):
        return None
    given = header[len("Bearer "):].strip()
    for token, who in tokens.items():
        if hmac.compare_digest(token, given):  # constant time
            return who
    return None
