"""Carrier notices: what a notice announces, which countries it names, and the dates it
carries. Everything here is pure.

* :func:`notice_status` reads a notice's status from its wording with the phrase table in
  ``monitor/data/carrier_vocabulary.yaml``; reversals and lifts ("decided not to suspend",
  "levée de la suspension") are resumptions, not suspensions.
* :class:`Gazetteer` finds the countries a text names with ``monitor/data/country_synonyms.yaml``
  plus a source's own ``synonyms``.
* :func:`find_date` / :func:`parse_iso` read written and ISO dates as aware UTC.

Matching works on folded text: case, accents and punctuation are ignored and words are whole
tokens, so "Mali" never matches inside "Somalia". Where phrases overlap, the one starting first
wins, and among those starting at the same word the longest.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import Any, Generic, TypeVar

import yaml

from monitor.models import NoticeStatus

# --- folding and phrase tables ----------------------------------------------------------------

GAP = "*"  # in a phrase: up to GAP_WORDS words of the same sentence
GAP_WORDS = 6
_STOP = "."
_LIGATURES = str.maketrans({"œ": "oe", "æ": "ae", "ø": "o", "ł": "l", "đ": "d", "ı": "i"})
_WORD = re.compile(r"[^\W_]+")
_WORD_OR_STOP = re.compile(r"[^\W_]+|[.!?;\n]")


def strip_accents(text: str) -> str:
    """Lower-cased text without diacritics; punctuation kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return bare.casefold().translate(_LIGATURES)


def fold(text: str, *, sentences: bool = False) -> tuple[str, ...]:
    """The words of ``text``, lower-cased, without accents or punctuation.

    With ``sentences``, sentence ends (``. ! ? ;`` and line breaks) stay as ``"."`` tokens so
    that a phrase gap never spans two sentences."""
    bare = strip_accents(text)
    if not sentences:
        return tuple(_WORD.findall(bare))
    words = ("." if token in ".!?;\n" else token for token in _WORD_OR_STOP.findall(bare))
    folded: list[str] = []
    for word in words:
        if not (word == _STOP and (not folded or folded[-1] == _STOP)):
            folded.append(word)
    return tuple(folded)


def fold_phrase(phrase: str) -> tuple[str, ...]:
    """A phrase as tokens; ``*`` becomes a gap. Raises ValueError for an empty or edge gap."""
    tokens: list[str] = []
    for index, part in enumerate(phrase.split(GAP)):
        if index:
            tokens.append(GAP)
        tokens.extend(fold(part))
    if not tokens or GAP in (tokens[0], tokens[-1]):
        raise ValueError(f"{phrase!r} is not a usable phrase (no words, or a gap at one end)")
    return tuple(tokens)


V = TypeVar("V")


class PhraseTable(Generic[V]):
    """Phrases (token tuples, possibly with gaps) mapped to values; finds them in folded text."""

    def __init__(self, entries: Iterable[tuple[tuple[str, ...], V]]) -> None:
        by_first: dict[str, list[tuple[tuple[str, ...], V]]] = {}
        for phrase, value in entries:
            by_first.setdefault(phrase[0], []).append((phrase, value))
        for candidates in by_first.values():
            # Longest first: "guinea bissau" is tried before "guinea".
            candidates.sort(key=lambda c: (-sum(t != GAP for t in c[0]), -len(" ".join(c[0])), c[0]))
        self._by_first = by_first

    def find(self, tokens: Sequence[str]) -> list[V]:
        """The values of the phrases found, left to right, overlapping matches dropped."""
        found: list[V] = []
        index = 0
        while index < len(tokens):
            for phrase, value in self._by_first.get(tokens[index], ()):
                end = _match(tokens, index, phrase)
                if end is not None:
                    found.append(value)
                    index = end
                    break
            else:
                index += 1
        return found


def _match(tokens: Sequence[str], start: int, phrase: Sequence[str]) -> int | None:
    """The end index of ``phrase`` matched at ``start``, or None."""
    position = start
    for offset, token in enumerate(phrase):
        if token == GAP:
            for skip in range(GAP_WORDS + 1):
                skipped = position + skip - 1
                if skip and (skipped >= len(tokens) or tokens[skipped] == _STOP):
                    return None
                end = _match(tokens, position + skip, phrase[offset + 1 :])
                if end is not None:
                    return end
            return None
        if position >= len(tokens) or tokens[position] != token:
            return None
        position += 1
    return position


@cache
def _load(name: str) -> Any:
    """A data file of ``monitor/data``; callers must not mutate what it returns."""
    text = resources.files("monitor").joinpath("data", name).read_text(encoding="utf-8")
    return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


# --- status -----------------------------------------------------------------------------------

# Highest first: a lift quotes the suspension it ends; a suspension mentions delays and costs.
PRECEDENCE = (
    NoticeStatus.RESUMPTION,
    NoticeStatus.SUSPENSION,
    NoticeStatus.SURCHARGE,
    NoticeStatus.DISRUPTION,
    NoticeStatus.INFO,
)


@cache
def vocabulary() -> PhraseTable[NoticeStatus]:
    """The phrase table of ``carrier_vocabulary.yaml``."""
    data = _load("carrier_vocabulary.yaml")
    entries = [
        (fold_phrase(phrase), NoticeStatus(status))
        for status, languages in data.items()
        for phrases in languages.values()
        for phrase in phrases
    ]
    return PhraseTable(entries)


