"""French travel-advice text: folding, the vocabulary of ``monitor/data/fr_diplomatie.yaml``, dates,
zone headings, level statements and flag sentences.

Every function here reads text already split into blocks; nothing fetches or parses markup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files

import yaml

from monitor.models import Scope

_FOLD_PUNCTUATION = {"’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'", "–": "-", "—": "-", "‑": "-"}


@cache
def _fold_char(char: str) -> str:
    return _FOLD_PUNCTUATION.get(char) or unicodedata.normalize("NFD", char)[0].lower()[0]


def fold(text: str) -> str:
    """Lower case, accents removed, ASCII apostrophes and dashes: what the patterns of the data
    file match. The result has the length of ``text``, so match offsets point into ``text``."""
    return text.lower() if text.isascii() else "".join(map(_fold_char, text))


@dataclass(frozen=True)
class Block:
    """One heading, paragraph or plain-text line; ``heading`` is 1-6 for an HTML heading."""

    text: str
    folded: str
    heading: int | None = None


def block(text: str, heading: int | None = None) -> Block:
    """A block of ``text`` with its folded form."""
    return Block(text, fold(text), heading)


@dataclass(frozen=True)
class Band:
    level: int
    zone: str
    terms: re.Pattern[str]


@dataclass(frozen=True)
class Vocabulary:
    """The compiled ``monitor/data/fr_diplomatie.yaml``; see the comments there for what each
    entry means."""

    bands: tuple[Band, ...]
    markers: dict[str, re.Pattern[str]]
    zone_heading: re.Pattern[str]
    zone_heading_max: int
    dates: dict[str, re.Pattern[str]]
    date: re.Pattern[str]
    months: dict[str, int]
    furniture: re.Pattern[str]
    whole_country: tuple[tuple[re.Pattern[str], int], ...]
    rest_statements: tuple[tuple[re.Pattern[str], int], ...]
    rest_mention: re.Pattern[str]
    flags: dict[str, tuple[re.Pattern[str], re.Pattern[str]]]
    ignore_titles: tuple[str, ...]


def _any(patterns: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(f"(?:{p})" for p in patterns))


def _per_band(template: str, bands: tuple[Band, ...]) -> list[tuple[re.Pattern[str], int]]:
    return [(re.compile(template.replace("{levels}", b.terms.pattern)), b.level) for b in bands]


@cache
def vocabulary() -> Vocabulary:
    """The vocabulary, loaded once."""
    data = yaml.safe_load(files("monitor").joinpath("data/fr_diplomatie.yaml").read_text(encoding="utf-8"))
    bands = tuple(Band(b["level"], b["zone"], _any(b["terms"])) for b in data["levels"])
    whole = data["whole_country"]
    dates = data["dates"]
    months = dict(sorted(dates["months"].items(), key=lambda item: -len(item[0])))
    return Vocabulary(
        bands=bands,
        markers={name: re.compile(p) for name, p in data["markers"].items()},
        zone_heading=re.compile(data["zone_heading"]),
        zone_heading_max=data["zone_heading_max_length"],
        dates={name: re.compile(p) for name, p in dates.items() if isinstance(p, str)},
        date=re.compile(
            r"(?<!\d)(?P<day>\d{1,2})(?:[/.-](?P<num>\d{1,2})[/.-]|(?:er)?\s+(?P<name>"
            + "|".join(months)
            + r")\.?\s+)(?P<year>\d{4})(?!\d)"
        ),
        months=months,
        furniture=_any(data["furniture"]),
        whole_country=tuple(
            [p for t in whole["statements"] for p in _per_band(t, bands)]
            + [(re.compile(p), 4) for p in whole["red"]]
        ),
        rest_statements=tuple(_per_band(data["rest_of_country"]["statement"], bands)),
        rest_mention=re.compile(data["rest_of_country"]["mention"]),
        flags={name: (_any(f["match"]), _any(f["unless"])) for name, f in data["flags"].items()},
        ignore_titles=tuple(data["ignore_titles"]),
    )


# --- dates ------------------------------------------------------------------------------------------


def french_date(text: str) -> datetime | None:
    """The first date in ``text`` ("16/01/2024", "7 novembre 2025", "1er nov. 2025") as 00:00 UTC
    of that day; None when there is none or it is not a real date."""
    vocab = vocabulary()
    match = vocab.date.search(fold(text))
    if not match:
        return None
    month = int(match["num"]) if match["num"] else vocab.months[match["name"]]
    try:
        when = datetime(int(match["year"]), month, int(match["day"]), tzinfo=UTC)
    except ValueError:
        return None
    return when if 1990 <= when.year <= 2100 else None


def without_metadata(blocks: list[Block], vocab: Vocabulary) -> list[Block]:
    """``blocks`` less page furniture and the date lines that :func:`metadata` reads."""
    dates = vocab.dates
    metadata = (dates["updated"], dates["still_valid"], dates["publication"], dates["zones_updated"])
    return [
        b
        for b in blocks
        if not vocab.furniture.fullmatch(b.folded) and not any(p.match(b.folded) for p in metadata)
    ]


def metadata(chrome: list[Block], content: list[Block], vocab: Vocabulary) -> dict[str, datetime]:
    """``updated`` (Dernière mise à jour), ``publication`` (old "Date de publication"),
    ``zones_updated`` (Dernière actualisation of the zones block); absent when empty or odd."""
    found: dict[str, datetime] = {}
    for name in ("updated", "publication", "zones_updated"):
        dates = (_date_after(b, vocab.dates[name], vocab) for b in (chrome if name == "updated" else content))
        when = next((d for d in dates if d), None)
        if when:
            found[name] = when
    return found


def _date_after(b: Block, label: re.Pattern[str], vocab: Vocabulary) -> datetime | None:
    """The date after ``label`` at the start of the block, up to an "Information toujours…"."""
    match = label.match(b.folded)
    if not match:
        return None
    cut = vocab.dates["still_valid_cut"].search(b.folded, match.end())
    return french_date(b.text[match.end() : cut.start() if cut else len(b.text)])


# --- zone headings and levels -----------------------------------------------------------------------


@dataclass(frozen=True)
class ZoneHeading:
    """A zone heading as written, the band it names, and the folded lines under it."""

    label: str
    band: Band
    body: tuple[str, ...]


@dataclass(frozen=True)
class Level:
    level: int
    label: str
    scope: Scope


def band_of_heading(b: Block, vocab: Vocabulary) -> Band | None:
    """The band a zone heading names; None when the block is not a zone heading."""
    if len(b.text) > vocab.zone_heading_max or b.text.rstrip().endswith("."):
        return None
    if not vocab.zone_heading.match(b.folded):
        return None
    return next((band for band in vocab.bands if band.terms.search(b.folded)), None)


def zone_headings(lines: list[Block], vocab: Vocabulary) -> list[ZoneHeading]:
    """The zone headings of ``lines`` in order, each with the lines up to the next one."""
    headings: list[tuple[Block, Band, list[str]]] = []
    for b in lines:
        band = band_of_heading(b, vocab)
        if band is not None:
            headings.append((b, band, []))
        elif headings:
            headings[-1][2].append(b.folded)
    return [ZoneHeading(b.text, band, tuple(body)) for b, band, body in headings]


def national_level(
    alerts: list[Block], zone_lines: list[Block], zones: list[ZoneHeading], vocab: Vocabulary
) -> Level | None:
    """A whole-country sentence of the alerts or the zones block (the most severe wins), else "le
    reste du pays" in the zones block, else the zone that covers the rest of the country, else
    the least severe zone."""
    whole = _statements([*alerts, *zone_lines], vocab.whole_country)
    if whole:
        level, label = max(whole, key=lambda found: found[0])
        return Level(level, label, Scope.WHOLE_COUNTRY)
    rest = _statements(zone_lines, vocab.rest_statements)
    if rest:
        return Level(rest[0][0], rest[0][1], Scope.PARTS)
    if not zones:
        return None
    scope = Scope.WHOLE_COUNTRY if len({z.band.level for z in zones}) == 1 else Scope.PARTS
    covering = [z for z in zones if any(vocab.rest_mention.search(line) for line in z.body)]
    chosen = covering[0] if covering else min(zones, key=lambda z: z.band.level)
    return Level(chosen.band.level, chosen.label, scope)


def _statements(
    blocks: list[Block], patterns: tuple[tuple[re.Pattern[str], int], ...]
) -> list[tuple[int, str]]:
    found = []
    for b in blocks:
        for pattern, level in patterns:
            match = pattern.search(b.folded)
            if match:
                found.append((level, b.text[match.start() : match.end()]))
    return found


# --- flags ------------------------------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+")


def flag_raised(texts: Iterable[str], name: str, vocab: Vocabulary) -> bool:
    """Whether a sentence of ``texts`` (split at line ends and sentence ends) matches the flag
    ``name`` of the vocabulary without matching its ``unless``."""
    match, unless = vocab.flags[name]
    for text in texts:
        for line in fold(text).splitlines():
            for sentence in _SENTENCE_END.split(line):
                if match.search(sentence) and not unless.search(sentence):
                    return True
    return False
