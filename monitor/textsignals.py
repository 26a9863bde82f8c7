"""Text signals: what the prose of two versions says differently, on the shared scale.

Pure. :func:`text_signals` compares two texts sentence by sentence:

* Only lines that differ are split and matched; the lines both versions share are searched
  only for the few rules the changed sentences involve, and for the level. This keeps a
  60 KB page with a few changed sentences in the low milliseconds.
* A rule newly stated gives its class, quoting the sentence (``"ordered departure: “…”"``): a
  status (suspension, departure order, call to leave) when the old version did not state it,
  a threat (``heightened``: attacks, curfew...) when an added sentence states it and no removed
  one did. A sentence reworded within the same rule gives nothing (the change is an
  ``update``); so does a rule stated as lasting ("remains suspended"), a lesser rule inside a
  reversal ("heavily impacted, but decided not to suspend") and a step down on one scale
  (authorized departure after an ordered one).
* An escalating rule no longer stated (unless a graver one on its scale replaces it), an added
  sentence lifting a rule, or one denying a rule the old version stated, gives ``relaxed``.
* The level of a text is the highest country-wide level it states; a raise is ``severe`` (to 3
  or 4) or ``heightened`` (to 2), a drop ``relaxed``. Statements about parts of the country are
  compared place by place: a place given a stricter level than before and than the country's
  is ``heightened``, a place losing its level ``relaxed``.
* For carriers watched for a ``country``, only the lines about that country count (see
  :func:`monitor.carrierscope.relevant_lines`): a change to a notice about another country is
  noise.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache

from monitor.carrierscope import relevant_lines
from monitor.models import ChangeClass
from monitor.rules import LEVEL_CLASS, Kind, Rule, RuleSet, builtin_rules, squeeze
from monitor.sentences import (
    Sentence,
    SharedLines,
    Statement,
    clean_line,
    logical_lines,
    minor_edit,
    read_sentence,
    split_sentences,
    statements,
    to_plain,
)

ESCALATING = (ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.CRITICAL)
_RANK = {c: i for i, c in enumerate((ChangeClass.RELAXED, ChangeClass.UPDATE, *ESCALATING))}
_QUOTE_MAX = 240


@dataclass(frozen=True)
class TextSignal:
    """One thing the text says differently. ``topic`` tells which structured field says the
    same thing (``level``, ``leave_now``, ``staff_departure``, ``embassy_closed``, ``zone``,
    ``notice``), if any."""

    change_class: ChangeClass
    reason: str
    topic: str | None = None


@dataclass(frozen=True)
class TextResult:
    """The text signals of a change, and what the change is when there are none."""

    signals: tuple[TextSignal, ...]
    added: int  # sentences with something to say, added (typo fixes aside)
    removed: int
    noise_reason: str  # why the change is noise, when nothing substantive was added or removed
    level_before: int | None
    level_after: int | None

    @property
    def substantive(self) -> bool:
        return bool(self.added or self.removed)

    @property
    def level_direction(self) -> int:
        """1 when the text's level went up (or a level appeared), -1 when it went down."""
        before, after = self.level_before, self.level_after
        if before == after or (before is None and after is None):
            return 0
        if before is None:
            return 1
        if after is None:
            return -1
        return 1 if after > before else -1


def text_signals(
    kind: Kind, country: str | None, before: str, after: str, rules: RuleSet | None = None
) -> TextResult:
    """The text signals between ``before`` and ``after`` (plain text or HTML)."""
    return _signals(kind, country, before, after, rules or builtin_rules())


def clear_cache() -> None:
    """Forget the recent results (for measurements: every call then starts from scratch)."""
    _signals.cache_clear()


@lru_cache(maxsize=16)  # classify() and text_supports_level_change() ask about the same diff
def _signals(kind: Kind, country: str | None, before: str, after: str, rules: RuleSet) -> TextResult:
    plain_before, plain_after = to_plain(before), to_plain(after)
    old, new = plain_before.split("\n"), plain_after.split("\n")
    filtered = kind == "carrier" and country is not None
    if filtered and country:
        old, new = relevant_lines(old, country), relevant_lines(new, country)
    old, new = logical_lines(old), logical_lines(new)
    comparison = _Comparison(kind, rules, old, new)
    result = comparison.result()
    if result.substantive:
        return result
    reason = _noise_reason(comparison, (plain_before, plain_after), (old, new), filtered=filtered)
    return replace(result, noise_reason=reason)


