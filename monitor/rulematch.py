"""Matching phrase rules against sentences: folding, negations, lifts, parts of a country.

Pure. The rules themselves are loaded and validated by :mod:`monitor.rules`.

* Text is **folded** before matching: lower case, accents removed (é -> e, ß -> ss), typographic
  apostrophes, quotes and dashes made ASCII, non-Latin characters dropped. Patterns are folded
  the same way, so they can be written with or without accents; every pattern is word-bounded.
* A rule counts in a sentence unless it is **negated** (a negation ends right before the rule's
  words: "decided not to suspend", "ne sont pas suspendus", "keine Reisewarnung"), **lifted**
  (a lift in the same clause: "the ordered departure was lifted", "aufgehoben"), or one of the
  rule's own ``unless`` expressions is in the sentence. A negation or a lift inside the rule's
  own words counts only when the pattern still matches without it, so "no new bookings" stays a
  suspension and "wird nicht mehr abgeraten" is lifted.
* A rule stated only as lasting ("bookings remain suspended") is ``persisting``: stated, but
  not news.
* Level wording from where a sentence names part of the country onwards (a ``partial`` rule)
  is about that part: it gives the sentence's ``partial_level``, not the country's level.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from monitor.models import ChangeClass

Kind = Literal["ministry", "carrier"]
KINDS: tuple[Kind, ...] = ("ministry", "carrier")

_NEGATION_REACH = 60  # characters before a rule's words searched for a negation
_LIFT_REACH = 100  # characters either side searched for a lift
# Where a lift stops applying: the next clause.
_CLAUSE_END = re.compile(
    r"[;:]|\b(?:but|however|although|whereas|mais|cependant|toutefois|aber|jedoch|sondern)\b"
)
_SPACES = re.compile(r"\s+")
# "(?:a|b|c)" at the start of a pattern, the alternatives without groups, classes or escapes
# that could hide a "|"; not followed by a quantifier.
_LEADING_ALTERNATION = re.compile(r"\(\?:((?:[^()|\[\]\\]+\|)+[^()|\[\]\\]+)\)(?![?*+{])")


_ASCII_LOOKALIKES = {
    "’": "'", "‘": "'", "ʼ": "'", "´": "'", "`": "'", "“": '"', "”": '"', "«": '"', "»": '"',
    "„": '"', "–": "-", "—": "-", "‑": "-", "−": "-", "ß": "ss", "œ": "oe", "æ": "ae", "ø": "o",
    "ł": "l", "đ": "d", "ı": "i", "\xa0": " ", "\u202f": " ", "\u2009": " ",
}  # fmt: skip
_NON_ASCII = re.compile(r"[^\x00-\x7f]")
_FOLDED: dict[str, str] = {}  # character -> its ASCII form, learnt as met
_FOLDED_MAX = 10_000


def _ascii(text: str) -> str:
    # Only the non-ASCII characters are looked at, one by one: most of a page is ASCII, and
    # normalising all of it would cost several times more.
    return text if text.isascii() else _NON_ASCII.sub(_ascii_char, text)


def _ascii_char(found: re.Match[str]) -> str:
    char = found.group()
    plain = _FOLDED.get(char)
    if plain is None:
        plain = _ASCII_LOOKALIKES.get(char)
        if plain is None:
            plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode("ascii")
        if len(_FOLDED) < _FOLDED_MAX:
            _FOLDED[char] = plain
    return plain


def fold(text: str) -> str:
    """``text`` lower-cased, without accents, ASCII punctuation; non-Latin characters dropped.

    Never adds or removes a line break, so folded lines stay aligned with the original ones."""
    return _ascii(text.lower())


_NAMED_GROUP = re.compile(r"(\(\?P(?:<[^>]*>|=[^)]*\)))")


def fold_pattern(pattern: str) -> str:
    """A regular expression folded like text: literal characters lower-cased (escapes such as
    ``\\S`` or ``\\W``, and named groups ``(?P<Name>`` / ``(?P=Name)``, kept), accents removed."""
    out: list[str] = []
    for index, part in enumerate(_NAMED_GROUP.split(pattern)):
        if index % 2:
            out.append(part)
            continue
        escaped = False
        for char in part:
            out.append(char if escaped else char.lower())
            escaped = not escaped and char == "\\"
    return _ascii("".join(out))


def squeeze(text: str) -> str:
    """Runs of whitespace as one space, ends stripped."""
    return _SPACES.sub(" ", text).strip()


# --- rules and sentences -------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Rule:
    """One compiled rule. Identity is the name: rules of the same name are merged on loading."""

    name: str
    change_class: ChangeClass
    applies_to: frozenset[str]
    regexes: tuple[re.Pattern[str], ...]
    level: int | None = None
    partial: bool = False
    topic: str | None = None
    unless: re.Pattern[str] | None = None

    @property
    def states_level(self) -> bool:
        """A country-wide level statement: it sets the text's level, not a signal of its own."""
        return self.level is not None and not self.partial

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[re.Match[str]]:
        """Every word-bounded match of the rule's patterns in ``text[pos:endpos]``."""
        end = len(text) if endpos is None else endpos
        for regex in self.regexes:
            start = pos
            while (found := regex.search(text, start, end)) is not None:
                start = found.start() + 1
                if _starts_word(text, found.start()):
                    yield found

    def search(self, text: str) -> re.Match[str] | None:
        return next(self.finditer(text), None)


def _scoped(stated: dict[Rule, list[int]]) -> tuple[set[Rule], int | None]:
    """The rules a sentence states, level wording about the whole country only when it comes
    before the first part of the country the sentence names; and the level given that part."""
    cut = min((min(starts) for rule, starts in stated.items() if rule.partial), default=None)
    if cut is None:
        return set(stated), None
    present = {rule for rule, starts in stated.items() if not rule.states_level or min(starts) < cut}
    levels = [rule.level or 0 for rule, starts in stated.items() if rule.states_level and max(starts) >= cut]
    levels = levels or [rule.level or 0 for rule in stated if rule.partial]
    return present, max(levels) or None


def _starts_word(text: str, index: int) -> bool:
    """A match starting inside a word ("mali" in "somalia") is not a match."""
    return index == 0 or not (text[index - 1].isalnum() and text[index].isalnum())


@dataclass(frozen=True)
class SentenceMatch:
    """The rules a sentence states (``present``) and those it negates or lifts.

    ``partial_level`` is the level the sentence gives part of the country (None when it is not
    about part of the country)."""

    present: frozenset[Rule]
    lifted: frozenset[Rule]  # lifted ("was lifted", "aufgehoben")
    negated: frozenset[Rule]  # negated ("not suspended") or hypothetical ("once ... resume")
    partial_level: int | None = None
    persisting: frozenset[Rule] = frozenset()  # stated only as lasting ("remain suspended")

    @property
    def level(self) -> int | None:
        """The highest country-wide level the sentence states."""
        return max((r.level for r in self.present if r.states_level and r.level), default=None)


@dataclass(frozen=True)
class RuleSet:
    """All rules, and the lift, negation and noise expressions of every language."""

    rules: tuple[Rule, ...]
    lifts: re.Pattern[str] | None
    negations: Negations | None
    noise: re.Pattern[str] | None
    persisting: re.Pattern[str] | None = None  # ends where the searched span ends

    def for_kind(self, kind: Kind) -> tuple[Rule, ...]:
        return self._by_kind[kind]

    @cached_property
    def _by_kind(self) -> dict[str, tuple[Rule, ...]]:
        return {kind: tuple(rule for rule in self.rules if kind in rule.applies_to) for kind in KINDS}

    def level_rules(self, kind: Kind) -> tuple[Rule, ...]:
        """The country-wide level rules of ``kind``, highest level first."""
        stating = (rule for rule in self.for_kind(kind) if rule.states_level)
        return tuple(sorted(stating, key=lambda rule: -(rule.level or 0)))

    def match(self, folded: str, kind: Kind) -> SentenceMatch:
        """What one folded sentence says, for a source of ``kind``.

        Level wording from where a part of the country is named onwards ("Do not travel to the
        Kidal region", "..., à l'exception de la Casamance, placée en vigilance renforcée") is
        about that part: it gives ``partial_level``, not the country's level."""
        stated: dict[Rule, list[int]] = {}  # rule -> where its stated matches start
        lifted: set[Rule] = set()
        negated: set[Rule] = set()
        fresh: set[Rule] = set()
        for rule in self.for_kind(kind):
            if rule.unless is not None and rule.unless.search(folded):
                continue
            for found in rule.finditer(folded):
                state = self._state(rule, folded, found)
                if state is None:
                    stated.setdefault(rule, []).append(found.start())
                    if not self._persists(folded, found.start()):
                        fresh.add(rule)
                    if not rule.states_level and rule in fresh:
                        break
                else:
                    (lifted if state == "lifted" else negated).add(rule)
        present, partial_level = _scoped(stated)
        return SentenceMatch(
            frozenset(present),
            frozenset(lifted - present),
            frozenset(negated - present),
            partial_level,
            frozenset(present - fresh),
        )

    def _persists(self, text: str, start: int) -> bool:
        window = max(0, start - _NEGATION_REACH)
        return self.persisting is not None and self.persisting.search(text, window, start) is not None

    def _state(self, rule: Rule, text: str, found: re.Match[str]) -> str | None:
        """``"lifted"``, ``"negated"`` or None (the rule is stated) for one match."""
        start, end = found.span()
        if rule.change_class is not ChangeClass.RELAXED and self.lifts is not None:
            # Before the rule, a lift must be in its own comma clause ("Da die Korridore nicht
            # mehr befahren werden können, erklärt MSC höhere Gewalt"); after it, an insertion
            # may stand between ("the ordered departure, in place since May, was lifted").
            low = _clause_start(text, max(0, start - _LIFT_REACH), start, commas=True)
            high = _clause_end(text, end, min(len(text), end + _LIFT_REACH))
            if any(_counts(text, m, found) for m in _finditer(self.lifts, text, low, high)):
                return "lifted"
        if self.negations is not None:
            window = max(0, start - _NEGATION_REACH)
            if self.negations.adjacent.search(text, window, start):
                return "negated"
            for neg in self.negations.anywhere.finditer(text, window, end):
                if neg.end() > start and (_counts(text, neg, found) or _brackets(text, neg, found)):
                    return "negated"
        return None

    def noise_free(self, folded: str) -> str:
        """``folded`` without the noise phrases ("last updated", "Stand:")."""
        return self.noise.sub(" ", folded) if self.noise is not None else folded


@dataclass(frozen=True)
class Negations:
    """The negations of every language: anywhere (inside a rule's words) and adjacent (ending
    right before them)."""

    anywhere: re.Pattern[str]
    adjacent: re.Pattern[str]

    @classmethod
    def of(cls, patterns: Sequence[str]) -> Negations | None:
        found, before = alternation(patterns), adjacent(patterns)
        return None if found is None or before is None else cls(found, before)


def _finditer(regex: re.Pattern[str], text: str, low: int, high: int) -> Iterator[re.Match[str]]:
    return regex.finditer(text, low, high)


def _counts(text: str, other: re.Match[str], found: re.Match[str]) -> bool:
    """A lift or negation outside the rule's words counts; inside them, only when the pattern
    that matched still matches without it (so it is not part of the rule's own wording)."""
    if other.end() <= found.start() or other.start() >= found.end():
        return True
    start, end = found.span()
    rest = squeeze(text[start : other.start()] + " " + text[other.end() : end])
    return found.re.search(rest) is not None


def _brackets(text: str, negation: re.Match[str], found: re.Match[str]) -> bool:
    """A negation around the rule's first word ("ne **recommande** plus ... de quitter"): it
    counts when the pattern still matches with the particle after that word removed."""
    start, end = found.span()
    if not negation.start() < start < negation.end():
        return False
    first = text[start:end].split(" ", 1)[0]
    rest = squeeze(first + " " + text[negation.end() : end])
    return found.re.search(rest) is not None


def _clause_start(text: str, low: int, high: int, *, commas: bool = False) -> int:
    for found in _CLAUSE_END.finditer(text, low, high):
        low = found.end()
    return max(low, text.rfind(",", low, high) + 1) if commas else low


def _clause_end(text: str, low: int, high: int) -> int:
    found = _CLAUSE_END.search(text, low, high)
    return found.start() if found else high


def compile_pattern(pattern: str) -> re.Pattern[str]:
    """A rule pattern, folded and compiled.

    The trailing guard keeps "ended" from matching in "endeds"; the leading word boundary is
    checked after each search (see :meth:`Rule.finditer`), which keeps the regex's
    literal-prefix fast path: a pattern starting with a word is found in a 60 KB text in
    microseconds."""
    return re.compile(f"(?:{fold_pattern(pattern)})(?!(?<=\\w)\\w)")


def compile_rule_patterns(pattern: str) -> list[re.Pattern[str]]:
    """:func:`compile_pattern`, a leading group of plain alternatives split into one regex per
    alternative: ``(?:territoire|pays) est`` becomes ``territoire est`` and ``pays est``, each
    with the fast path a leading alternation loses (several times faster on a long page)."""
    folded = fold_pattern(pattern)
    match = _LEADING_ALTERNATION.match(folded)
    if match is None:
        return [compile_pattern(pattern)]
    rest = folded[match.end() :]
    return [compile_pattern(alternative + rest) for alternative in match.group(1).split("|")]


def alternation(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """The patterns as one word-bounded regex (only ever searched within one sentence)."""
    if not patterns:
        return None
    alternatives = "|".join(f"(?:{fold_pattern(p)})" for p in patterns)
    return re.compile(f"(?<!\\w)(?:{alternatives})(?!(?<=\\w)\\w)")


def adjacent(patterns: Sequence[str]) -> re.Pattern[str] | None:
    """The patterns, found only when they end where the search ends (right before a rule)."""
    anywhere = alternation(patterns)
    return None if anywhere is None else re.compile(anywhere.pattern + r"\s*$")
