"""The pure timing of checks: intervals, backoff, Retry-After and jitter, on a controlled clock."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.schedule import MAX_JITTER, MAX_RETRY_AFTER, backoff_delay, jitter_for, jittered, next_check

T0 = datetime(2025, 11, 7, 9, 0, tzinfo=UTC)
MIN = timedelta(minutes=1)


def test_a_working_source_is_due_one_interval_after_its_check_started() -> None:
    due = next_check(
        started=T0,
        finished=T0 + timedelta(seconds=4),
        interval=15 * MIN,
        failures=0,
        max_backoff=6 * 60 * MIN,
    )
    assert due == T0 + 15 * MIN


@pytest.mark.parametrize(
    ("failures", "wait"),
    [(0, 15), (1, 15), (2, 30), (3, 60), (4, 120), (5, 240), (6, 360), (7, 360), (50, 360), (10_000, 360)],
)
def test_failures_back_off_exponentially_up_to_the_cap(failures: int, wait: int) -> None:
    assert backoff_delay(15 * MIN, failures, 6 * 60 * MIN) == wait * MIN


def test_the_cap_never_shortens_a_long_interval() -> None:
    assert backoff_delay(24 * 60 * MIN, 3, 6 * 60 * MIN) == 24 * 60 * MIN


def test_the_first_success_returns_the_source_to_its_interval() -> None:
    after_failures = next_check(started=T0, finished=T0, interval=15 * MIN, failures=4, max_backoff=360 * MIN)
    after_success = next_check(started=T0, finished=T0, interval=15 * MIN, failures=0, max_backoff=360 * MIN)
    assert (after_failures - T0, after_success - T0) == (120 * MIN, 15 * MIN)


def test_retry_after_is_honoured_from_the_answer_that_asked_for_it() -> None:
    finished = T0 + timedelta(seconds=10)
    due = next_check(
        started=T0, finished=finished, interval=MIN, failures=1, max_backoff=60 * MIN, retry_after=3600
    )
    assert due == finished + timedelta(hours=1)


def test_a_short_retry_after_does_not_shorten_the_backoff() -> None:
    due = next_check(
        started=T0, finished=T0, interval=15 * MIN, failures=3, max_backoff=360 * MIN, retry_after=5
    )
    assert due == T0 + 60 * MIN


def test_an_absurd_retry_after_is_capped_at_a_day() -> None:
    due = next_check(
        started=T0, finished=T0, interval=15 * MIN, failures=1, max_backoff=360 * MIN, retry_after=10**9
    )
    assert due == T0 + MAX_RETRY_AFTER


@given(st.floats(min_value=0, max_value=0.999999), st.integers(min_value=1, max_value=7 * 24 * 3600))
def test_jitter_stays_within_a_tenth_of_the_interval_and_30_seconds(rand: float, seconds: int) -> None:
    interval = timedelta(seconds=seconds)
    late = jittered(T0, interval, lambda: rand) - T0
    assert timedelta() <= late <= min(MAX_JITTER, interval / 10)


def test_jitter_bounds() -> None:
    assert jitter_for(15 * MIN) == timedelta(seconds=30)
    assert jitter_for(timedelta(seconds=20)) == timedelta(seconds=2)
    assert jittered(T0, 15 * MIN, lambda: 0.5) == T0 + timedelta(seconds=15)
