"""Phrase rules: the data files, their schema and their validation.

The rules live in ``monitor/data/rules/{en,fr,de}.yaml``; :func:`load_rules` merges more files
of the same schema (a user's own phrases). Each file has a ``language``, lists of ``noise``,
``lifts``, ``negations`` and ``persisting`` expressions, and ``rules``, each with:

* ``name`` (readable: it is quoted in reasons), ``class`` (``update``, ``heightened``,
  ``severe``, ``critical`` or ``relaxed``), ``applies_to`` (``ministry``, ``carrier``) and
  ``patterns`` (regular expressions over folded sentences);
* optionally ``level`` (1-4: the rule states the country's level, and its class must be the
  class of a raise to that level), ``partial: true`` (the rule names part of a country; class
  ``heightened``), ``topic`` (the structured field saying the same thing: ``leave_now``,
  ``staff_departure``, ``embassy_closed``, ``notice``...) and ``unless`` (expressions that
  void the rule in a sentence).

Rules with the same name, in any file, are one rule. Everything is validated strictly: an
unknown key, a bad class or an invalid regular expression is a :class:`RulesError` naming the
file and the rule. Matching itself is in :mod:`monitor.rulematch` (re-exported here).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.errors import ConfigError
from monitor.models import ChangeClass
from monitor.rulematch import (
    KINDS,
    Kind,
    Negations,
    Rule,
    RuleSet,
    SentenceMatch,
    adjacent,
    alternation,
    compile_pattern,
    compile_rule_patterns,
    fold,
    fold_pattern,
    squeeze,
)

__all__ = [
    "KINDS",
    "LEVEL_CLASS",
    "Kind",
    "Rule",
    "RuleSet",
    "RulesError",
    "SentenceMatch",
    "builtin_rules",
    "fold",
    "fold_pattern",
    "load_rules",
    "squeeze",
]

BUILTIN_FILES = ("en.yaml", "fr.yaml", "de.yaml")
# The class of a country-wide raise to a level: what a level-stating rule must declare.
LEVEL_CLASS = {
    1: ChangeClass.UPDATE,
    2: ChangeClass.HEIGHTENED,
    3: ChangeClass.SEVERE,
    4: ChangeClass.SEVERE,
}
RuleClass = Literal["update", "heightened", "severe", "critical", "relaxed"]
Topic = Literal["level", "leave_now", "staff_departure", "embassy_closed", "zone", "notice"]


class RulesError(ConfigError):
    """A rule file is missing, unreadable or invalid; the message names the file and the rule."""


class _RuleModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(min_length=1)
    class_: RuleClass = Field(alias="class")
    applies_to: tuple[Kind, ...] = Field(min_length=1)
    patterns: tuple[str, ...] = Field(min_length=1)
    level: int | None = Field(None, ge=1, le=4)
    partial: bool = False
    topic: Topic | None = None
    unless: tuple[str, ...] = ()


class _FileModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    language: str = Field(min_length=2)
    noise: tuple[str, ...] = ()
    lifts: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    persisting: tuple[str, ...] = ()
    rules: tuple[_RuleModel, ...] = ()


def load_rules(extra_paths: Sequence[str | Path] = ()) -> RuleSet:
    """The built-in rules merged with the rule files ``extra_paths`` (same schema).

    A rule whose name already exists adds its patterns, ``unless`` expressions and kinds to
    that rule; its class, level, ``partial`` and topic must then be the same. Raises
    :class:`RulesError` naming the file and the rule for any invalid entry."""
    return _load(tuple(str(Path(p)) for p in extra_paths))


@cache
def _load(extra_paths: tuple[str, ...]) -> RuleSet:
    files = [(f"monitor/data/rules/{name}", _builtin_text(name)) for name in BUILTIN_FILES]
    files += [(path, _read(Path(path))) for path in extra_paths]
    return _build([_parse(where, text) for where, text in files])


def builtin_rules() -> RuleSet:
    """The rules of the data files shipped with the monitor."""
    return _load(())


def _builtin_text(name: str) -> str:
    return resources.files("monitor").joinpath("data", "rules", name).read_text(encoding="utf-8")


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    # ValueError: a name the system cannot take (a NUL in it, from a quoted "\0" in YAML).
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RulesError(f"{path}: cannot read the rule file: {exc}") from exc


def _parse(where: str, text: str) -> tuple[str, _FileModel]:
    try:
        data: Any = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise RulesError(f"{where}: not valid YAML: {exc}") from exc
    # PyYAML lets two errors through: a date it cannot build (2025-13-45) is a ValueError, and
    # collections nested too deep exhaust its recursive constructor.
    except (ValueError, RecursionError) as exc:
        raise RulesError(f"{where}: not valid YAML: {type(exc).__name__}: {exc}") from None
    if not isinstance(data, dict):
        raise RulesError(f"{where}: expected a mapping with `language` and `rules`")
    try:
        return where, _FileModel.model_validate(data)
    except ValidationError as exc:
        raise RulesError(f"{where}: {_describe(exc, data)}") from exc


def _describe(exc: ValidationError, data: dict[str, Any]) -> str:
    """The first problem, as "rule 3 'name': class: Input should be ..."."""
    error = exc.errors()[0]
    location = list(error["loc"])
    where = ""
    if len(location) >= 2 and location[0] == "rules" and isinstance(location[1], int):
        index = location[1]
        rules = data.get("rules")
        entry = rules[index] if isinstance(rules, list) else None
        name = entry.get("name") if isinstance(entry, dict) else None
        where = f"rule {index + 1}" + (f" {name!r}" if name else "") + ": "
        location = location[2:]
    field = ".".join(str(part) for part in location)
    return f"{where}{field + ': ' if field else ''}{error['msg']}"


def _build(files: Iterable[tuple[str, _FileModel]]) -> RuleSet:
    merged: dict[str, _Draft] = {}
    lifts: list[str] = []
    negations: list[str] = []
    persisting: list[str] = []
    noise: list[str] = []
    for where, model in files:
        lifts += [_checked(where, "lifts", p) for p in model.lifts]
        negations += [_checked(where, "negations", p) for p in model.negations]
        persisting += [_checked(where, "persisting", p) for p in model.persisting]
        noise += [_checked(where, "noise", p) for p in model.noise]
        for rule in model.rules:
            _check_rule(where, rule)
            draft = merged.get(rule.name)
            if draft is None:
                merged[rule.name] = _Draft(rule)
            else:
                draft.extend(where, rule)
    try:
        return RuleSet(
            rules=tuple(draft.compile() for draft in merged.values()),
            lifts=alternation(lifts),
            negations=Negations.of(negations),
            noise=alternation(noise),
            persisting=adjacent(persisting),
        )
    # Each pattern compiled alone; together, e.g. two groups of one name. (Overflow and
    # recursion: see _checked.)
    except (re.error, OverflowError, RecursionError) as exc:
        raise RulesError(f"the rule files cannot be combined: {exc}") from exc


class _Draft:
    """A rule being merged from several files."""

    def __init__(self, model: _RuleModel) -> None:
        self.model = model
        self.applies_to = set(model.applies_to)
        self.patterns = list(model.patterns)
        self.unless = list(model.unless)

    def extend(self, where: str, other: _RuleModel) -> None:
        mine = (self.model.class_, self.model.level, self.model.partial, self.model.topic)
        theirs = (other.class_, other.level, other.partial, other.topic)
        if mine != theirs:
            raise RulesError(
                f"{where}: rule {other.name!r}: already defined with class, level, partial, topic "
                f"{mine}, not {theirs}; give it another name"
            )
        self.applies_to |= set(other.applies_to)
        self.patterns += [p for p in other.patterns if p not in self.patterns]
        self.unless += [p for p in other.unless if p not in self.unless]

    def compile(self) -> Rule:
        model = self.model
        return Rule(
            name=model.name,
            change_class=ChangeClass(model.class_),
            applies_to=frozenset(self.applies_to),
            regexes=tuple(regex for p in self.patterns for regex in compile_rule_patterns(p)),
            level=model.level,
            partial=model.partial,
            topic=model.topic,
            unless=alternation(self.unless),
        )


def _check_rule(where: str, rule: _RuleModel) -> None:
    label = f"{where}: rule {rule.name!r}"
    if rule.partial and rule.class_ != "heightened":
        raise RulesError(f"{label}: a partial rule (part of a country) must have class heightened")
    if rule.level is not None and not rule.partial and rule.class_ != LEVEL_CLASS[rule.level]:
        expected = LEVEL_CLASS[rule.level]
        raise RulesError(f"{label}: a level {rule.level} rule must have class {expected}, not {rule.class_}")
    for pattern in (*rule.patterns, *rule.unless):
        _checked(label, "pattern", pattern)


def _checked(where: str, what: str, pattern: str) -> str:
    try:
        regex = compile_pattern(pattern)
    # Not only re.error: a repeat count too large ("a{4294967296}") is an OverflowError, and
    # groups nested too deep exhaust the compiler's recursion.
    except (re.error, OverflowError, RecursionError) as exc:
        raise RulesError(f"{where}: {what} {pattern!r} is not a valid regular expression: {exc}") from exc
    if regex.search(""):
        raise RulesError(f"{where}: {what} {pattern!r} matches the empty string")
    return pattern
