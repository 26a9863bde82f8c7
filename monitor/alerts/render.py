"""Pure rendering of alert messages: one change, a digest of changes, a source's health, a
delivery failure, a test.

Every function takes data and returns text; the only I/O is loading the package's Jinja2
templates, once. Page text is untrusted: the HTML templates escape every value, links are only
made for http(s) addresses, and subjects never contain a line break (a scraped title must not be
able to add mail headers or split a chat title).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import jinja2
import pycountry

from monitor.display import MONTHS, level_change, one_line, safe_href, shorten
from monitor.health import Transition, duration_text
from monitor.models import ChangeClass

SUBJECT_REASON_CHARS = 60
EXCERPT_LINES = 8
EXCERPT_LINE_CHARS = 200
DIGEST_REASONS = 2
# An error text is for a person to read on a phone, not a full traceback.
FAILURE_ERROR_CHARS = 1000


# Most urgent first. ``relaxed`` ranks above routine updates: a lowered level is news to act on.
SEVERITY = (
    ChangeClass.CRITICAL,
    ChangeClass.SEVERE,
    ChangeClass.HEIGHTENED,
    ChangeClass.RELAXED,
    ChangeClass.UPDATE,
    ChangeClass.NOISE,
)
_RANK = {change_class: rank for rank, change_class in enumerate(SEVERITY)}

# (background, text) of the class badge; amber needs dark text to stay legible.
_BADGE_COLOURS = {
    ChangeClass.CRITICAL: ("#7f1d1d", "#ffffff"),
    ChangeClass.SEVERE: ("#c2410c", "#ffffff"),
    ChangeClass.HEIGHTENED: ("#f59e0b", "#1f2937"),
    ChangeClass.UPDATE: ("#546e7a", "#ffffff"),
    ChangeClass.NOISE: ("#6b7280", "#ffffff"),
    ChangeClass.RELAXED: ("#15803d", "#ffffff"),
}

# (background, text) of the health badge: amber while a source fails, green once it works again.
_HEALTH_COLOURS = {
    Transition.UNHEALTHY: ("#b45309", "#ffffff"),
    Transition.RECOVERED: ("#15803d", "#ffffff"),
}
# A health reason reads "what happened; details" or "what happened (details)": subjects keep the first part.
_REASON_DETAILS = re.compile(r";\s| \(")
# A stored reason is a line or two; a longer one is cut, as an error text is.
HEALTH_REASON_CHARS = 500

# A classifier reason is often "label: “quoted sentence”"; the subject keeps the label.
_QUOTE_START = ": “"
_HUNK_HEADER = re.compile(r"@@ -\d+(?:,(\d+))? \+\d+(?:,(\d+))? @@")


@dataclass(frozen=True)
class AlertView:
    """Everything a message about one change shows.

    Times are aware datetimes (shown in UTC). ``reasons`` come from the classifier, the most
    important first; ``diff`` is a unified diff of the record's text.
    """

    alert_id: str
    change_class: ChangeClass
    country: str | None
    source_id: str
    publisher: str
    title: str
    url: str
    reasons: tuple[str, ...]
    diff: str
    level_before: int | None
    level_after: int | None
    label_before: str | None
    label_after: str | None
    updated_at: datetime | None
    detected_at: datetime


@dataclass(frozen=True)
class HealthView:
    """Everything a message about a source's change of health shows.

    ``state`` is the transition; ``at`` when it was recorded. For a recovery,
    ``unhealthy_since`` is when the source was marked unhealthy (None: not known).
    ``last_success_at`` and ``last_error`` describe the checks up to ``at``.
    """

    alert_id: str
    source_id: str
    publisher: str
    state: Transition
    reason: str | None
    at: datetime
    unhealthy_since: datetime | None
    last_success_at: datetime | None
    last_error: str | None
    url: str


@dataclass(frozen=True)
class Message:
    """A rendered message: ``title`` is one line; ``text`` and ``html`` carry the same facts."""

    title: str
    text: str
    html: str


@dataclass(frozen=True)
class _DiffLine:
    added: bool
    text: str


@dataclass(frozen=True)
class _Facts:
    """An ``AlertView`` turned into display strings: what the templates show, already cut to size."""

    subject: str
    gist: str
    badge: str
    badge_bg: str
    badge_fg: str
    heading: str
    title: str
    level: str | None
    reasons: tuple[str, ...]
    changes: tuple[_DiffLine, ...]
    more_changes: int
    url: str
    href: str | None
    publisher: str
    published: str
    detected: str
    alert_id: str


@dataclass(frozen=True)
class _HealthFacts:
    """A ``HealthView`` turned into display strings for the templates."""

    subject: str
    badge: str
    badge_bg: str
    badge_fg: str
    heading: str
    recovered: bool
    summary: str
    reason: str | None
    unhealthy_since: str | None
    at: str
    last_success: str
    last_error: str | None
    url: str
    href: str | None
    alert_id: str


def country_name(code: str | None) -> str:
    """The English short name of an ISO 3166-1 alpha-2 code ("BO" -> "Bolivia").

    pycountry's ``common_name`` is preferred to the formal ``name``. An unknown code is returned
    as given (upper-cased); None or a blank code gives "Unknown country".
    """
    cleaned = one_line(code or "").upper()
    if not cleaned:
        return "Unknown country"
    found = pycountry.countries.get(alpha_2=cleaned)
    if found is None:
        return cleaned
    return str(getattr(found, "common_name", None) or found.name)


def badge_colours(change_class: ChangeClass) -> tuple[str, str]:
    """The (background, text) colours of ``change_class``'s badge, as CSS hex colours."""
    return _BADGE_COLOURS[change_class]


