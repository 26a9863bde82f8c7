"""Small pure helpers for text shown to people: alerts, the report, feeds and tables."""

from __future__ import annotations

import re

# strftime("%b") follows the process locale; what people read must read the same everywhere.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

_SAFE_LINK = re.compile(r"https?://\S+", re.IGNORECASE)
# C0 and C1 control characters but tab and line feed, and DEL: a terminal obeys them (ESC starts
# sequences that move the cursor, clear the screen or set the window title).
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """``text`` with control characters shown as U+FFFD: safe to print on a terminal."""
    return _CONTROL.sub("\ufffd", text)


# Markdown's ASCII punctuation that may start or end formatting, links, code, tables or headings;
# a backslash before it makes it a plain character (CommonMark, and Slack through apprise). HTML's
# three are written as entities, which every Markdown reads as the character.
_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~=])")
_MARKDOWN_ENTITIES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
# A link left as it is, so that it stays a link: no character that could close or open markup.
_PLAIN_LINK = re.compile(r"https?://[A-Za-z0-9._:/?#@!$%',;=-]+", re.IGNORECASE)
_MENTION = re.compile(r"@(?=\w)")
# Spaces opening a line: four make a code block, which shows its escapes as they are.
_INDENT = re.compile(r"^[ \t]+", re.MULTILINE)


def markdown_text(text: str) -> str:
    """``text`` as Markdown that renders as exactly that text: every character that could be
    formatting is escaped (but in plain http(s) links, which stay links), a line's indentation is
    made of no-break spaces, and "@" before a word is followed by a word joiner (U+2060), so
    that "@everyone" or "@here" notifies nobody."""
    parts = []
    last = 0
    for link in _PLAIN_LINK.finditer(text):
        parts.append(_escape_markdown(text[last : link.start()]))
        parts.append(link.group())
        last = link.end()
    parts.append(_escape_markdown(text[last:]))
    # No-break spaces keep the indentation without making a code block.
    return _INDENT.sub(lambda m: "\u00a0" * len(m.group().expandtabs(4)), "".join(parts))


def _escape_markdown(text: str) -> str:
    escaped = _MARKDOWN_SPECIAL.sub(r"\\\1", text).translate(_MARKDOWN_ENTITIES)
    return _MENTION.sub("@\u2060", escaped)


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
