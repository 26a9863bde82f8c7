"""Which lines of a carrier's text concern a country.

Pure. A carrier page or notice names the countries it is about with their names, capitals,
ports and transit corridors (:func:`monitor.notices.gazetteer`, plus the German names of
every country); the lines about other countries are left out before two versions are compared,
so that a change to a notice about another country is noise.
"""

from __future__ import annotations

import gettext
from collections.abc import Iterable, Sequence
from functools import cache

import pycountry

from monitor.notices import Gazetteer, gazetteer
from monitor.sentences import is_dateline

_TITLE_MAX = 120  # a line this short, not ending like a sentence, can be a notice title
_AMBIGUOUS_NAMES = frozenset({"Island"})  # Iceland in German, an everyday word in English


def relevant_lines(lines: Sequence[str], country: str) -> list[str]:
    """The lines of a carrier text that concern ``country``.

    Notices are blocks separated by blank lines. Within a block, the first line naming
    countries sets its topic, and so does any later title-like line (short, not ending like a
    sentence); a body sentence naming ports of other countries ("via Abidjan, Dakar") does not
    change it. A line counts when its topic or its own names include ``country``. A text that
    names no country at all is about the watched one (the record was filed under it)."""
    places = _gazetteer()
    # A dateline ("Geneva, Switzerland, 6 November 2025") names the carrier's seat, not a topic.
    named = [
        set(places.countries(line)) if line.strip() and not is_dateline(line) else set() for line in lines
    ]
    if not any(named):
        return list(lines)
    kept: list[str] = []
    for block in _blocks(lines):
        first = next((named[i] for i in block if named[i]), set())
        topic: set[str] = set()
        for index in block:
            line, codes = lines[index], named[index]
            if codes and (not topic or _title_like(line)):
                topic = codes
            if country in (topic or first) or country in codes:
                kept.append(line)
    return kept


@cache
def _gazetteer() -> Gazetteer:
    return gazetteer(_german_names())


def _german_names() -> dict[str, list[str]]:
    """Country names in German (the built-in table has English and French ones)."""
    german = gettext.translation("iso3166-1", pycountry.LOCALES_DIR, languages=["de"], fallback=True)
    names: dict[str, list[str]] = {}
    for country in pycountry.countries:
        found = {german.gettext(country.name).split(",")[0].strip()}
        found.add(german.gettext(getattr(country, "common_name", country.name)))
        names[country.alpha_2] = sorted(name for name in found if name and name not in _AMBIGUOUS_NAMES)
    return names


def _blocks(lines: Sequence[str]) -> Iterable[list[int]]:
    block: list[int] = []
    for index, line in enumerate(lines):
        if line.strip():
            block.append(index)
        elif block:
            yield block
            block = []
    if block:
        yield block


def _title_like(line: str) -> bool:
    line = line.strip()
    return len(line) <= _TITLE_MAX and not line.endswith((".", "!", "?", ";"))