class _Comparison:
    """Two versions of a text: the lines they share, the sentences of the lines they do not."""

    def __init__(self, kind: Kind, rules: RuleSet, old: Sequence[str], new: Sequence[str]) -> None:
        self.kind, self.rules = kind, rules
        old_set, new_set = set(old), set(new)
        self.common = SharedLines(kind, rules, [line for line in dict.fromkeys(old) if line in new_set])
        self.before = self._sentences(line for line in old if line not in new_set)
        self.after = self._sentences(line for line in new if line not in old_set)
        before_keys = {s.key for s in self.before}
        after_keys = {s.key for s in self.after}
        self.removed = [s for s in self.before if s.key not in after_keys and not self.common.holds(s)]
        self.added = [s for s in self.after if s.key not in before_keys and not self.common.holds(s)]
        self.retouched = _typo_pairs(self.removed, self.added)

    def _sentences(self, lines: Iterable[str]) -> list[Sentence]:
        found: dict[str, Sentence] = {}
        for line in lines:
            for text in split_sentences(line):
                sentence = read_sentence(text, self.rules, self.kind, keyed=True)
                if sentence.key and sentence.key not in found:
                    found[sentence.key] = sentence
        return list(found.values())

    def result(self) -> TextResult:
        level_before, level_after = self._levels()
        signals = [
            *self._rule_signals(),
            *self._level_signals(level_before, level_after),
            *self._partial_signals(level_before, level_after),
        ]
        return TextResult(
            signals=_merged(signals),
            added=sum(s.key not in self.retouched for s in self.added),
            removed=sum(s.key not in self.retouched for s in self.removed),
            noise_reason="",
            level_before=level_before,
            level_after=level_after,
        )

    # --- rules ---------------------------------------------------------------------------------

    def _rule_signals(self) -> Iterable[_Quoted]:
        before, removed = _stated(self.before), _stated(self.removed)
        gone = {r for r in before - _stated(self.after) if not r.states_level and not self.common.states(r)}
        for rule in _ordered(_stated(self.added)):
            if rule.states_level or rule.partial or rule.change_class is ChangeClass.UPDATE:
                continue
            # A threat in a new sentence is news even where the page already names that threat
            # ("new attacks"); a status (a suspension, a departure order) is news only once.
            if rule.change_class is ChangeClass.HEIGHTENED:
                fresh = rule not in removed
            else:
                fresh = rule not in before and not self.common.states(rule)
            if fresh and not _downgrade(rule, gone):
                yield from self._new(rule)
        yield from self._lifted(before)
        after = _stated(self.after)
        for rule in _ordered(gone):
            stating = [s for s in self.before if rule in s.match.present]
            if _downgrade(rule, after):
                continue  # replaced by a graver statement on the same scale: a step up
            if rule.change_class in ESCALATING and not rule.partial and stating:
                yield _Quoted(ChangeClass.RELAXED, f"{rule.name} no longer stated", stating[0], _topic(rule))

    def _new(self, rule: Rule) -> Iterable[_Quoted]:
        stating = [s for s in self.added if rule in s.match.present]
        news = [s for s in stating if rule not in s.match.persisting and not _reverses(s, rule)]
        if rule.change_class in ESCALATING and not news:
            return
        yield _Quoted(rule.change_class, rule.name, stating[0], _topic(rule))

    def _lifted(self, stated_before: set[Rule]) -> Iterable[_Quoted]:
        for sentence in self.added:
            for rule in _ordered(sentence.match.lifted):
                if rule.change_class in ESCALATING:
                    yield _Quoted(ChangeClass.RELAXED, f"{rule.name} lifted", sentence, _topic(rule))
            for rule in _ordered(sentence.match.negated):
                # Denying what was said ("decided not to suspend") relaxes; denying what nobody
                # said ("no plans to suspend") is not news.
                if rule.change_class in ESCALATING and (rule in stated_before or self.common.states(rule)):
                    yield _Quoted(ChangeClass.RELAXED, f"{rule.name} ruled out", sentence, _topic(rule))

    # --- levels --------------------------------------------------------------------------------

    def _levels(self) -> tuple[int | None, int | None]:
        if not self.rules.level_rules(self.kind):
            return None, None
        common = self.common.level
        before = _max(common, *(s.match.level for s in self.before))
        after = _max(common, *(s.match.level for s in self.after))
        return before, after

    def _level_signals(self, before: int | None, after: int | None) -> Iterable[_Quoted]:
        # A level no longer found is not a relaxation: the wording may simply have changed
        # (a lift, "Reisewarnung aufgehoben", is one).
        if before == after or after is None:
            return
        quote = next((s for s in self.after if s.match.level == after), None) or self.common.stating(after)
        if before is None:
            rule = next(r for r in self.rules.level_rules(self.kind) if r.level == after)
            if after >= 2:
                yield _Quoted(LEVEL_CLASS[after], rule.name, quote, "level")
        elif after > before:
            yield _Quoted(LEVEL_CLASS[after], f"level {before} → {after}", quote, "level")
        else:
            yield _Quoted(ChangeClass.RELAXED, f"level {before} → {after}", quote, "level")

    # --- parts of the country ------------------------------------------------------------------

    def _partial_signals(self, before: int | None, after: int | None) -> Iterable[_Quoted]:
        """A place given a stricter level than before (and than the country's) is heightened;
        a place losing its level is relaxed."""
        added, removed = statements(self.added), statements(self.removed)
        if not added and not removed:
            return
        shared = self.common.partial_statements(
            {name for _, names, _ in (*added, *removed) for name in names}
        )
        old = [*statements(self.before), *shared]
        new = [*statements(self.after), *shared]
        for level, names, sentence in added:
            if any(not _covered(name, level, old, before) for name in names):
                yield _Quoted(
                    ChangeClass.HEIGHTENED, "stricter advice for part of the country", sentence, "zone"
                )
        for level, names, sentence in removed:
            eased = [name for name in names if not _covered(name, level, new, after)]
            if eased:
                quote = next((s for _, n, s in added if eased[0] in n), sentence)
                yield _Quoted(ChangeClass.RELAXED, "advice eased for part of the country", quote, "zone")