def statuses_found(*texts: str) -> list[NoticeStatus]:
    """Every status phrase found in ``texts``, in order (for tests and explanations)."""
    table = vocabulary()
    return [status for text in texts for status in table.find(fold(text, sentences=True))]


def notice_status(*texts: str) -> NoticeStatus:
    """The status a notice announces: the highest (see PRECEDENCE) found in its title and text;
    ``info`` when no phrase is found."""
    found = set(statuses_found(*texts))
    return next((status for status in PRECEDENCE if status in found), NoticeStatus.INFO)


# --- relevance --------------------------------------------------------------------------------

Synonyms = Mapping[str, Sequence[str]]


@dataclass(frozen=True)
class Gazetteer:
    """Finds the ISO codes of the countries a text names."""

    table: PhraseTable[frozenset[str]]

    def countries(self, *texts: str) -> tuple[str, ...]:
        """The codes named in ``texts``, sorted."""
        return tuple(
            sorted({code for text in texts for codes in self.table.find(fold(text)) for code in codes})
        )


@cache
def country_synonyms() -> dict[str, dict[str, list[str]]]:
    """``countries`` of ``country_synonyms.yaml``: code -> {en, fr, capital, places}."""
    countries: dict[str, dict[str, list[str]]] = _load("country_synonyms.yaml")["countries"]
    return countries


def country_name(code: str) -> str:
    """The English name of a country, as the records' titles show it."""
    entry = country_synonyms().get(code)
    return entry["en"][0] if entry else code


def gazetteer(extra: Synonyms | None = None) -> Gazetteer:
    """The built-in table plus ``extra`` (code -> phrases), which adds to it."""
    frozen = tuple(sorted((code, tuple(phrases)) for code, phrases in (extra or {}).items()))
    return _gazetteer(frozen)


@cache
def _gazetteer(extra: tuple[tuple[str, tuple[str, ...]], ...]) -> Gazetteer:
    codes: dict[tuple[str, ...], set[str]] = {}
    for phrase in _load("country_synonyms.yaml")["not_countries"]:
        codes[fold_phrase(phrase)] = set()
    for code, entry in country_synonyms().items():
        for phrase in (name for names in entry.values() for name in names):
            codes.setdefault(fold_phrase(phrase), set()).add(code)
    for code, phrases in extra:
        for phrase in phrases:
            codes.setdefault(fold_phrase(phrase), set()).add(code)
    return Gazetteer(PhraseTable((phrase, frozenset(found)) for phrase, found in codes.items()))


# --- dates ------------------------------------------------------------------------------------

_MONTH_NAMES = (
    "january jan janvier janv", "february feb fevrier fevr fev", "march mar mars", "april apr avril avr",
    "may mai", "june jun juin", "july jul juillet juil", "august aug aout", "september sep sept septembre",
    "october oct octobre", "november nov novembre", "december dec decembre",
)  # fmt: skip
MONTHS = {name: number for number, names in enumerate(_MONTH_NAMES, start=1) for name in names.split()}
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_DATE_PATTERNS = (
    ("ymd", re.compile(r"(?<!\d)(\d{4})-(\d{1,2})-(\d{1,2})(?!\d)")),
    ("numeric", re.compile(r"(?<![\d/.])(\d{1,2})[/.](\d{1,2})[/.](\d{4})(?!\d)")),
    ("mdy", re.compile(rf"\b({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})(?!\d)")),
    ("dmy", re.compile(rf"\b(\d{{1,2}})(?:st|nd|rd|th|er)?\s+({_MONTH})\.?,?\s+(\d{{4}})(?!\d)")),
)
DATE_LINE_MAX = 60  # a date on a line this short is the item's date, not one in its prose


def parse_iso(value: str) -> datetime | None:
    """An ISO 8601 date or date-time (``time[datetime]``) as aware UTC; None when invalid.

    A date alone is midnight UTC; a time without offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def find_date(text: str, *, numeric: str = "mdy", month_hint: int | None = None) -> datetime | None:
    """The first date written in ``text``, midnight UTC; None when there is none.

    Understands ``2025-11-06``, ``11/06/2025`` (read as ``numeric``, "mdy" or "dmy", unless
    only the other reading falls in ``month_hint``), ``November 6th, 2025``, ``Thursday,
    November 06, 2025``, ``6 November 2025`` and ``6 novembre 2025``."""
    bare = strip_accents(text)
    found: list[tuple[int, datetime]] = []
    for name, pattern in _DATE_PATTERNS:
        for match in pattern.finditer(bare):
            value = _date_of(name, match.groups(), numeric, month_hint)
            if value is not None:
                found.append((match.start(), value))
                break
    return min(found, key=lambda pair: pair[0])[1] if found else None


def _date_of(kind: str, groups: Sequence[str], numeric: str, hint: int | None) -> datetime | None:
    if kind == "ymd":
        year, month, day = (int(g) for g in groups)
    elif kind == "mdy":
        month, day, year = MONTHS[groups[0]], int(groups[1]), int(groups[2])
    elif kind == "dmy":
        day, month, year = int(groups[0]), MONTHS[groups[1]], int(groups[2])
    else:
        first, second, year = (int(g) for g in groups)
        month, day = (first, second) if numeric == "mdy" else (second, first)
        if hint is not None and month != hint and day == hint:
            month, day = day, month
    try:
        return datetime(year, month, day, tzinfo=UTC)
    except ValueError:
        return None


def is_date_line(line: str) -> bool:
    return len(line) <= DATE_LINE_MAX and find_date(line, numeric="mdy") is not None