def changed_lines(diff: str) -> Iterator[tuple[str, str]]:
    """The added ("+") and removed ("-") content lines of a unified diff as (sign, text), each
    text on one line; see :func:`_changed_lines`."""
    return _changed_lines(diff)


def format_utc(moment: datetime) -> str:
    """``moment`` in UTC as "7 Nov 2025 09:12 UTC", whatever the locale.

    A naive datetime is taken to be UTC already (the store keeps UTC), never local time.
    """
    utc = _as_utc(moment)
    return f"{utc.day} {MONTHS[utc.month - 1]} {utc.year} {utc:%H:%M} UTC"


def subject(view: AlertView) -> str:
    """One line: "[CRITICAL] Mali — France Diplomatie: nationals urged to leave".

    The part after the colon is the main reason in a few words, or the record's title when
    the classifier gave no reason.
    """
    return f"[{view.change_class.upper()}] {_place(view)}: {_main_reason(view)}"


def render_alert(view: AlertView) -> Message:
    """The message about one change."""
    facts = _facts(view)
    return Message(
        title=facts.subject,
        text=_render_text("alert.txt.j2", alert=facts),
        html=_render_html("alert.html.j2", alert=facts),
    )


def render_digest(channel: str, period: str, views: Sequence[AlertView]) -> Message:
    """One message listing ``views``, most severe first, then in order of detection.

    ``period`` is a human label such as "6 Nov 2025 (UTC)"; the title names the count and the
    highest class present.
    """
    ordered = sorted(views, key=lambda view: (_RANK[view.change_class], _as_utc(view.detected_at)))
    summary = _digest_summary(ordered)
    context: dict[str, Any] = {
        "reasons_shown": DIGEST_REASONS,
        "summary": summary,
        "period": one_line(period),
        "channel": one_line(channel),
        "alerts": [_facts(view) for view in ordered],
    }
    return Message(
        title=f"[DIGEST] {summary} — {one_line(period)}",
        text=_render_text("digest.txt.j2", **context),
        html=_render_html("digest.html.j2", **context),
    )


def health_subject(view: HealthView) -> str:
    """One line: "[source unhealthy] us-state — US State Department: 3 checks in a row failed",
    or "[source recovered] us-state — US State Department: works again after 2 h 10 min"."""
    return f"[source {view.state.value}] {_source_heading(view)}: {_health_gist(view)}"


