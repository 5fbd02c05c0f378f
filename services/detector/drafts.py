"""Message drafts for the assistant, and the one guard every draft passes (DESIGN 2, 5.21).

A class is never shown to an assistant: a draft must not contain a standalone capital letter
A to D, nor the words "Klasse", "class" or "Rising Star" in any case. ``draft_is_safe`` is the
only check; every draft builder runs it and leaves the first name out when the name would trip it.
"""
from __future__ import annotations

import re
import unicodedata
from typing import Optional

# Checked on the NFKC-normalised text with format characters (zero-width spaces etc.) removed,
# so look-alikes such as "Ｋｌａｓｓｅ" or "Kla\u200bsse" are caught too.
_CLASS_LETTER = re.compile(r"(?<![^\W\d_])[A-D](?![^\W\d_])")  # a capital A-D not inside a word
_WORDS = re.compile(r"klasse|class|rising[\s_\-]*star")  # on the casefolded text: any case, any form


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    return "".join(ch for ch in text if unicodedata.category(ch) != "Cf")


def draft_is_safe(text: str) -> bool:
    """True when ``text`` may be shown to an assistant (DESIGN 5.21)."""
    norm = _normalise(text)
    if _CLASS_LETTER.search(norm):
        return False
    return _WORDS.search(norm.casefold()) is None


def first_name(name: Optional[str]) -> Optional[str]:
    """The first word of the VPA's name, or None."""
    if not name:
        return None
    parts = "".join(ch if ch.isprintable() else " " for ch in name).split()
    return parts[0] if parts else None


def _with_greeting(name: Optional[str], body: str) -> str:
    first = first_name(name)
    if first:
        draft = f"Hallo {first},\n\n{body}"
        if draft_is_safe(draft):
            return draft
    return f"Hallo,\n\n{body}"  # a first name that would trip the guard is left out


_PRAISE = (
    "wir möchten dir einfach einmal Danke sagen: Deine Entwicklung in der letzten Zeit ist "
    "wirklich toll, und deine Kunden profitieren spürbar von deinem Einsatz. Mach weiter so!\n\n"
    "Viele Grüße\ndein Team"
)

_CONTACT = (
    "uns ist aufgefallen, dass du seit kurzem nicht mehr aktiv warst. Ist bei dir alles in Ordnung? "
    "Wenn wir dich bei etwas unterstützen können, melde dich gern jederzeit bei uns."
)
_CONTACT_COMPLAINT = " Außerdem hat sich ein Kunde bei uns gemeldet; lass uns dazu bitte kurz sprechen."
_SIGN_OFF = "\n\nViele Grüße\ndein Team"


def praise_draft(name: Optional[str]) -> str:
    """Praise for a good development; never names the class (it does not even know it)."""
    return _checked(_with_greeting(name, _PRAISE))


def contact_draft(name: Optional[str], complaint: bool = False) -> str:
    """Asks an inactive assistant whether everything is fine."""
    body = _CONTACT + (_CONTACT_COMPLAINT if complaint else "") + _SIGN_OFF
    return _checked(_with_greeting(name, body))


def _checked(draft: str) -> str:
    if not draft_is_safe(draft):  # the templates themselves are safe; this keeps them so
        raise ValueError("draft for the assistant would reveal the class")
    return draft
