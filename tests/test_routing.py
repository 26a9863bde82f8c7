"""Routing as a pure function: which channels hear of a change, and when their message is due."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor.alerts.routing import (
    ESCALATIONS,
    RANK,
    ChangeFacts,
    Planned,
    Router,
    digest_due,
    failure_recipients,
    matches,
    plan,
    receives,
)
from monitor.config import AlertChannel, loads
from monitor.models import ChangeClass

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LEVELS = ("noise", "update", "heightened", "severe", "critical")

# Written out rather than derived from RANK, so a wrong rank shows up here.
RECEIVED_BY_MIN_CLASS: dict[str, set[ChangeClass]] = {
    "noise": {
        ChangeClass.NOISE,
        ChangeClass.UPDATE,
        ChangeClass.HEIGHTENED,
        ChangeClass.SEVERE,
        ChangeClass.CRITICAL,
    },
    "update": {ChangeClass.UPDATE, ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.CRITICAL},
    "heightened": {ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.CRITICAL},
    "severe": {ChangeClass.SEVERE, ChangeClass.CRITICAL},
    "critical": {ChangeClass.CRITICAL},
}

CONFIG = """
sources:
  - {id: uk-mali, kind: html, url: "https://example.org/mali", countries: [ML]}
  - {id: sahel, kind: html, url: "https://example.org/sahel", countries: [ML, BF, NE]}
  - {id: fcdo, kind: uk-fcdo, url: "https://example.org/fcdo"}
alerts:
  - {name: everything, url: "json://127.0.0.1/a", min_class: noise}
  - {name: mali-severe, url: "json://127.0.0.1/b", min_class: severe, countries: [ML]}
  - {name: fcdo-only, url: "json://127.0.0.1/c", sources: [fcdo]}
  - {name: daily, url: "json://127.0.0.1/d", min_class: update, digest: daily, digest_at: "18:30"}
  - {name: ops, url: "json://127.0.0.1/e", min_class: critical, kinds: [uk-fcdo], report_failures: true}
