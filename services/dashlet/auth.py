"""Bearer tokens -> (initials, role).

Configured as ``VPA_DASHLET_TOKENS=token=AB:at,other=CD:vpa_manager``; a token may be given as
its SHA-256 instead (``sha256:<64 hex digits>=AB:at``), so the configuration need not hold it.
Every comparison is between SHA-256 digests in constant time, whichever way a token was given.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass
from typing import Mapping, Optional

ROLES = ("at", "vpa_manager")
HASH_PREFIX = "sha256:"
_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_INITIALS = re.compile(r"^[A-Z]{2,4}$")


@dataclass(frozen=True)
class Principal:
    initials: str
    role: str  # at | vpa_manager


def parse_tokens(spec: str) -> dict[str, Principal]:
    """``token=AB:at`` entries, comma separated; a key ``sha256:<hex>`` is a token's digest."""
    tokens: dict[str, Principal] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        token, _, who = part.rpartition("=")  # initials and role never hold "=", a token might
        initials, _, role = who.partition(":")
        if not token or not _INITIALS.match(initials) or role not in ROLES:
            raise ValueError(f"bad VPA_DASHLET_TOKENS entry {part!r}: want token=INITIALS:at|vpa_manager "
                             "(INITIALS: 2 to 4 capital letters; token or sha256:<64 hex digits>)")
        if token.startswith(HASH_PREFIX) and not _HEX64.match(token[len(HASH_PREFIX):]):
            raise ValueError(f"bad VPA_DASHLET_TOKENS entry {part!r}: sha256: needs 64 hex digits")
        tokens[token] = Principal(initials, role)
    return tokens


def tokens_from_env() -> dict[str, Principal]:
    return parse_tokens(os.environ.get("VPA_DASHLET_TOKENS", ""))


def hash_token(token: str) -> str:
    """What to put in ``VPA_DASHLET_TOKENS`` instead of the token itself."""
    return HASH_PREFIX + hashlib.sha256(token.encode("utf-8")).hexdigest()


def _digest(key: str) -> bytes:
    if key.startswith(HASH_PREFIX) and _HEX64.match(key[len(HASH_PREFIX):]):
        return bytes.fromhex(key[len(HASH_PREFIX):])
    return hashlib.sha256(key.encode("utf-8")).digest()


class TokenTable:
    """The configured tokens as digests; ``lookup`` takes an ``Authorization`` header."""

    def __init__(self, tokens: Mapping[str, Principal]) -> None:
        self._entries = [(_digest(k), who) for k, who in tokens.items()]

    def lookup(self, header: Optional[str]) -> Optional[Principal]:
        if not header:
            return None
        scheme, _, given = header.strip().partition(" ")
        given = given.strip()
        if scheme.lower() != "bearer" or not given:
            return None
        try:
            digest = hashlib.sha256(given.encode("utf-8", "surrogateescape")).digest()
        except UnicodeEncodeError:
            return None
        found = None
        for known, who in self._entries:  # no early exit: the time does not tell which one matched
            if hmac.compare_digest(known, digest):
                found = who
        return found


def authenticate(tokens: Mapping[str, Principal], header: Optional[str]) -> Optional[Principal]:
    return TokenTable(tokens).lookup(header)
