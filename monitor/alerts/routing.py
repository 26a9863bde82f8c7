"""Pure routing: which channels get an alert about a change or a source's health, and when.

A channel takes a change when the change passes its ``countries``/``sources``/``kinds`` filters
and its class reaches the channel's ``min_class``. A ``relaxed`` change (risk went down) has no
rank of its own: it goes to every channel that was alerted to the escalations it relaxes, and to
channels that take every update anyway. Digest channels collect changes until the end of their
period; a critical change never waits. Health alerts (a source stops or starts working again)
go at once to the channels with ``health`` on whose filters admit the source.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from monitor.config import AlertChannel, Config
from monitor.models import ChangeClass

# The rank of each class on the escalation scale; relaxed stands apart.
RANK: Mapping[ChangeClass, int] = {
    ChangeClass.NOISE: 0,
    ChangeClass.UPDATE: 1,
    ChangeClass.HEIGHTENED: 2,
    ChangeClass.SEVERE: 3,
    ChangeClass.CRITICAL: 4,
}
ESCALATIONS = frozenset({ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.CRITICAL})


@dataclass(frozen=True)
class ChangeFacts:
    """What routing looks at: where the change comes from, what it is about, how serious it is."""

    source_id: str
    kind: str
    countries: tuple[str, ...]  # the record's country, else the source's configured ones
    change_class: ChangeClass


@dataclass(frozen=True)
class Planned:
    """One alert to queue: for ``channel``, sendable from ``due_at``, part of digest ``batch``."""

    channel: str
    due_at: datetime
    batch: str | None = None


@dataclass(frozen=True)
class Router:
    """The configured channels plus what routing needs to know about each source."""

    channels: tuple[AlertChannel, ...]
    kinds: Mapping[str, str]  # source id -> kind
    countries: Mapping[str, tuple[str, ...]]  # source id -> configured countries

    @classmethod
    def from_config(cls, config: Config) -> Router:
        return cls(
            config.alerts,
            {s.id: s.kind for s in config.sources},
            {s.id: s.countries for s in config.sources},
        )

    def facts(self, source_id: str, country: str | None, change_class: ChangeClass) -> ChangeFacts:
        """The facts of a change of ``source_id`` about ``country`` (None: the source's countries)."""
        countries = (country,) if country else self.countries.get(source_id, ())
        return ChangeFacts(source_id, self.kinds.get(source_id, ""), countries, change_class)

    def route(
        self, facts: ChangeFacts, detected_at: datetime, escalated_to: Collection[str] = ()
    ) -> list[Planned]:
        """The alerts to queue for one change, in channel order.

        ``escalated_to``: the channels alerted to the escalations a relaxed change relaxes."""
        return [
            plan(channel, facts.change_class, detected_at)
            for channel in self.channels
            if receives(channel, facts, escalated_to)
        ]

    def health_channels(self, source_id: str) -> list[str]:
        """The channels told when ``source_id`` stops or starts working again, in channel order:
        those with ``health`` on whose ``sources``/``kinds``/``countries`` filters admit the
        source (by its configured countries). ``min_class`` and digests do not apply: a source
        going quiet is news at once, whatever the threshold for changes."""
        # ``matches`` looks only at where a change comes from; the class is a placeholder.
        facts = ChangeFacts(
            source_id, self.kinds.get(source_id, ""), self.countries.get(source_id, ()), ChangeClass.UPDATE
        )
        return [channel.name for channel in self.channels if channel.health and matches(channel, facts)]


def receives(channel: AlertChannel, facts: ChangeFacts, escalated_to: Collection[str] = ()) -> bool:
    """True when ``channel`` gets an alert about a change with ``facts``."""
    if not matches(channel, facts):
        return False
    if facts.change_class is ChangeClass.RELAXED:
        return channel.name in escalated_to or RANK[channel.threshold] <= RANK[ChangeClass.UPDATE]
    return RANK[facts.change_class] >= RANK[channel.threshold]


def matches(channel: AlertChannel, facts: ChangeFacts) -> bool:
    """The channel's filters: empty ones let everything through."""
    return (
        (not channel.sources or facts.source_id in channel.sources)
        and (not channel.kinds or facts.kind in channel.kinds)
        and (not channel.countries or any(c in channel.countries for c in facts.countries))
    )


def plan(channel: AlertChannel, change_class: ChangeClass, detected_at: datetime) -> Planned:
    """When the alert goes out: at once, or at the end of the channel's digest period."""
    if channel.digest is None or change_class is ChangeClass.CRITICAL:
        return Planned(channel.name, detected_at)
    due = digest_due(channel, detected_at)
    return Planned(channel.name, due, f"{channel.digest}:{due.strftime('%Y-%m-%dT%H:%MZ')}")


def digest_due(channel: AlertChannel, at: datetime) -> datetime:
    """The end of the digest period containing ``at``: the next full hour, or the next
    ``digest_at`` (UTC) strictly after ``at``."""
    at = at.astimezone(UTC)
    if channel.digest == "hourly":
        return at.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    due = at.replace(hour=channel.digest_at.hour, minute=channel.digest_at.minute, second=0, microsecond=0)
    return due if due > at else due + timedelta(days=1)


def failure_recipients(channels: Iterable[AlertChannel], failed_channel: str) -> list[str]:
    """The channels told that an alert to ``failed_channel`` could not be delivered."""
    return [c.name for c in channels if c.report_failures and c.name != failed_channel]