"""


def channel(name: str = "chat", **settings_: Any) -> AlertChannel:
    return AlertChannel.model_validate({"name": name, "url": "json://127.0.0.1/hook", **settings_})


def facts(
    change_class: ChangeClass = ChangeClass.HEIGHTENED,
    *,
    source_id: str = "uk-mali",
    kind: str = "html",
    countries: tuple[str, ...] = ("ML",),
) -> ChangeFacts:
    return ChangeFacts(source_id, kind, countries, change_class)


@pytest.fixture
def router() -> Router:
    return Router.from_config(loads(CONFIG, path=Path("t.yaml"), environ={}))


# --- the class threshold ------------------------------------------------------------------------


def test_the_default_threshold_is_heightened() -> None:
    assert channel().threshold is ChangeClass.HEIGHTENED


@pytest.mark.parametrize("min_class", LEVELS)
@pytest.mark.parametrize("change_class", list(RANK))
def test_a_channel_receives_exactly_the_classes_at_or_above_its_minimum(
    min_class: str, change_class: ChangeClass
) -> None:
    expected = change_class in RECEIVED_BY_MIN_CLASS[min_class]
    assert receives(channel(min_class=min_class), facts(change_class)) is expected


def test_the_escalation_scale_is_ordered_and_relaxed_stands_apart() -> None:
    assert sorted(RANK, key=RANK.__getitem__) == [ChangeClass(level) for level in LEVELS]
    assert ChangeClass.RELAXED not in RANK
    assert {ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.CRITICAL} == ESCALATIONS


@pytest.mark.parametrize("min_class", LEVELS)
def test_a_relaxed_change_goes_to_channels_taking_updates_and_to_the_escalated_ones(min_class: str) -> None:
    relaxed = facts(ChangeClass.RELAXED)
    takes_updates = min_class in ("noise", "update")
    assert receives(channel(min_class=min_class), relaxed) is takes_updates
    assert receives(channel(min_class=min_class), relaxed, escalated_to={"other"}) is takes_updates
    assert receives(channel(min_class=min_class), relaxed, escalated_to={"chat"}) is True


def test_a_relaxed_change_to_an_escalated_channel_still_passes_its_filters() -> None:
    mali = channel(min_class="critical", countries=["ML"])
    assert receives(mali, facts(ChangeClass.RELAXED, countries=("ML",)), {"chat"})
    assert not receives(mali, facts(ChangeClass.RELAXED, countries=("BF",)), {"chat"})


def test_escalated_channels_matter_only_for_relaxed_changes() -> None:
    critical_only = channel(min_class="critical")
    assert not receives(critical_only, facts(ChangeClass.SEVERE), escalated_to={"chat"})
    assert not receives(critical_only, facts(ChangeClass.UPDATE), escalated_to={"chat"})


# --- filters ------------------------------------------------------------------------------------


def test_empty_filters_let_everything_through() -> None:
    anything = channel()
    assert matches(anything, facts(source_id="x", kind="rss", countries=()))
    assert matches(anything, facts(source_id="y", kind="html", countries=("BF", "NE")))


def test_the_countries_filter_needs_one_of_the_change_countries() -> None:
    sahel = channel(countries=["ml", "NE"])  # codes are normalised to upper case
    assert matches(sahel, facts(countries=("ML",)))
    assert matches(sahel, facts(countries=("BF", "NE")))
    assert not matches(sahel, facts(countries=("BF",)))
    assert not matches(sahel, facts(countries=()))  # a change about no known country


def test_the_sources_filter() -> None:
    fcdo = channel(sources=["uk-mali", "fcdo"])
    assert matches(fcdo, facts(source_id="fcdo"))
    assert matches(fcdo, facts(source_id="uk-mali"))
    assert not matches(fcdo, facts(source_id="sahel"))


def test_the_kinds_filter() -> None:
    governments = channel(kinds=["uk-fcdo", "us-state"])
    assert matches(governments, facts(kind="uk-fcdo"))
    assert not matches(governments, facts(kind="html"))


def test_every_filter_must_pass() -> None:
    strict = channel(countries=["ML"], sources=["fcdo"], kinds=["uk-fcdo"])
    assert matches(strict, facts(source_id="fcdo", kind="uk-fcdo", countries=("ML",)))
    assert not matches(strict, facts(source_id="fcdo", kind="uk-fcdo", countries=("BF",)))
    assert not matches(strict, facts(source_id="sahel", kind="uk-fcdo", countries=("ML",)))
    assert not matches(strict, facts(source_id="fcdo", kind="html", countries=("ML",)))
    assert not receives(strict, facts(ChangeClass.CRITICAL, source_id="sahel", kind="html"))


def test_facts_take_the_record_country_else_the_source_countries(router: Router) -> None:
    assert router.facts("sahel", "BF", ChangeClass.SEVERE) == ChangeFacts(
        "sahel", "html", ("BF",), ChangeClass.SEVERE
    )
    assert router.facts("sahel", None, ChangeClass.UPDATE).countries == ("ML", "BF", "NE")
    assert router.facts("fcdo", None, ChangeClass.UPDATE) == ChangeFacts(
        "fcdo", "uk-fcdo", (), ChangeClass.UPDATE
    )
    # A source no longer configured: no kind, no countries; only unfiltered channels take it.
    assert router.facts("gone", None, ChangeClass.CRITICAL) == ChangeFacts(
        "gone", "", (), ChangeClass.CRITICAL
    )


def test_a_record_without_country_is_routed_by_its_source_countries(router: Router) -> None:
    # sahel covers ML, so its page-wide record reaches the Mali channel; fcdo covers no country.
    sahel = router.route(router.facts("sahel", None, ChangeClass.SEVERE), T0)
    assert [p.channel for p in sahel] == ["everything", "mali-severe", "daily"]
    fcdo = router.route(router.facts("fcdo", None, ChangeClass.SEVERE), T0)
    assert [p.channel for p in fcdo] == ["everything", "fcdo-only", "daily"]


# --- route and plan -----------------------------------------------------------------------------


def test_route_lists_the_receiving_channels_in_configuration_order(router: Router) -> None:
    severe_mali = router.facts("uk-mali", None, ChangeClass.SEVERE)
    assert router.route(severe_mali, T0) == [
        Planned("everything", T0),
        Planned("mali-severe", T0),
        Planned("daily", datetime(2026, 3, 1, 18, 30, tzinfo=UTC), "daily:2026-03-01T18:30Z"),
    ]
    critical_fcdo = router.facts("fcdo", "FR", ChangeClass.CRITICAL)
    assert [p.channel for p in router.route(critical_fcdo, T0)] == ["everything", "fcdo-only", "daily", "ops"]
    assert router.route(router.facts("uk-mali", None, ChangeClass.NOISE), T0) == [Planned("everything", T0)]


def test_route_of_a_relaxed_change(router: Router) -> None:
    relaxed = router.facts("uk-mali", None, ChangeClass.RELAXED)
    assert [p.channel for p in router.route(relaxed, T0)] == ["everything", "daily"]
    assert [p.channel for p in router.route(relaxed, T0, {"mali-severe", "ops"})] == [
        "everything",
        "mali-severe",
        "daily",
    ]  # ops filters on uk-fcdo: an escalation list does not bypass filters


def test_critical_changes_skip_the_digest() -> None:
    for digest in ("hourly", "daily"):
        assert plan(channel(digest=digest), ChangeClass.CRITICAL, T0) == Planned("chat", T0, None)


@pytest.mark.parametrize(
    "change_class", [ChangeClass.UPDATE, ChangeClass.HEIGHTENED, ChangeClass.SEVERE, ChangeClass.RELAXED]
)
def test_other_changes_wait_for_the_digest(change_class: ChangeClass) -> None:
    at = datetime(2026, 3, 1, 12, 34, 56, 789, tzinfo=UTC)
    assert plan(channel(digest="hourly"), change_class, at) == Planned(
        "chat", datetime(2026, 3, 1, 13, 0, tzinfo=UTC), "hourly:2026-03-01T13:00Z"
    )
    assert plan(channel(digest="daily"), change_class, at) == Planned(
        "chat", datetime(2026, 3, 2, 7, 0, tzinfo=UTC), "daily:2026-03-02T07:00Z"
    )


def test_a_channel_without_digest_sends_at_once() -> None:
    at = datetime(2026, 3, 1, 12, 34, 56, tzinfo=UTC)
    assert plan(channel(), ChangeClass.UPDATE, at) == Planned("chat", at, None)


def test_batch_labels_are_the_period_and_its_end_in_utc() -> None:
    at = datetime(2026, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))  # 04:59:59 UTC
    assert plan(channel(digest="hourly"), ChangeClass.SEVERE, at).batch == "hourly:2027-01-01T05:00Z"
    late = channel(digest="daily", digest_at="21:05")
    assert plan(late, ChangeClass.SEVERE, at).batch == "daily:2027-01-01T21:05Z"


# --- digest_due ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "due"),
    [
        (datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),  # on the hour
        (datetime(2026, 3, 1, 12, 0, 0, 1, tzinfo=UTC), datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
        (datetime(2026, 3, 1, 12, 59, 59, 999999, tzinfo=UTC), datetime(2026, 3, 1, 13, 0, tzinfo=UTC)),
        (datetime(2026, 12, 31, 23, 30, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        # 12:10 at +05:30 is 06:40 UTC: the next full UTC hour is 07:00, not 13:00 local (07:30 UTC).
        (
            datetime(2026, 3, 1, 12, 10, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2026, 3, 1, 7, 0, tzinfo=UTC),
        ),
    ],
)
def test_hourly_digest_is_due_at_the_next_full_utc_hour(at: datetime, due: datetime) -> None:
    got = digest_due(channel(digest="hourly"), at)
    assert got == due
    assert got.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("digest_at", "at", "due"),
    [
        ("07:00", datetime(2026, 3, 1, 6, 59, 59, tzinfo=UTC), datetime(2026, 3, 1, 7, 0, tzinfo=UTC)),
        ("07:00", datetime(2026, 3, 1, 7, 0, tzinfo=UTC), datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),  # on it
        ("07:00", datetime(2026, 3, 1, 7, 0, 0, 1, tzinfo=UTC), datetime(2026, 3, 2, 7, 0, tzinfo=UTC)),
        ("18:30", datetime(2026, 3, 1, 12, 0, tzinfo=UTC), datetime(2026, 3, 1, 18, 30, tzinfo=UTC)),  # later
        (
            "06:15",
            datetime(2026, 3, 1, 12, 0, tzinfo=UTC),
            datetime(2026, 3, 2, 6, 15, tzinfo=UTC),
        ),  # earlier
        ("00:00", datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, 0, 0, tzinfo=UTC)),
        ("07:00", datetime(2026, 2, 28, 8, 0, tzinfo=UTC), datetime(2026, 3, 1, 7, 0, tzinfo=UTC)),
        # 08:30 at +02:00 is 06:30 UTC, before 07:00 UTC the same day.
        (
            "07:00",
            datetime(2026, 3, 1, 8, 30, tzinfo=timezone(timedelta(hours=2))),
            datetime(2026, 3, 1, 7, 0, tzinfo=UTC),
        ),
        # 01:30 at -07:00 is 08:30 UTC, past 07:00 UTC: the next one is the following day.
        (
            "07:00",
            datetime(2026, 3, 1, 1, 30, tzinfo=timezone(timedelta(hours=-7))),
            datetime(2026, 3, 2, 7, 0, tzinfo=UTC),
        ),
    ],
)
def test_daily_digest_is_due_at_the_next_digest_time_strictly_after(
    digest_at: str, at: datetime, due: datetime
) -> None:
    got = digest_due(channel(digest="daily", digest_at=digest_at), at)
    assert got == due
    assert got.utcoffset() == timedelta(0)


def test_daily_digest_time_defaults_to_seven_utc() -> None:
    assert channel(digest="daily").digest_at == time(7, 0)


offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
moments = st.builds(
    lambda naive, tz: naive.replace(tzinfo=tz),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1)),
    offsets,
)
times_of_day = st.builds(time, st.integers(0, 23), st.integers(0, 59))


@settings(max_examples=300, deadline=None, derandomize=True)
@given(at=moments, digest=st.sampled_from(["hourly", "daily"]), digest_at=times_of_day)
def test_digest_due_lands_on_the_first_period_boundary_strictly_after(
    at: datetime, digest: str, digest_at: time
) -> None:
    chan = channel(digest=digest, digest_at=f"{digest_at:%H:%M}")
    period = timedelta(hours=1) if digest == "hourly" else timedelta(days=1)
    due = digest_due(chan, at)
    assert due.utcoffset() == timedelta(0)
    assert at < due <= at + period
    assert (due.second, due.microsecond) == (0, 0)
    if digest == "hourly":
        assert due.minute == 0
    else:
        assert (due.hour, due.minute) == (digest_at.hour, digest_at.minute)
    # A boundary itself belongs to the period before it: the next one is a whole period later.
    assert digest_due(chan, due) == due + period
    assert digest_due(chan, due - timedelta(microseconds=1)) == due


# --- failure reports ----------------------------------------------------------------------------


def test_failure_reports_go_to_reporting_channels_except_the_failed_one() -> None:
    channels = [
        channel("a", report_failures=True),
        channel("b"),
        channel("c", report_failures=True),
        channel("d", report_failures=True),
    ]
    assert failure_recipients(channels, "c") == ["a", "d"]
    assert failure_recipients(channels, "b") == ["a", "c", "d"]
    assert failure_recipients(channels, "gone") == ["a", "c", "d"]
    assert failure_recipients([channel("a", report_failures=True)], "a") == []
    assert failure_recipients([], "a") == []
