from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import Config, load, loads, parse_duration, parse_size
from monitor.errors import ConfigError
from monitor.models import ChangeClass

ROOT = Path(__file__).resolve().parents[1]

VALID = """
database: sqlite:///data/monitor.db
defaults: {interval: 15m, timeout: 30s, user_agent: "ua/1", max_body: 5MB, concurrency: 16, per_host: 2}
countries: [ML, BF, NE]
sources:
  - {id: fr-mali, kind: html, url: "https://example.org/mali", countries: [ML], interval: 15m, options: {}}
  - id: cma
    kind: html
    url: "https://example.org/news"
    countries: [ml, bf]
    options: {select: [main, "#news"]}
alerts:
  - {name: ops-email, url: "mailto://${SMTP_USER}:${SMTP_PASS}@example.org", min_class: heightened}
"""
ENV = {"SMTP_USER": "alice", "SMTP_PASS": "s3cret-password"}


def parse(text: str, environ: dict[str, str] | None = None) -> Config:
    return loads(text, path=Path("config/monitor.yaml"), environ=ENV if environ is None else environ)


def error_of(text: str, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(text, environ)
    assert info.value.exit_code == 2
    return str(info.value)


def test_valid_config_is_frozen_and_typed() -> None:
    config = parse(VALID)
    assert config.defaults.interval == timedelta(minutes=15)
    assert config.defaults.timeout == timedelta(seconds=30)
    assert config.defaults.max_body == 5_000_000
    assert config.countries == ("ML", "BF", "NE")
    assert config.sources[1].countries == ("ML", "BF")
    assert config.sources[1].options == {"select": ["main", "#news"]}
    assert config.alerts[0].url == "mailto://alice:s3cret-password@example.org"
    assert config.alerts[0].threshold is ChangeClass.HEIGHTENED
    assert config.interval_of(config.sources[1]) == timedelta(minutes=15)
    with pytest.raises(Exception, match="frozen"):
        config.sources[0].url = "https://other.example"  # type: ignore[misc]


def test_shipped_config_is_valid() -> None:
    config = load(ROOT / "config" / "monitor.yaml", environ={})
    assert set(config.countries) == {"ML", "BF", "NE"}
    hosts = {s.url.split("/")[2] for s in config.sources}
    assert {
        "www.diplomatie.gouv.fr",
        "travel.state.gov",
        "www.gov.uk",
        "www.msc.com",
        "www.cma-cgm.com",
    } <= hosts
    for country in ("ML", "BF", "NE"):
        covering = {s.url.split("/")[2] for s in config.sources if country in s.countries}
        assert {
            "www.diplomatie.gouv.fr",
            "travel.state.gov",
            "www.gov.uk",
            "www.msc.com",
            "www.cma-cgm.com",
        } <= covering


def test_typo_in_source_key_names_file_entry_key_and_allowed() -> None:
    text = VALID.replace("interval: 15m, options", "intervall: 15m, options")
    assert error_of(text) == (
        "config/monitor.yaml: sources[0] (id: fr-mali): unknown key 'intervall'; "
        "allowed: countries, fetcher, id, interval, kind, options, publisher, url, wait_for"
    )


def test_unknown_kind_lists_allowed_kinds() -> None:
    message = error_of(
        VALID.replace('kind: html, url: "https://example.org/mali"', 'kind: htm, url: "https://x.org"')
    )
    assert message.startswith(
        "config/monitor.yaml: sources[0] (id: fr-mali): kind: unknown kind 'htm'; allowed: "
    )
    assert "html" in message


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ('url: "https://example.org/mali"', 'url: "ftp://example.org/x"', "sources[0] (id: fr-mali): url: "),
        ("countries: [ML]", "countries: [XX]", "'XX' is not an ISO 3166-1 alpha-2 country code"),
        ("countries: [ML]", "countries: [NO]", "quote country codes"),
        ("interval: 15m, options", "interval: soon, options", "expected a duration"),
        ("max_body: 5MB", "max_body: huge", "defaults: max_body: expected a size"),
        ("per_host: 2", "per_host: 0", "defaults: per_host: "),
        ("min_class: heightened", "min_class: loud", "alerts[0] (name: ops-email): min_class: "),
        ("min_class: heightened", "min_class: relaxed", "'severe' or 'critical' (got 'relaxed')"),
        ("id: cma\n", "id: fr-mali\n", "sources[1] (id: fr-mali): duplicate id 'fr-mali'"),
        ("id: cma\n", "id: Bad Id\n", "sources[1] (id: Bad Id): id: "),
        (
            "options: {select: [main",
            "options: {selct: [main",
            "sources[1] (id: cma): options: unknown key 'selct'",
        ),
        ('select: [main, "#news"]', 'select: ["main >>> p"]', "invalid CSS selector"),
        ("interval: 15m, options", "wait_for: main, options", "wait_for applies only with fetcher: browser"),
        (
            "interval: 15m, options",
            "fetcher: browser, wait_for: 'p >>', options",
            "invalid CSS selector 'p >>'",
        ),
        ("interval: 15m, options", "fetcher: curl, options", "fetcher: Input should be 'http' or 'browser'"),
        (
            "database: sqlite",
            "databse: sqlite",
            "unknown key 'databse'; allowed: alerts, countries, database",
        ),
    ],
)
def test_bad_values_are_named(before: str, after: str, expected: str) -> None:
    assert before in VALID
    assert expected in error_of(VALID.replace(before, after, 1))


