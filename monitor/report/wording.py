"""The report's small vocabulary (pure): days, notice statuses and levels as a reader sees them,
with the CSS class ("tone") that colours each."""

from __future__ import annotations

from datetime import UTC, datetime

from monitor.display import MONTHS
from monitor.models import NoticeStatus

# strftime("%b") follows the process locale; the report must read the same everywhere.

_NOTICE_WORDS = {
    NoticeStatus.SUSPENSION: "Suspended",
    NoticeStatus.DISRUPTION: "Disrupted",
    NoticeStatus.SURCHARGE: "Surcharge",
    NoticeStatus.RESUMPTION: "Resumed",
    NoticeStatus.INFO: "Notice",
}


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is taken to be UTC already (the store keeps UTC)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def day_text(moment: datetime) -> str:
    """The UTC day of ``moment`` as "7 Nov 2025"."""
    day = utc(moment)
    return f"{day.day} {MONTHS[day.month - 1]} {day.year}"


def notice_word(status: NoticeStatus | None) -> str:
    """What a carrier's notice in effect means for the service, in a word ("Suspended"); "No
    notice" for none."""
    return _NOTICE_WORDS[status] if status is not None else "No notice"


def notice_tone(status: NoticeStatus | None) -> str:
    """The CSS class colouring a notice status ("n-suspension", "n-none")."""
    return f"n-{status.value}" if status is not None else "n-none"


def level_tone(level: int | None) -> str:
    """The CSS class colouring a level on the common scale: "l1" to "l4", "l0" for none."""
    return f"l{level}" if level in (1, 2, 3, 4) else "l0"
