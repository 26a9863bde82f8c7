"""Sentences and their comparison keys: what of a text is compared between two versions.

Pure functions over plain text (or HTML, converted first):

* :func:`split_sentences` splits one line into sentences. Every line is a unit of its own
  (bullets, headings and table cells are sentences); inside a line a sentence ends at ``.``,
  ``!``, ``?`` or ``…`` followed by a capital or a digit, except after an English, French or
  German abbreviation ("U.S.", "e.g.", "Mme.", "z. B.", "Nr.") or an initial, and except a
  German ordinal date ("am 7. November").
* :func:`noise_key` is what is left of a folded sentence once the noise is gone: dates (en,
  fr, de; numeric and long-form, with weekday), times and time zones, tracking parameters of
  URLs, the rule files' ``noise`` phrases ("last updated", "dernière mise à jour", "Stand"),
  punctuation and case. Two sentences with the same key say the same thing; an empty key is a
  sentence that says nothing (a date line, "Share").
* :func:`minor_edit` tells a typo fix from a change of wording.
* :func:`read_sentence` folds and matches one sentence against the phrase rules;
  :class:`SharedLines` holds the lines two versions share and answers, without matching them
  all, what they state.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monitor.normalise import element_text, parse_html
from monitor.rules import Kind, Rule, RuleSet, SentenceMatch, fold, squeeze

_BULLET = re.compile(r"^(?:[-*•·▪▸►‣◦–—>]+|\(?\d{1,2}[.)]|\(?[a-z][)])\s+")
_END = re.compile(r"[.!?…]+[\"'”’»)\]]*\s+")
_OPENING = "\"'“‘«([¿¡"
_ABBREVIATIONS = frozenset(
    # English
    "mr mrs ms dr st mt gen col lt sgt capt prof jr sr vs etc approx dept govt intl "
    "jan feb mar apr jun jul aug sep sept oct nov dec mon tue tues wed thu thur thurs fri sat sun "
    "fig ref tel ext ave rd "
    # French
    "m mm mme mmes mlle mlles ste av bd boul cf env janv fevr avr juil "
    # German
    "bzw ca str usw ggf evtl inkl bspw vgl sog hr fr bzgl zzgl u o".split()
)
_NUMBERING = frozenset("no nos nr tel ext abs ziff art".split())
_DOTTED = re.compile(r"(?:[a-z]\.){1,}[a-z]\.?$", re.IGNORECASE)  # u.s, e.g, z.b, j.-c
_MONTH_NAMES = frozenset(
    "january february march april may june july august september october november december "
    "janvier fevrier février mars avril mai juin juillet aout août septembre octobre novembre "
    "decembre décembre januar jänner februar märz maerz juni juli oktober dezember".split()
)
_CHANGE_NOTE = re.compile(r"(?:last update|latest update|summary of changes)\s*[:-]")
_CAPITALISED = re.compile(r"(?<![\w-])[A-ZÀ-ÖØ-Þ][\w'’-]*")
_NOT_PLACES = frozenset(
    "fcdo level do not travel reconsider exercise avoid the a an and or of to in zone zones "
    "le la les du de des et zone rouge orange l'ensemble vor von die der das und".split()
)
_HTML = re.compile(
    r"</?(?:html|body|div|p|br|ul|ol|li|h[1-6]|table|tr|td|span|a|article|section)\b[^<>]*>", re.IGNORECASE
)

# --- noise --------------------------------------------------------------------------------------

_MONTH = (
    r"(?:jan(?:uary|vier|uar)?|feb(?:ruary|ruar)?|fev(?:rier)?|fevr|mar(?:ch|s|z)?|maerz|"
    r"apr(?:il)?|avr(?:il)?|may|mai|jun(?:e|i)?|juin|jul(?:y|i)?|juil(?:let)?|aug(?:ust)?|aout|"
    r"sep(?:t|tember|tembre)?|oct(?:ober|obre)?|okt(?:ober)?|nov(?:ember|embre)?|"
    r"dec(?:ember|embre)?|dez(?:ember)?|jaenner|janner)\.?"
)
_WEEKDAY_NAME = (
    r"monday|tuesday|wednesday|thursday|friday|saturday|sunday|lundi|mardi|mercredi|jeudi|"
    r"vendredi|samedi|dimanche|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag"
)
_WEEKDAY = rf"{_WEEKDAY_NAME}|mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun"
_DAY = r"(?:[0-3]?\d)(?:st|nd|rd|th|er|\.)?"
_YEAR = r"(?:19|20)\d\d"
_ZONE = (
    r"(?:utc|gmt|cet|cest|mez|mesz|bst|edt|est|eet|eest|wat|cat|eat|et|ct|pt|he|hae|hne)"
    r"(?:\s*[+-]\s*\d{1,2}(?::?\d\d)?)?"
)
_TIME = (
    rf"(?:(?:at|a|um|vers|gegen)\s+)?(?:\d{{1,2}}[:h]\d\d(?::\d\d)?|\d{{1,2}}\s*h(?!\w))(?:\s*(?:a\.?m\.?|p\.?m\.?))?"
    rf"(?:\s*uhr)?(?:\s*\(?{_ZONE}\)?)?|\d{{1,2}}\s*(?:a\.?m\.?|p\.?m\.?|uhr)(?:\s*\(?{_ZONE}\)?)?"
)
_DATE = (
    rf"\d{{4}}-\d\d?-\d\d?(?:t\d\d:\d\d(?::\d\d(?:\.\d+)?)?(?:z|[+-]\d\d:?\d\d)?)?"
    rf"|\d{{1,2}}[./-]\d{{1,2}}[./-](?:{_YEAR}|\d\d)"
    rf"|(?:(?:{_WEEKDAY}),?\s+)?(?:(?:le|am|on|the|den)\s+)?{_DAY}\s+(?:of\s+|de\s+)?{_MONTH},?(?:\s+{_YEAR})?"
    rf"|(?:(?:{_WEEKDAY}),?\s+)?{_MONTH}\s+{_DAY}(?:,?\s+{_YEAR})?"
    rf"|{_MONTH}\s+{_YEAR}|{_WEEKDAY_NAME}"
)
_NOISE = re.compile(rf"(?<!\w)(?:{_DATE}|{_TIME})(?!\w)")
_URL = re.compile(r"https?://[^\s<>\"]+")
_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|msclkid|mc_cid|mc_eid|_ga|_gl|igshid|yclid|"
    r"ref|ref_src|s_cid|cmpid|xtor|at_medium|at_campaign|at_source|sessionid|sid)$",
    re.IGNORECASE,
)
_NOT_WORD = re.compile(r"[\W_]+")
_DATELINE_MAX = 60
_ODD_SPACE = re.compile(r"[\t\r\f\v][ \t\r\f\v]*| [ \t\r\f\v]+")  # not the many single spaces
_NOTHING = SentenceMatch(frozenset(), frozenset(), frozenset())


def is_html(text: str) -> bool:
    """True when ``text`` looks like HTML markup rather than plain text."""
    return _HTML.search(text) is not None


def to_plain(text: str) -> str:
    """Plain text, one line per block: HTML is converted; line ends are made ``\\n``."""
    if is_html(text):
        return element_text(parse_html(text))
    return text.replace("\r\n", "\n").replace("\r", "\n")


def logical_lines(lines: Sequence[str]) -> list[str]:
    """The lines as units of meaning: a line broken after a comma or a semicolon, or before a
    lower-case word, is joined to the next; a list item is prefixed with the line introducing
    its list ("FCDO advises against all travel to:" + "- the Amhara region"), so that it says
    what it is a list of. Blank lines are kept (they separate carriers' notices)."""
    # Cheap tests first: this runs on every line of every version.
    result: list[str] = []
    header = ""
    for line in lines:
        text = line.strip()
        if not text:
            result.append(line)
            header = ""
            continue
        previous = result[-1].rstrip() if result else ""
        if previous and (previous[-1] in ",;" or _continues(previous, text)):
            result[-1] = f"{previous} {text}"
        elif header and _BULLET.match(text):
            result.append(f"{header} {clean_line(text)}")
        else:
            header = clean_line(text) if text[-1] == ":" else ""
            result.append(line)
    return result


def _continues(previous: str, text: str) -> bool:
    return text[0].islower() and previous[-1].isalnum() and not _BULLET.match(text)


def is_change_note(folded: str) -> bool:
    """Whether a folded sentence is a publisher's note about its latest change ("Last Update:
    Reissued with ...", "Latest update: ..."): it says what changed, not what is in force."""
    return _CHANGE_NOTE.match(folded) is not None


def places(sentence: str) -> frozenset[str]:
    """The capitalised words of a sentence after its first word: the places it names (and, in
    German, its nouns), folded. Used to tell which parts of a country a statement covers."""
    words = _CAPITALISED.findall(sentence)[1:] if sentence[:1].isupper() else _CAPITALISED.findall(sentence)
    return frozenset(fold(word) for word in words if word.lower() not in _NOT_PLACES)


def is_dateline(line: str) -> bool:
    """A short line holding a date: a notice's date or dateline ("Hamburg, 6. Januar 2025")."""
    folded = fold(line)
    return len(line) <= _DATELINE_MAX and _NOISE.search(folded) is not None


def clean_line(line: str) -> str:
    """A line without bullet, surrounding and repeated whitespace ('' for a blank line)."""
    line = squeeze(line)
    return _BULLET.sub("", line, count=1) if line else line


def split_sentences(line: str) -> list[str]:
    """The sentences of one line, as written (whitespace squeezed)."""
    line = clean_line(line)
    sentences: list[str] = []
    start = 0
    for end in _END.finditer(line):
        if _splits(line, start, end):
            sentences.append(line[start : end.end()].strip())
            start = end.end()
    tail = line[start:].strip()
    return [*sentences, tail] if tail else sentences


def _splits(line: str, start: int, end: re.Match[str]) -> bool:
    following = line[end.end() :].lstrip(_OPENING)
    if not following or not (following[0].isupper() or following[0].isdigit()):
        return False
    if end.group().startswith(("!", "?", "…")) or end.group().startswith(".."):
        return True
    word = line[start : end.start()].rsplit(None, 1)[-1].lstrip(_OPENING) if end.start() > start else ""
    bare = word.lower().rstrip(".")
    if bare in _NUMBERING:
        return not following[0].isdigit()  # "No. 5" goes on; "No. Leave now" is two sentences
    if bare in _ABBREVIATIONS or _DOTTED.search(word + ".") or (len(word) == 1 and word.isalpha()):
        return False
    next_word = following.split(None, 1)[0].lower().strip(".,")
    return not (word.isdigit() and next_word in _MONTH_NAMES)


def noise_key(folded: str, rules: RuleSet) -> str:
    """The comparison key of a folded sentence: its words without noise, single-spaced."""
    text = _URL.sub(_without_tracking, folded)
    text = rules.noise_free(_NOISE.sub(" ", text))
    return _NOT_WORD.sub(" ", text).strip()


def _without_tracking(found: re.Match[str]) -> str:
    url = found.group()
    trail = len(url) - len(url.rstrip(".,;:!?)"))
    url, tail = (url[:-trail], url[-trail:]) if trail else (url, "")
    try:
        parts = urlsplit(url)
    except ValueError:
        return url + tail
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING.match(k)]
    return urlunsplit(parts._replace(query=urlencode(query))) + tail