def test_missing_required_key() -> None:
    assert "sources[0] (id: fr-mali): missing key 'url'" in error_of(
        VALID.replace('url: "https://example.org/mali", ', "")
    )


def test_missing_environment_variable_is_an_error() -> None:
    message = error_of(VALID, environ={"SMTP_USER": "alice"})
    assert "environment variable SMTP_PASS is not set" in message


def test_environment_default_value() -> None:
    config = parse(VALID.replace("${SMTP_PASS}", "${SMTP_PASS:-fallback}"), environ={"SMTP_USER": "a"})
    assert config.alerts[0].url == "mailto://a:fallback@example.org"


def test_invalid_apprise_url_names_channel_without_secret() -> None:
    text = VALID.replace("mailto://${SMTP_USER}:${SMTP_PASS}@example.org", "nosuchservice://${SMTP_PASS}@x")
    message = error_of(text)
    assert "alerts[0] (name: ops-email): url: apprise cannot use a nosuchservice:// URL" in message
    assert ENV["SMTP_PASS"] not in message


def test_invalid_apprise_url_written_with_a_literal_secret_does_not_echo_it() -> None:
    text = VALID.replace("mailto://${SMTP_USER}:${SMTP_PASS}@example.org", "mailto://bob:hunter2-literal@")
    message = error_of(text)
    assert "alerts[0] (name: ops-email): url: apprise cannot use a mailto:// URL" in message
    assert "hunter2-literal" not in message


def test_not_yaml_and_not_a_mapping() -> None:
    assert "not valid YAML" in error_of("sources: [unclosed")
    assert "top level must be a mapping" in error_of("- just\n- a list\n")


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configuration file not found"):
        load(tmp_path / "nope.yaml")


def test_empty_file_gives_defaults() -> None:
    config = parse("")
    assert config.sources == ()
    assert config.database.startswith("sqlite:///")


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("30s", 30), ("1h", 3600), ("2d", 172800), (45, 45), ("500ms", 0.5)]
)
def test_durations(text: str | int, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


@pytest.mark.parametrize(
    ("text", "size"), [("5MB", 5_000_000), ("512KiB", 524288), (1000, 1000), ("1 gb", 10**9)]
)
def test_sizes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("bad", ["0s", "-5m", "fast", True, None])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(bad)


CHANNEL = 'mailto://${SMTP_USER}:${SMTP_PASS}@example.org", min_class: heightened'


def with_channel(extra: str) -> str:
    return VALID.replace(CHANNEL, f"{CHANNEL}, {extra}")


def test_alert_channel_filters_digest_and_delivery_settings() -> None:
    config = parse(
        with_channel(
            "countries: [ml], sources: [cma], kinds: [html], digest: daily, digest_at: '06:30', "
            "max_attempts: 5, report_failures: true"
        )
    )
    [channel] = config.alerts
    assert channel.countries == ("ML",)
    assert channel.sources == ("cma",)
    assert channel.kinds == ("html",)
    assert (channel.digest, channel.digest_at.hour, channel.digest_at.minute) == ("daily", 6, 30)
    assert (channel.max_attempts, channel.report_failures) == (5, True)
    assert parse(VALID).alerts[0].digest is None


def test_unquoted_digest_time_read_by_yaml_as_minutes_is_understood() -> None:
    # YAML 1.1 reads 06:30 unquoted as the sexagesimal number 390.
    assert parse(with_channel("digest: daily, digest_at: 06:30")).alerts[0].digest_at.hour == 6


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            "sources: [nope]",
            "alerts[0] (name: ops-email): sources: unknown source 'nope'; configured: cma, fr-mali",
        ),
        ("kinds: [carrier]", "alerts[0] (name: ops-email): kinds: unknown kind 'carrier'; allowed: "),
        ("digest: weekly", "alerts[0] (name: ops-email): digest: "),
        (
            "digest_at: '25:00'",
            "alerts[0] (name: ops-email): digest_at: expected a UTC time of day such as 07:00",
        ),
        ("max_attempts: 0", "alerts[0] (name: ops-email): max_attempts: "),
        (
            "min_clas: severe",
            "alerts[0] (name: ops-email): unknown key 'min_clas'; allowed: countries, digest",
        ),
        ("min_class: relaxed", "alerts[0] (name: ops-email): min_class: "),
    ],
)
def test_alert_channel_errors_name_the_channel(extra: str, expected: str) -> None:
    message = error_of(with_channel(extra))
    assert expected in message
    assert ENV["SMTP_PASS"] not in message


def test_source_publisher_names_the_source_in_alerts() -> None:
    config = parse(VALID.replace("countries: [ML], interval: 15m", "countries: [ML], publisher: UK FCDO"))
    assert config.sources[0].publisher_name == "UK FCDO"
    assert config.sources[1].publisher_name == "cma"  # the generic kind has no publisher of its own
    shipped = load(ROOT / "config" / "monitor.yaml", environ={})
    assert {s.publisher_name for s in shipped.sources} >= {"France Diplomatie", "US State Department", "MSC"}
