"""The whole check loop against a real HTTP server on 127.0.0.1, on every database backend."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.config import Config, loads
from monitor.errors import ConfigError
from monitor.models import ChangeClass, Outcome, Record, Section
from monitor.pipeline import CheckReport, check_sources, compare
from monitor.store import Hold, Store, StoredSnapshot, content_hash
from tests.support.httpserver import LocalServer

PAGE = """<html><head><title>Mali - travel advice</title><script>var t = {token};</script></head>
<body><nav>Home | Countries</nav>
<main><h1>Mali</h1><p>Last reviewed: {reviewed}</p>
<div class="advice"><p>We advise against all travel to Mali.</p><p>{extra}</p></div></main>
</body></html>"""


def page(extra: str = "Carry identification at all times.", token: int = 1, reviewed: str = "1 Nov") -> str:
    return PAGE.format(extra=extra, token=token, reviewed=reviewed)


def make_config(
    server: LocalServer, *, options: str = "{select: .advice}", extra_sources: str = ""
) -> Config:
    text = f"""
countries: [ML]
defaults: {{timeout: 2s}}
sources:
  - {{id: uk-mali, kind: html, url: "{server.url("/mali")}", countries: [ML], options: {options}}}
{extra_sources}
"""
    return loads(text, path=Path("test.yaml"), environ={})


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    with Store.open(database_url) as store:
        yield store


def check(config: Config, store: Store, *ids: str) -> list[CheckReport]:
    store.sync_sources(((s.id, s.kind, s.url) for s in config.sources), _now())
    return asyncio.run(check_sources(config, store, ids))


def _now() -> datetime:
    return datetime.now(UTC)


def test_snapshot_only_when_content_changes(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page())
    [first] = check(config, store)
    assert first.outcome is Outcome.NEW
    assert first.new_keys == ("ML",)
    assert store.counts()["snapshots"] == 1

    # Same advice, different script token and chrome: not a change, no snapshot.
    http_server.route("/mali", page(token=2))
    for _ in range(3):
        [again] = check(config, store)
        assert again.outcome is Outcome.UNCHANGED
    assert store.counts()["snapshots"] == 1
    assert store.counts()["checks"] == 4

    http_server.route("/mali", page(extra="Keep a copy of your passport with you."))
    [changed] = check(config, store)
    assert changed.outcome is Outcome.CHANGED
    [change] = changed.changes
    assert change.key == "ML"
    assert change.change_class is ChangeClass.UPDATE
    assert "+Keep a copy of your passport with you." in change.diff
    assert "-Carry identification at all times." in change.diff
    assert store.counts()["snapshots"] == 2
    [stored] = store.changes(source_id="uk-mali")
    assert stored.change_class == "update"


def test_the_same_body_read_the_same_way_is_not_parsed_again(
    http_server: LocalServer, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server without validators sends the whole page every time: when its bytes are those
    stored and the source reads them as before, the check is unchanged without parsing. New
    options read the same bytes again."""
    from monitor.sources.html import HtmlSource

    parsed: list[str] = []
    real_parse = HtmlSource.parse

    def counting_parse(self: HtmlSource, body: bytes, **kwargs: object) -> list[Record]:
        parsed.append(self.id)
        return real_parse(self, body, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(HtmlSource, "parse", counting_parse)
    http_server.route("/mali", page())
    config = make_config(http_server)
    outcomes = [check(config, store)[0].outcome for _ in range(3)]
    assert outcomes == [Outcome.NEW, Outcome.UNCHANGED, Outcome.UNCHANGED]
    assert parsed == ["uk-mali"]  # only the first body was parsed

    http_server.route("/mali", page(token=2))  # other bytes, same advice: parsed, unchanged
    assert check(config, store)[0].outcome is Outcome.UNCHANGED and len(parsed) == 2

    wider = make_config(http_server, options="{select: main}")  # the same bytes, read otherwise
    [report] = check(wider, store)
    assert report.outcome is Outcome.CHANGED and len(parsed) == 3
    assert check(wider, store)[0].outcome is Outcome.UNCHANGED and len(parsed) == 3


def test_conditional_get_304_is_unchanged(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page(), etag='"v1"')
    assert check(config, store)[0].outcome is Outcome.NEW
    [second] = check(config, store)
    assert second.outcome is Outcome.NOT_MODIFIED
    assert second.http_status == 304
    assert http_server.requests[-1].headers.get("If-None-Match") == '"v1"'
    assert store.counts()["snapshots"] == 1


def test_failures_are_recorded_and_never_reset_state(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page(), etag='"v1"')
    check(config, store)
    http_server.route("/mali", "oops", status=503)
    [failed] = check(config, store)
    assert failed.outcome is Outcome.FAILED
    assert failed.error and "503" in failed.error
    state = store.source_state("uk-mali")
    assert state.validators.etag == '"v1"'
    assert state.consecutive_failures == 1
    # The server comes back with the same page: no change against the last good snapshot.
    http_server.route("/mali", page(token=9))
    assert check(config, store)[0].outcome is Outcome.UNCHANGED
    assert store.counts()["changes"] == 0
    assert store.source_state("uk-mali").consecutive_failures == 0


def test_structure_change_is_a_parse_failure_not_a_change(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page())
    check(config, store)
    http_server.route("/mali", "<html><body><p>Site redesigned</p></body></html>")
    [report] = check(config, store)
    assert report.outcome is Outcome.PARSE_FAILED
    assert report.error == "selector '.advice' matched nothing"
    assert store.counts()["changes"] == 0
    assert store.counts()["snapshots"] == 1


def test_one_failing_source_does_not_stop_others(http_server: LocalServer, store: Store) -> None:
    extra = f'  - {{id: gone, kind: html, url: "{http_server.url("/gone")}", countries: [ML]}}\n'
    extra += '  - {id: refused, kind: html, url: "http://127.0.0.1:1/x", countries: [ML]}'
    config = make_config(http_server, extra_sources=extra)
    http_server.route("/mali", page())
    reports = {r.source_id: r for r in check(config, store)}
    assert reports["uk-mali"].outcome is Outcome.NEW
    assert reports["gone"].outcome is Outcome.FAILED
    assert reports["gone"].http_status == 404
    assert reports["refused"].outcome is Outcome.FAILED
    assert reports["refused"].error
    assert store.counts()["checks"] == 3


def test_blocked_page_is_recorded_as_blocked(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", "<html><title>Access denied</title></html>", status=403)
    [report] = check(config, store)
    assert report.outcome is Outcome.BLOCKED
    assert store.counts()["snapshots"] == 0


def test_oversized_and_truncated_bodies_fail_without_change(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page())
    check(config, store)
    http_server.route("/mali", page(extra="x" * 6_000_000))
    [big] = check(config, store)
    assert big.outcome is Outcome.FAILED
    assert big.error and "larger than" in big.error
    assert store.counts()["changes"] == 0


def test_mis_declared_charset_is_read_as_what_the_bytes_are(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    body = page(extra="Vigilance renforcée à Bamako.").encode("latin-1")
    http_server.route("/mali", body, content_type="text/html; charset=utf-8")
    [report] = check(config, store)
    assert report.outcome is Outcome.NEW
    [snapshot] = store.latest_snapshots("uk-mali").values()
    assert "Vigilance renforcée à Bamako." in snapshot.record.text


def test_stray_undecodable_bytes_are_not_a_change(http_server: LocalServer, store: Store) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page(extra="Vigilance renforcée à Bamako."))
    check(config, store)
    damaged = page(extra="Vigilance renforcée à Bamako.").encode().replace("à".encode(), b"\xe0")
    http_server.route("/mali", damaged)

    [report] = check(config, store)

    assert report.outcome is Outcome.UNCHANGED
    assert store.counts()["changes"] == 0


def test_a_page_cut_short_fails_and_the_next_whole_one_is_compared_with_the_last(
    http_server: LocalServer, store: Store
) -> None:
    config = make_config(http_server)
    http_server.route("/mali", page())
    check(config, store)
    http_server.route("/mali", page(extra="Leave Mali now.")[:-60])

    [cut] = check(config, store)
    http_server.route("/mali", page(extra="Leave Mali now."))
    [whole] = check(config, store)

    assert cut.outcome is Outcome.FAILED
    assert cut.error and cut.error.startswith("incomplete page")
    assert whole.outcome is Outcome.CHANGED
    [change] = store.changes()
    assert "-Carry identification at all times." in change.diff
    assert "+Leave Mali now." in change.diff


def test_source_broken_after_consecutive_failures(
    http_server: LocalServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(http_server)
    http_server.route("/mali", "down", status=500)
    failures = [check(config, store)[0].consecutive_failures for _ in range(4)]
    assert failures == [1, 2, 3, 4]
    broken = [r for r in caplog.records if "source broken" in r.getMessage()]
    assert len(broken) == 1
    assert "uk-mali: source broken: 3 consecutive failed checks (HTTP 500" in broken[0].getMessage()
    http_server.route("/mali", page())
    assert check(config, store)[0].consecutive_failures == 0


KINDS = Path(__file__).parent / "fixtures" / "kinds"


def test_ministry_feed_end_to_end_with_structure_change(
    http_server: LocalServer, store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    """A real kind over HTTP: a baseline, an escalation, then a feed that lost its levels."""
    text = f"""
defaults: {{timeout: 2s, failures_before_broken: 2}}
sources:
  - {{id: us-state, kind: us-state, url: "{http_server.url("/TAsTWs.xml")}", countries: [ML]}}
"""
    config = loads(text, path=Path("test.yaml"), environ={})
    feed = "application/rss+xml"
    before = (KINDS / "us-state" / "mali-2025-10-23" / "input.xml").read_bytes()
    after = (KINDS / "us-state" / "mali-2025-10-24-authorized" / "input.xml").read_bytes()
    http_server.route("/TAsTWs.xml", before, content_type=feed)
    assert check(config, store)[0].outcome is Outcome.NEW
    http_server.route("/TAsTWs.xml", after, content_type=feed)
    [escalation] = check(config, store)[0].changes
    assert escalation.change_class is ChangeClass.SEVERE
    assert "staff departure: none → authorized" in escalation.reasons

    broken = after.replace(b" - Level 4: Do Not Travel", b"").replace(b"Threat-Level", b"Threat")
    http_server.route("/TAsTWs.xml", broken, content_type=feed)
    reports = [check(config, store)[0] for _ in range(2)]
    assert [r.outcome for r in reports] == [Outcome.PARSE_FAILED, Outcome.PARSE_FAILED]
    assert store.counts()["changes"] == 1
    assert any("us-state: source broken: 2 consecutive" in r.getMessage() for r in caplog.records)


def _snapshot(record: Record) -> StoredSnapshot:
    return StoredSnapshot(1, record.key, content_hash(record), record, datetime(2025, 10, 1, tzinfo=UTC))


MALI_L4 = Record(
    key="ML",
    title="Mali - Level 4: Do Not Travel",
    url="https://travel.state.gov/mali",
    country="ML",
    level=4,
    level_label="Do Not Travel",
    sections=(Section("advisory", "Do not travel to Mali for any reason due to crime and terrorism."),),
)


def test_glitch_guard_holds_an_unsupported_level_drop_then_drops_it_when_it_reverts() -> None:
    glitch = replace(MALI_L4, level=1, level_label="Exercise Normal Precautions")
    first = compare({"ML": _snapshot(MALI_L4)}, [glitch])
    assert (first.snapshots, first.changes) == ((), ())
    assert first.holds == (Hold("ML", content_hash(glitch)),)
    reverted = compare({"ML": _snapshot(MALI_L4)}, [MALI_L4], {"ML": content_hash(glitch)})
    assert (reverted.snapshots, reverted.changes, reverted.holds, reverted.releases) == ((), (), (), ("ML",))


def test_glitch_guard_confirms_a_level_change_seen_twice() -> None:
    lowered = replace(MALI_L4, level=3, level_label="Reconsider Travel")
    held = compare({"ML": _snapshot(MALI_L4)}, [lowered])
    confirmed = compare({"ML": _snapshot(MALI_L4)}, [lowered], {"ML": held.holds[0].content_hash})
    [change] = confirmed.changes
    assert change.change.change_class is ChangeClass.RELAXED
    assert confirmed.releases == ("ML",)
    assert confirmed.holds == ()


def test_a_level_change_the_text_supports_or_a_critical_one_is_not_held() -> None:
    text = "Reconsider travel to Mali due to crime and terrorism."
    supported = replace(
        MALI_L4, level=3, level_label="Reconsider Travel", sections=(Section("advisory", text),)
    )
    assert compare({"ML": _snapshot(MALI_L4)}, [supported]).changes
    critical = replace(MALI_L4, level=3, leave_now=True)
    [change] = compare({"ML": _snapshot(MALI_L4)}, [critical]).changes
    assert change.change.change_class is ChangeClass.CRITICAL


def test_held_change_over_http_is_confirmed_on_the_next_poll(http_server: LocalServer, store: Store) -> None:
    text = f"""
sources:
  - {{id: us-state, kind: us-state, url: "{http_server.url("/feed")}", countries: [ML]}}
"""
    config = loads(text, path=Path("test.yaml"), environ={})
    feed = (KINDS / "us-state" / "mali-2025-10-23" / "input.xml").read_bytes()
    http_server.route("/feed", feed, content_type="application/rss+xml")
    check(config, store)
    glitch = feed.replace(b"Level 4: Do Not Travel", b"Level 1: Exercise Normal Precautions")
    http_server.route("/feed", glitch, content_type="application/rss+xml")
    assert check(config, store)[0].outcome is Outcome.HELD
    assert store.pending("us-state") and store.counts()["changes"] == 0
    http_server.route("/feed", feed, content_type="application/rss+xml")
    assert check(config, store)[0].outcome is Outcome.UNCHANGED
    assert store.pending("us-state") == {} and store.counts()["changes"] == 0
    http_server.route("/feed", glitch, content_type="application/rss+xml")
    check(config, store)
    [confirmed] = check(config, store)[0].changes
    assert confirmed.change_class is ChangeClass.RELAXED
    assert store.counts()["changes"] == 1


def test_configured_rule_files_extend_the_classification(
    http_server: LocalServer, store: Store, tmp_path: Path
) -> None:
    (tmp_path / "extra.yaml").write_text(
        "language: en\nrules:\n"
        "  - name: locust swarms\n    class: heightened\n    applies_to: [ministry]\n"
        "    patterns: ['locust swarms?']\n",
        encoding="utf-8",
    )
    text = f"""
rules: [extra.yaml]
sources:
  - id: uk-mali
    kind: html
    url: "{http_server.url("/mali")}"
    options: {{select: .advice}}
"""
    config = loads(text, path=tmp_path / "monitor.yaml", environ={})
    http_server.route("/mali", page())
    check(config, store)
    http_server.route("/mali", page(extra="Locust swarms are reported near Kayes."))
    [change] = check(config, store)[0].changes
    assert change.change_class is ChangeClass.HEIGHTENED
    assert change.reasons[0].startswith("locust swarms: “Locust swarms are reported near Kayes.")


def test_an_invalid_rule_file_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text(
        "language: en\nrules:\n  - name: x\n    class: loud\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as info:
        loads("rules: [bad.yaml]\n", path=tmp_path / "monitor.yaml", environ={})
    assert str(info.value).startswith(f"{tmp_path / 'monitor.yaml'}: rules: ")
    assert "bad.yaml" in str(info.value)
