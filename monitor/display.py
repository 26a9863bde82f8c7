"""Small pure helpers for text shown to people: alerts, the report, feeds and tables."""

from __future__ import annotations

import re

# strftime("%b") follows the process locale; what people read must read the same everywhere.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_SAFE_LINK = re.compile(r"https?://\S+", re.IGNORECASE)


def one_line(text: str) -> str:
    """``text`` with every run of whitespace, line breaks included, made one space."""
    return " ".join(text.split())


def shorten(text: str, limit: int, *, at_word: bool = True) -> str:
    """``text`` cut to at most ``limit`` characters, "…" included, preferably between words."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # The cut already falls between words when the next character is a space.
    if at_word and " " in cut and not text[limit - 1].isspace():
        cut = cut.rsplit(" ", 1)[0]
    return cut.rstrip(" ,;:.–—-") + "…"


def safe_href(url: str) -> str | None:
    """``url`` (trimmed) when it is an http(s) address, the only kind a link may point to (never
    ``javascript:`` or ``data:``), else None."""
    trimmed = url.strip()
    return trimmed if _SAFE_LINK.fullmatch(trimmed) else None


def level_text(level: int | None, label: str | None) -> str | None:
    """A level with the publisher's label: "4 (Do not travel)", "4", the label alone, or None."""
    label = one_line(label or "") or None
    if level is None:
        return label
    return f"{level} ({label})" if label else str(level)


def level_change(
    before: tuple[int | None, str | None], after: tuple[int | None, str | None], *, unchanged: str
) -> str | None:
    """ "3 (…) → 4 (…)" for two (level, label) pairs, the level followed by ``unchanged`` when it
    did not move, or None when neither side is known."""
    old, new = level_text(*before), level_text(*after)
    if old is None and new is None:
        return None
    if old == new:
        return f"{new}{unchanged}"
    return f"{old or 'unknown'} → {new or 'unknown'}"
