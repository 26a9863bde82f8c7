"""Reading a history from the store, on every backend: points, changes, countries, notices,
alert delivery, health, windows; and the migration that gives existing snapshots their facts."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config as AlembicConfig

from monitor.alerts.routing import Router
from monitor.config import Config, loads
from monitor.database import MIGRATIONS, open_engine
from monitor.health import Health, Verdict
from monitor.healthstore import record as record_health
from monitor.models import Change, ChangeClass, Notice, NoticeStatus, Outcome, Record, Section
from monitor.report.history import Window
from monitor.report.load import data_version, load_history
from monitor.store import ChangeWrite, CheckWrite, SnapshotWrite, Store

T0 = datetime(2025, 10, 20, 9, 0, tzinfo=UTC)
NOW = datetime(2025, 11, 12, 12, 0, tzinfo=UTC)

CONFIG = """
sources:
  - {id: uk, kind: uk-fcdo, url: "https://www.gov.uk/api/content/foreign-travel-advice/mali", countries: [ML]}
  - {id: sahel, kind: html, url: "https://example.org/sahel", countries: [ML, BF], publisher: Sahel desk,
     options: {select: .advice}}
  - {id: msc, kind: msc, url: "https://www.msc.com/en/newsroom/customer-advisories", countries: [ML]}
alerts:
  - {name: desk, url: "json://127.0.0.1:9/hook", min_class: heightened}