def _covered(name: str, level: int, statements: Sequence[Statement], country: int | None) -> bool:
    if (country or 0) >= level:
        return True
    return any(other >= level and (name in names or name == "*") for other, names, _ in statements)


@dataclass(frozen=True)
class _Quoted:
    change_class: ChangeClass
    what: str
    sentence: Sentence | None
    topic: str | None = None


def _merged(signals: Sequence[_Quoted]) -> tuple[TextSignal, ...]:
    """One signal per quoted sentence (the highest class; the names joined), most severe first."""
    by_quote: dict[str, list[_Quoted]] = {}
    for signal in signals:
        key = signal.sentence.key if signal.sentence else f"\0{signal.what}"
        by_quote.setdefault(key, []).append(signal)
    merged = []
    for group in by_quote.values():
        top = max(group, key=lambda s: _RANK[s.change_class])
        same = [s for s in group if s.change_class is top.change_class]
        names = ", ".join(dict.fromkeys(s.what for s in same))
        reason = f"{names}: “{_quote(top.sentence.text)}”" if top.sentence else names
        merged.append(TextSignal(top.change_class, reason, top.topic))
    return tuple(sorted(merged, key=lambda s: -_RANK[s.change_class]))


def _noise_reason(
    comparison: _Comparison,
    plain: tuple[str, str],
    lines: tuple[Sequence[str], Sequence[str]],
    *,
    filtered: bool,
) -> str:
    """Why a change with nothing substantive is noise (``lines``: what was compared)."""
    if comparison.retouched:
        return "only typo fixes"
    if plain[0] == plain[1]:
        return "same text"
    if squeeze(plain[0]) == squeeze(plain[1]):
        return "only whitespace changed"
    old, new = ([line for line in map(clean_line, side) if line] for side in lines)
    if filtered and old == new:
        return "only notices about other countries changed"
    if set(old) == set(new):
        return "same sentences, reordered"
    return "only dates, times, whitespace or page furniture changed"


def _typo_pairs(removed: Sequence[Sentence], added: Sequence[Sentence]) -> frozenset[str]:
    """The keys of removed and added sentences that are typo fixes of one another."""
    paired: set[str] = set()
    for new in added:
        old = next((s for s in removed if s.key not in paired and minor_edit(s.key, new.key)), None)
        if old is not None:
            paired |= {old.key, new.key}
    return frozenset(paired)


def _downgrade(rule: Rule, others: set[Rule]) -> bool:
    """Whether one of ``others`` is graver than ``rule`` on the same scale. Of a new rule and
    the gone ones: a step down (ordered departure ended, authorized departure remains), not
    news. Of a gone rule and the new ones: a step up (authorized departure become ordered),
    not a relaxation. Carrier notices share a topic but not a scale: a surcharge with a
    resumption is news."""
    return rule.topic not in (None, "notice") and any(
        other.topic == rule.topic and _RANK[other.change_class] > _RANK[rule.change_class] for other in others
    )


def _reverses(sentence: Sentence, rule: Rule) -> bool:
    """Whether the sentence lifts or denies something graver than ``rule``: then ``rule`` is
    the residue of a reversal ("heavily impacted ..., but decided not to suspend"), not news."""
    undone = sentence.match.lifted | sentence.match.negated
    return any(_RANK[other.change_class] > _RANK[rule.change_class] for other in undone)


def _stated(sentences: Iterable[Sentence]) -> set[Rule]:
    return {rule for s in sentences for rule in s.match.present}


def _ordered(rules: Iterable[Rule]) -> list[Rule]:
    return sorted(rules, key=lambda r: (-_RANK[r.change_class], r.name))


def _topic(rule: Rule) -> str | None:
    return rule.topic or ("zone" if rule.partial else None)


def _max(*levels: int | None) -> int | None:
    return max((level for level in levels if level is not None), default=None)


def _quote(text: str) -> str:
    return text if len(text) <= _QUOTE_MAX else text[: _QUOTE_MAX - 1].rstrip() + "…"