def minor_edit(before: str, after: str) -> bool:
    """True when two keys differ only by a typo fix: words joined or split ("any where"), or at
    most two words each changed by one or two letters, neither a number nor a short word whose
    change changes the meaning ("not" -> "now")."""
    if before.replace(" ", "") == after.replace(" ", ""):
        return True
    old, new = before.split(), after.split()
    if len(old) != len(new):
        return False
    changed = [(a, b) for a, b in zip(old, new, strict=True) if a != b]
    return 0 < len(changed) <= 2 and all(_typo(a, b) for a, b in changed)


def _typo(a: str, b: str) -> bool:
    if not (a.isalpha() and b.isalpha()) or min(len(a), len(b)) < 4:
        return False
    return _distance(a, b) <= (1 if min(len(a), len(b)) < 6 else 2)


def _distance(a: str, b: str) -> int:
    """Damerau-Levenshtein distance (adjacent transpositions count one)."""
    rows = [list(range(len(b) + 1))]
    for i, x in enumerate(a, 1):
        row = [i]
        for j, y in enumerate(b, 1):
            cost = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (x != y))
            if i > 1 and j > 1 and x == b[j - 2] and a[i - 2] == y:
                cost = min(cost, rows[-2][j - 2] + 1)
            row.append(cost)
        rows.append(row)
    return rows[-1][-1]


