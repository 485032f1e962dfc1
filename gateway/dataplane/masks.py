"""The masking shapes, value by value (specs/policy-input.md, "Masking").

The reference the vectorised masks of gateway/dataplane/obligations.py are held to, and what they
use on batches too small for Arrow's calls to pay (a page of a few rows).
"""

from typing import Any

# Each shape keeps at most what is shown here and replaces the rest; null stays null.
KINDS = ("name", "phone", "id_card", "email", "text")
HIDDEN = "***"  # what replaces free text, whatever its length


def _mask_phone(text: str) -> str:
    """138****5678: the first 3 and last 4 of 11 or more characters; shorter: all hidden."""
    if len(text) >= 11:
        return text[:3] + "*" * (len(text) - 7) + text[-4:]
    return "*" * len(text)


def _mask_id_card(text: str) -> str:
    """1****************9: the first and last character of 15 or more; shorter: all hidden."""
    if len(text) >= 15:
        return text[0] + "*" * (len(text) - 2) + text[-1]
    return "*" * len(text)


def _mask_name(text: str) -> str:
    """王**: the first character (the surname, or its first character) and two stars."""
    return text[0] + "**" if len(text) >= 2 else "*"


def _mask_email(text: str) -> str:
    """z***@example.cn: the local part's first character and the domain."""
    local, at, domain = text.partition("@")
    return f"{local[0]}***@{domain}" if at and local and domain else HIDDEN


SHAPES = {
    "name": _mask_name,
    "phone": _mask_phone,
    "id_card": _mask_id_card,
    "email": _mask_email,
    "text": lambda _text: HIDDEN,
}


def mask_value(value: Any, kind: str = "text") -> Any:
    """Return `value` masked to the shape of its kind (unknown kinds: fully hidden, as text)."""
    if value is None:
        return None
    return SHAPES.get(kind, SHAPES["text"])(str(value))