def render_health(view: HealthView) -> Message:
    """The message about a source that stopped working, or works again."""
    facts = _health_facts(view)
    return Message(
        title=facts.subject,
        text=_render_text("health.txt.j2", alert=facts),
        html=_render_html("health.html.j2", alert=facts),
    )


def render_failure(view: AlertView | HealthView, channel: str, error: str) -> Message:
    """A report that the alert about ``view`` (a change, or a source's health) could not be
    delivered to ``channel`` at all.

    ``error`` must already be free of secrets; it is shortened, not otherwise changed.
    """
    facts = _health_facts(view) if isinstance(view, HealthView) else _facts(view)
    context: dict[str, Any] = {
        "health": isinstance(view, HealthView),
        "alert": facts,
        "channel": one_line(channel),
        "error": shorten(error.strip(), FAILURE_ERROR_CHARS, at_word=False),
    }
    return Message(
        title=f"[DELIVERY FAILED] {one_line(channel)}: {facts.subject}",
        text=_render_text("failure.txt.j2", **context),
        html=_render_html("failure.html.j2", **context),
    )


def render_test(channel: str, now: datetime) -> Message:
    """A short message proving that ``channel`` works; ``now`` is the sending time."""
    context: dict[str, Any] = {"channel": one_line(channel), "sent": format_utc(now)}
    return Message(
        title="Advisory monitor: test message",
        text=_render_text("test.txt.j2", **context),
        html=_render_html("test.html.j2", **context),
    )


def _facts(view: AlertView) -> _Facts:
    changes, more = _diff_excerpt(view.diff)
    background, foreground = _BADGE_COLOURS[view.change_class]
    url = one_line(view.url)
    return _Facts(
        subject=subject(view),
        gist=_main_reason(view),
        badge=view.change_class.upper(),
        badge_bg=background,
        badge_fg=foreground,
        heading=_place(view),
        title=one_line(view.title),
        level=_level_line(view),
        reasons=tuple(text for text in map(one_line, view.reasons) if text),
        changes=changes,
        more_changes=more,
        url=url,
        href=safe_href(url),
        publisher=one_line(view.publisher),
        published=format_utc(view.updated_at) if view.updated_at else "not stated",
        detected=format_utc(view.detected_at),
        alert_id=one_line(view.alert_id),
    )


def _health_facts(view: HealthView) -> _HealthFacts:
    recovered = view.state is Transition.RECOVERED
    background, foreground = _HEALTH_COLOURS[view.state]
    url = one_line(view.url)
    reason = shorten(one_line(view.reason or ""), HEALTH_REASON_CHARS, at_word=False) or None
    error = shorten(one_line(view.last_error or ""), FAILURE_ERROR_CHARS, at_word=False) or None
    return _HealthFacts(
        subject=health_subject(view),
        badge=f"SOURCE {view.state.value.upper()}",
        badge_bg=background,
        badge_fg=foreground,
        heading=_source_heading(view),
        recovered=recovered,
        summary=_health_summary(view),
        reason=reason,
        unhealthy_since=format_utc(view.unhealthy_since) if view.unhealthy_since else None,
        at=format_utc(view.at),
        last_success=format_utc(view.last_success_at) if view.last_success_at else "never",
        last_error=error,
        url=url,
        href=safe_href(url),
        alert_id=one_line(view.alert_id),
    )


def _source_heading(view: HealthView) -> str:
    source, publisher = one_line(view.source_id), one_line(view.publisher)
    return source if publisher in ("", source) else f"{source} — {publisher}"


def _health_gist(view: HealthView) -> str:
    if view.state is Transition.RECOVERED:
        return f"works again after {_outage(view)}" if view.unhealthy_since else "works again"
    headline = _REASON_DETAILS.split(one_line(view.reason or ""), maxsplit=1)[0]
    return shorten(headline, SUBJECT_REASON_CHARS) or "stopped working"


