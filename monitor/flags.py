"""Read a record's flags (leave now, staff departure, embassy closed) from the publisher's prose.

Pure functions over plain text. The phrases live in ``monitor/data/flags.yaml``: regular
expressions per flag and language, matched one sentence at a time, plus ``void`` expressions
for lifts, negations and hypotheticals. A sentence that matches a flag phrase and a void
expression does not set the flag, so "the ordered departure was lifted" or "be prepared to
depart immediately" leave the record's flags as they are.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

import yaml

from monitor.models import StaffDeparture

_ABBREVIATION = re.compile(r"\b(?:[A-Za-z]\.){2,}")  # U.S., U.K., e.g., i.e.
_TITLE_ABBREVIATION = re.compile(r"\b(St|Mt|Dr|Mr|Mrs|Ms|No|Gen|Col|Lt)\.", re.IGNORECASE)
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


@dataclass(frozen=True)
class Flags:
    """The flags a text sets; the default is "nothing said"."""

    leave_now: bool = False
    staff_departure: StaffDeparture = StaffDeparture.NONE
    embassy_closed: bool = False

    def __or__(self, other: Flags) -> Flags:
        """The flags of both texts: any leave-now or closure, the stronger staff departure."""
        order = (StaffDeparture.NONE, StaffDeparture.AUTHORIZED, StaffDeparture.ORDERED)
        return Flags(
            leave_now=self.leave_now or other.leave_now,
            staff_departure=max(self.staff_departure, other.staff_departure, key=order.index),
            embassy_closed=self.embassy_closed or other.embassy_closed,
        )


@dataclass(frozen=True)
class _Phrases:
    leave_now: tuple[re.Pattern[str], ...]
    ordered: tuple[re.Pattern[str], ...]
    authorized: tuple[re.Pattern[str], ...]
    embassy_closed: tuple[re.Pattern[str], ...]
    void: tuple[re.Pattern[str], ...]


def _compile(by_language: dict[str, list[str]]) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, re.IGNORECASE) for patterns in by_language.values() for p in patterns)


@cache
def _phrases() -> _Phrases:
    text = resources.files("monitor").joinpath("data/flags.yaml").read_text(encoding="utf-8")
    data: dict[str, Any] = yaml.safe_load(text)
    return _Phrases(
        leave_now=_compile(data["leave_now"]),
        ordered=_compile(data["staff_departure"]["ordered"]),
        authorized=_compile(data["staff_departure"]["authorized"]),
        embassy_closed=_compile(data["embassy_closed"]),
        void=_compile(data["void"]),
    )


def sentences(text: str) -> list[str]:
    """Split text into sentences; abbreviations lose their dots first ("U.S." -> "US")."""
    text = _ABBREVIATION.sub(lambda m: m.group(0).replace(".", ""), text)
    text = _TITLE_ABBREVIATION.sub(r"\1", text)
    return [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]


def _says(patterns: tuple[re.Pattern[str], ...], sentence: str) -> bool:
    return any(p.search(sentence) for p in patterns)


def read_flags(text: str) -> Flags:
    """The flags ``text`` sets. A flag counts only in a sentence without a void expression."""
    phrases = _phrases()
    live = [s for s in sentences(text) if not _says(phrases.void, s)]
    if any(_says(phrases.ordered, s) for s in live):
        staff = StaffDeparture.ORDERED
    elif any(_says(phrases.authorized, s) for s in live):
        staff = StaffDeparture.AUTHORIZED
    else:
        staff = StaffDeparture.NONE
    return Flags(
        leave_now=any(_says(phrases.leave_now, s) for s in live),
        staff_departure=staff,
        embassy_closed=any(_says(phrases.embassy_closed, s) for s in live),
    )


@dataclass(frozen=True)
class CallToLeave:
    """A call on nationals to leave a named country, from a kind's own phrase table.

    A sentence matches when it has a ``leave`` expression (its ``{country}`` placeholder stands
    for the country's names), a ``call`` and no ``negation``."""

    call: re.Pattern[str]
    leave: str
    negation: re.Pattern[str]

    @classmethod
    def from_table(cls, table: dict[str, list[str]]) -> CallToLeave:
        """From a YAML table with the keys ``call``, ``leave`` and ``negation`` (lists of regexes)."""
        return cls(
            call=re.compile("|".join(table["call"]), re.IGNORECASE),
            leave="|".join(table["leave"]),
            negation=re.compile("|".join(table["negation"]), re.IGNORECASE),
        )

    def leave_pattern(self, names: tuple[str, ...]) -> re.Pattern[str]:
        return _leave_pattern(self.leave, names)

    def matches(self, sentence: str, names: tuple[str, ...]) -> bool:
        return bool(
            self.leave_pattern(names).search(sentence)
            and self.call.search(sentence)
            and not self.negation.search(sentence)
        )


@functools.lru_cache(maxsize=1024)
def _leave_pattern(leave: str, names: tuple[str, ...]) -> re.Pattern[str]:
    names = tuple(name for name in names if name)
    country = "(?:" + "|".join(re.escape(name) for name in names) + ")" if names else "(?!)"
    return re.compile(leave.replace("{country}", country), re.IGNORECASE)
