"""Records the outbox tests queue changes of."""

from __future__ import annotations

from monitor.models import Record, Section


def versioned_record(key: str, version: int) -> Record:
    """Record ``key`` at ``version``: level and text move with the version, so each is a change."""
    return Record(
        key=key,
        title=f"Advice {key}",
        url=f"https://example.org/{key}",
        level=2 + version,
        sections=(Section("summary", f"Version {version} of {key}."),),
    )