def _health_summary(view: HealthView) -> str:
    """The body's first line: what happened, in a sentence."""
    if view.state is Transition.UNHEALTHY:
        return "The source stopped working: its changes may go unnoticed until it works again."
    if view.unhealthy_since:
        return f"The source works again, after {_outage(view)} unhealthy."
    return "The source works again."


def _outage(view: HealthView) -> str:
    return duration_text(_as_utc(view.at) - _as_utc(view.unhealthy_since or view.at))


def _place(view: AlertView) -> str:
    return f"{country_name(view.country)} — {one_line(view.publisher)}"


def _main_reason(view: AlertView) -> str:
    """The first reason without its quoted evidence, or the title, in a few words."""
    reason = view.reasons[0].split(_QUOTE_START, 1)[0] if view.reasons else ""
    return shorten(one_line(reason) or one_line(view.title), SUBJECT_REASON_CHARS)


def _level_line(view: AlertView) -> str | None:
    """What follows "Level: ": "3 (…) → 4 (…)", "4 (…) (unchanged)", or None when nothing is known."""
    before, after = (view.level_before, view.label_before), (view.level_after, view.label_after)
    return level_change(before, after, unchanged=" (unchanged)")


def _digest_summary(ordered: Sequence[AlertView]) -> str:
    if not ordered:
        return "no advisory changes"
    noun = "change" if len(ordered) == 1 else "changes"
    return f"{len(ordered)} advisory {noun}, highest {ordered[0].change_class.upper()}"


def _diff_excerpt(diff: str) -> tuple[tuple[_DiffLine, ...], int]:
    """The first added/removed lines of ``diff``, each cut to size, and how many were left out."""
    lines = [
        _DiffLine(added=sign == "+", text=shorten(text, EXCERPT_LINE_CHARS))
        for sign, text in _changed_lines(diff)
    ]
    return tuple(lines[:EXCERPT_LINES]), max(0, len(lines) - EXCERPT_LINES)


def _changed_lines(diff: str) -> Iterator[tuple[str, str]]:
    """The added and removed content lines of a unified diff as (sign, text).

    Inside a hunk its ``@@`` counts decide what is content, so a removed line that itself
    starts with "--" is not taken for a file header; outside a hunk (or in a diff without
    headers) the prefixes decide. Blank content lines tell a reader nothing and are left out.
    """
    old_left = new_left = 0
    for line in diff.splitlines():
        if old_left <= 0 and new_left <= 0:
            header = _HUNK_HEADER.match(line)
            if header:
                old_left, new_left = _hunk_size(header[1]), _hunk_size(header[2])
                continue
            if line.startswith(("---", "+++")):
                continue
        # A context line for an empty line is " ", or "" once trailing spaces were trimmed.
        sign, text = line[:1] or " ", one_line(line[1:])
        if sign in ("-", " "):
            old_left -= 1
        if sign in ("+", " "):
            new_left -= 1
        if sign in ("+", "-") and text:
            yield sign, text


def _hunk_size(count: str | None) -> int:
    return 1 if count is None else int(count)


def _as_utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _render_text(template: str, **context: Any) -> str:
    """A plain-text template, tidied: no trailing spaces, never two blank lines in a row."""
    raw = _environment().get_template(template).render(**context)
    lines = [line.rstrip() for line in raw.splitlines()]
    tidy: list[str] = []
    for line in lines:
        if line or (tidy and tidy[-1]):
            tidy.append(line)
    return "\n".join(tidy).strip("\n") + "\n"


def _render_html(template: str, **context: Any) -> str:
    return _environment().get_template(template).render(**context).strip() + "\n"


def _escapes_html(name: str | None) -> bool:
    """Only HTML templates escape; escaping plain text would show "&amp;" to readers."""
    return name is not None and name.endswith(".html.j2")


@functools.cache
def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("monitor.alerts", "templates"),
        autoescape=_escapes_html,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