# --- matched sentences ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Sentence:
    """A sentence as written, folded, its comparison key and what it states."""

    text: str
    folded: str
    key: str
    match: SentenceMatch


def read_sentence(text: str, rules: RuleSet, kind: Kind, *, keyed: bool = False) -> Sentence:
    """A sentence, folded and matched. A change note ("Last update: Reissued to reflect the
    end of ordered departure") says what changed, not what is in force: it states no rule."""
    folded = squeeze(fold(text))
    key = noise_key(folded, rules) if keyed else ""
    match = _NOTHING if is_change_note(folded) else rules.match(folded, kind)
    return Sentence(text, folded, key, match)


Statement = tuple[int, frozenset[str], "Sentence"]  # level, places named, sentence


def statements(sentences: Iterable[Sentence]) -> list[Statement]:
    """The sentences giving part of the country a level, with the places they name ("*": none)."""
    return [
        (s.match.partial_level, places(s.text) or frozenset("*"), s)
        for s in sentences
        if s.match.partial_level is not None
    ]


class SharedLines:
    """The lines both versions share: searched only for what the changed sentences involve."""

    def __init__(self, kind: Kind, rules: RuleSet, lines: list[str]) -> None:
        self.kind, self.rules, self.lines = kind, rules, lines
        self._evaluated: dict[int, list[Sentence]] = {}
        self._states: dict[str, bool] = {}

    @cached_property
    def folded(self) -> str:
        folded = fold("\n".join(self.lines))
        odd = "  " in folded or "\t" in folded or "\r" in folded  # plain searches: fast
        return _ODD_SPACE.sub(" ", folded) if odd else folded

    def holds(self, sentence: Sentence) -> bool:
        """Whether a changed sentence also stands, as written, in a shared line (it moved)."""
        return bool(self.lines) and sentence.folded in self.folded

    def states(self, rule: Rule) -> bool:
        """Whether a shared sentence states ``rule``."""
        if rule.name not in self._states:
            self._states[rule.name] = any(rule in s.match.present for s in self._candidates(rule))
        return self._states[rule.name]

    @cached_property
    def level(self) -> int | None:
        """The highest country-wide level the shared lines state."""
        for rule in self.rules.level_rules(self.kind):
            if self.states(rule):
                return rule.level
        return None

    def partial_statements(self, names: set[str]) -> list[Statement]:
        """The shared statements about parts of the country naming one of ``names`` (any, with
        ``*``). Only the lines holding those names are matched: a name is a plain search."""
        if "*" in names or not self.lines:
            partial = [rule for rule in self.rules.for_kind(self.kind) if rule.partial]
            found = {id(s): s for rule in partial for s in self._candidates(rule)}
            return statements(found.values())
        indexes = {self.folded.count("\n", 0, at) for name in names for at in _occurrences(self.folded, name)}
        found = {id(s): s for index in indexes for s in self._sentences(index)}
        return [statement for statement in statements(found.values()) if names & statement[1]]

    def stating(self, level: int) -> Sentence | None:
        for rule in self.rules.level_rules(self.kind):
            if rule.level == level:
                found = next((s for s in self._candidates(rule) if s.match.level == level), None)
                if found:
                    return found
        return None

    def _candidates(self, rule: Rule) -> Iterable[Sentence]:
        """The sentences of the shared lines where one of ``rule``'s patterns matches."""
        if not self.lines:
            return
        seen: set[int] = set()
        for found in rule.finditer(self.folded):
            index = self.folded.count("\n", 0, found.start())
            if index not in seen:
                seen.add(index)
                yield from self._sentences(index)

    def _sentences(self, index: int) -> list[Sentence]:
        if index not in self._evaluated:
            lines = split_sentences(self.lines[index])
            self._evaluated[index] = [read_sentence(text, self.rules, self.kind) for text in lines]
        return self._evaluated[index]


def _occurrences(text: str, word: str) -> Iterable[int]:
    at = text.find(word)
    while at >= 0:
        yield at
        at = text.find(word, at + 1)