"""


def config() -> Config:
    return loads(CONFIG, path=Path("monitor.yaml"), environ={})


def uk(version: int) -> Record:
    labels = {1: "Advise against all but essential travel", 2: "Advise against all travel"}
    return Record(
        key="ML",
        title="Mali travel advice",
        url="https://www.gov.uk/foreign-travel-advice/mali",
        country="ML",
        level=3 + (version > 1),
        level_label=labels[min(version, 2)],
        updated_at=T0 + timedelta(days=version),
        sections=(Section("summary", f"Summary version {version}. " + "Long text. " * 200),),
    )


def page(version: int) -> Record:
    return Record(
        key="page", title="Sahel", url="https://example.org/sahel", sections=(Section("", f"v{version}"),)
    )


def carrier(*notices: Notice) -> Record:
    return Record(
        key="ML", title="MSC advisories for Mali", url="https://www.msc.com/", country="ML", notices=notices
    )


SUSPENDED = Notice(
    "mali-1",
    "Suspension of bookings to Mali",
    "https://www.msc.com/en/newsroom/customer-advisories/mali-1",
    NoticeStatus.SUSPENSION,
    datetime(2025, 11, 6, 8, 0, tzinfo=UTC),
    ("ML",),
    "Long notice text. " * 100,
)
RESUMED = Notice(
    "mali-2",
    "Resumption of bookings to Mali",
    "https://www.msc.com/en/newsroom/customer-advisories/mali-2",
    NoticeStatus.RESUMPTION,
    datetime(2025, 11, 10, 8, 0, tzinfo=UTC),
    ("ML",),
)


def write(
    store: Store,
    source: str,
    at: datetime,
    after: Record,
    before: Record | None = None,
    *,
    change_class: ChangeClass = ChangeClass.SEVERE,
    router: Router | None = None,
) -> None:
    changes = ()
    if before is not None:
        diff = f"--- before\n+++ after\n-{before.text[:20]}\n+{after.text[:20]}\n"
        change = Change(
            after.key, change_class, ("level raised: “all travel”",), diff, before.level, after.level, at
        )
        changes = (ChangeWrite(after.key, change),)
    store.save_check(
        CheckWrite(
            source_id=source,
            started_at=at,
            duration_ms=10,
            http_status=200,
            size=1,
            outcome=Outcome.CHANGED if changes else Outcome.NEW,
            error=None,
            validators=None,
            body=None,
            body_hash=None,
            snapshots=(SnapshotWrite(after.key, after),),
            changes=changes,
        ),
        router,
    )


def fill(store: Store) -> None:
    """The sources of CONFIG with a Mali history: a raise, a page update, a suspension, a resumption."""
    cfg = config()
    store.sync_sources([(s.id, s.kind, s.url) for s in cfg.sources], T0)
    router = Router.from_config(cfg)
    write(store, "uk", T0, uk(1))
    write(store, "sahel", T0, page(1))
    write(store, "msc", T0, carrier())
    write(store, "uk", T0 + timedelta(days=10), uk(2), uk(1), router=router)
    write(
        store,
        "sahel",
        T0 + timedelta(days=12),
        page(2),
        page(1),
        change_class=ChangeClass.UPDATE,
        router=router,
    )
    write(store, "msc", T0 + timedelta(days=17), carrier(SUSPENDED), carrier(), router=router)
    resumed = carrier(SUSPENDED, RESUMED)
    write(
        store,
        "msc",
        T0 + timedelta(days=21),
        resumed,
        carrier(SUSPENDED),
        change_class=ChangeClass.RELAXED,
        router=router,
    )


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as opened:
        fill(opened)
        yield opened


def test_a_history_lists_sources_points_and_changes_in_order(store: Store) -> None:
    history = load_history(store, config(), Window(), NOW)
    assert [s.id for s in history.sources] == ["uk", "sahel", "msc"]
    assert [s.publisher for s in history.sources] == ["UK FCDO", "Sahel desk", "MSC"]
    assert history.countries == ("BF", "ML")
    assert [(c.source_id, c.change_class) for c in history.changes] == [
        ("uk", ChangeClass.SEVERE),
        ("sahel", ChangeClass.UPDATE),
        ("msc", ChangeClass.SEVERE),
        ("msc", ChangeClass.RELAXED),
    ]
    first = history.changes[0]
    assert (first.level_before, first.level_after) == (3, 4)
    assert (first.label_before, first.label_after) == (
        "Advise against all but essential travel",
        "Advise against all travel",
    )
    assert first.countries == ("ML",) and first.country == "ML"
    assert first.url == "https://www.gov.uk/foreign-travel-advice/mali"
    assert first.published_at == T0 + timedelta(days=10)
    assert first.reasons == ("level raised: “all travel”",)
    uk_points = [(p.at, p.level, p.label) for p in history.points if p.source_id == "uk"]
    assert uk_points == [
        (T0, 3, "Advise against all but essential travel"),
        (T0 + timedelta(days=10), 4, "Advise against all travel"),
    ]


def test_a_page_without_a_country_counts_for_its_sources_countries(store: Store) -> None:
    history = load_history(store, config(), Window(), NOW)
    [sahel] = [c for c in history.changes if c.source_id == "sahel"]
    assert sahel.countries == ("ML", "BF") and sahel.country is None
    assert {(p.country, p.at) for p in history.points if p.source_id == "sahel"} == {
        (country, T0 + timedelta(days=days)) for country in ("ML", "BF") for days in (0, 12)
    }
    burkina = load_history(store, config(), Window(countries=("BF",)), NOW)
    assert [c.source_id for c in burkina.changes] == ["sahel"]
    assert burkina.changes[0].countries == ("BF",)
    assert {p.country for p in burkina.points} == {"BF"}
    assert burkina.countries == ("BF",)


def test_carrier_points_carry_the_notice_in_effect_and_changes_the_notice_they_are_about(
    store: Store,
) -> None:
    history = load_history(store, config(), Window(), NOW)
    notices = [p.notice.status if p.notice else None for p in history.points if p.source_id == "msc"]
    assert notices == [None, NoticeStatus.SUSPENSION, NoticeStatus.RESUMPTION]
    suspension, resumption = [c for c in history.changes if c.source_id == "msc"]
    assert suspension.notice is not None and suspension.notice.id == "mali-1"
    assert (suspension.title, suspension.url) == (SUSPENDED.title, SUSPENDED.url)
    assert resumption.notice is not None and resumption.notice.status is NoticeStatus.RESUMPTION
    assert resumption.notice.published_at == RESUMED.published_at


def test_alert_delivery_is_counted_per_change(store: Store) -> None:
    alerts = store.outbox.alerts()
    by_change = {a.change_id: a for a in alerts}
    history = load_history(store, config(), Window(), NOW)
    uk_change = history.changes[0]
    sent_at = uk_change.detected_at + timedelta(seconds=7)
    store.outbox.mark_sent([by_change[uk_change.id].id], sent_at)
    history = load_history(store, config(), Window(), NOW)
    facts = {c.source_id + str(c.change_class): c for c in history.changes}
    uk_change = facts["uksevere"]
    assert (uk_change.alerts_sent, uk_change.alerts_pending, uk_change.first_sent_at) == (1, 0, sent_at)
    assert uk_change.delivery_delay == timedelta(seconds=7)
    # Below the channel's threshold: no alert at all.
    assert facts["sahelupdate"].alerts_pending + facts["sahelupdate"].alerts_sent == 0
    assert facts["mscsevere"].alerts_pending == 1
    assert history.alerts == {"pending": 2, "sent": 1, "failed": 0}


def test_a_window_keeps_the_state_before_it_and_the_changes_inside_it(store: Store) -> None:
    window = Window(since=T0 + timedelta(days=11), until=T0 + timedelta(days=18))
    history = load_history(store, config(), window, NOW)
    assert [(c.source_id, c.detected_at) for c in history.changes] == [
        ("sahel", T0 + timedelta(days=12)),
        ("msc", T0 + timedelta(days=17)),
    ]
    uk_points = [(p.at, p.level) for p in history.points if p.source_id == "uk"]
    assert uk_points == [(T0 + timedelta(days=10), 4)]  # the state at the window's start
    msc_points = [p.at for p in history.points if p.source_id == "msc"]
    assert msc_points == [T0, T0 + timedelta(days=17)]  # the resumption is after the window


def test_health_events_and_sources_no_longer_configured(store: Store) -> None:
    event_at = T0 + timedelta(days=5)
    with store.engine.begin() as conn:
        record_health(conn, "uk", Verdict(Health.UNHEALTHY, "blocked: HTTP 403"), event_at, None)
    narrowed = loads(CONFIG.replace("  - {id: msc", "  - {id: gone"), path=Path("m.yaml"), environ={})
    history = load_history(store, narrowed, Window(), NOW)
    assert [(e.source_id, e.state, e.reason) for e in history.health_events] == [
        ("uk", "unhealthy", "blocked: HTTP 403")
    ]
    msc = history.sources[-1]
    assert (msc.id, msc.active, msc.interval, msc.publisher) == ("msc", False, None, "MSC")
    later = load_history(store, narrowed, Window(since=T0 + timedelta(days=22)), NOW)
    assert "msc" in [s.id for s in later.sources]  # its last point tells the state in the window
    assert later.changes == () and later.health_events == ()


def test_configured_sources_not_checked_yet_are_listed(database_url: str) -> None:
    with Store.open(database_url) as empty:
        history = load_history(empty, config(), Window(), NOW)
    assert [s.id for s in history.sources] == ["uk", "sahel", "msc"]
    assert all(s.last_check_at is None and s.active for s in history.sources)
    assert history.countries == ("BF", "ML") and history.changes == ()


def test_the_data_version_moves_with_every_write(store: Store) -> None:
    before = data_version(store)
    assert data_version(store) == before
    write(store, "uk", NOW, uk(3), uk(2), change_class=ChangeClass.UPDATE)
    assert data_version(store) != before


def test_the_migration_gives_existing_snapshots_their_facts(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = open_engine(url, migrate=False)
    try:
        alembic = AlembicConfig(stdout=io.StringIO())
        alembic.set_main_option("script_location", str(MIGRATIONS))
        with engine.begin() as conn:
            alembic.attributes["connection"] = conn
            command.upgrade(alembic, "0004")
        record = carrier(SUSPENDED)
        with engine.begin() as conn:
            conn.execute(
                sa.text("INSERT INTO sources (id, kind, url, created_at) VALUES ('msc', 'msc', 'u', :t)"),
                {"t": T0.replace(tzinfo=None)},
            )
            conn.execute(
                sa.text(
                    "INSERT INTO checks (id, source_id, started_at, duration_ms, bytes, outcome) "
                    "VALUES (1, 'msc', :t, 1, 1, 'new')"
                ),
                {"t": T0.replace(tzinfo=None)},
            )
            conn.execute(
                sa.text("INSERT INTO contents (hash, text) VALUES ('h', :text)"), {"text": record.canonical()}
            )
            conn.execute(
                sa.text(
                    "INSERT INTO snapshots (id, source_id, key, content_hash, taken_at, check_id) "
                    "VALUES (1, 'msc', 'ML', 'h', :t, 1)"
                ),
                {"t": T0.replace(tzinfo=None)},
            )
    finally:
        engine.dispose()
    with Store.open(url) as store:
        with store.engine.connect() as conn:
            country, facts = conn.execute(sa.text("SELECT country, facts FROM snapshots")).one()
        assert country == "ML"
        stored = json.loads(facts) if isinstance(facts, str) else facts
        assert stored["title"] == "MSC advisories for Mali"
        assert stored["notices"] == [
            {
                "id": "mali-1",
                "title": SUSPENDED.title,
                "url": SUSPENDED.url,
                "status": "suspension",
                "published_at": "2025-11-06T08:00:00+00:00",
            }
        ]
        history = load_history(store, config(), Window(), NOW)
        [point] = history.points
        assert point.notice is not None and point.notice.status is NoticeStatus.SUSPENSION
