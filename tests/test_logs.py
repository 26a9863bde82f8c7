"""Log configuration: text or JSON lines on stderr, extra fields, tracebacks, quiet libraries and
no doubled handlers when configured again."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from monitor import logs


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every test configures the root logger; put it back as pytest had it."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    noisy = {name: logging.getLogger(name).level for name in logs.NOISY}
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    for name, noisy_level in noisy.items():
        logging.getLogger(name).setLevel(noisy_level)


def json_lines(err: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in err.splitlines()]


def test_json_lines_carry_level_logger_message_time_and_extra_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(verbose=False, fmt="json")
    before = datetime.now(UTC)
    logging.getLogger("monitor.scheduler").info(
        "%s: %s",
        "uk-mali",
        "changed",
        extra={
            "source": "uk-mali",
            "outcome": "changed",
            "duration_ms": 412,
            "http_status": 200,
            "changes": [{"key": "ML", "class": "critical"}],
        },
    )
    [line] = json_lines(capsys.readouterr().err)
    assert {k: v for k, v in line.items() if k != "timestamp"} == {
        "level": "INFO",
        "logger": "monitor.scheduler",
        "message": "uk-mali: changed",
        "source": "uk-mali",
        "outcome": "changed",
        "duration_ms": 412,
        "http_status": 200,
        "changes": [{"key": "ML", "class": "critical"}],
    }
    stamp = datetime.fromisoformat(line["timestamp"])
    assert stamp.utcoffset() == timedelta(0)
    assert before - timedelta(seconds=1) <= stamp <= datetime.now(UTC)


def test_json_lines_carry_the_traceback_as_a_string(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(verbose=False, fmt="json")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("monitor.pipeline").exception("uk-mali: unexpected error while parsing")
    [line] = json_lines(capsys.readouterr().err)
    assert (line["level"], line["message"]) == ("ERROR", "uk-mali: unexpected error while parsing")
    assert isinstance(line["exc_info"], str)
    assert line["exc_info"].startswith("Traceback (most recent call last):")
    assert line["exc_info"].endswith("ValueError: boom")


def test_json_keeps_non_ascii_text_intact(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(verbose=False, fmt="json")
    logging.getLogger("monitor").warning("Côte d’Ivoire: niveau relevé", extra={"country": "Côte d’Ivoire"})
    [line] = json_lines(capsys.readouterr().err)
    assert (line["message"], line["country"]) == ("Côte d’Ivoire: niveau relevé", "Côte d’Ivoire")


def test_text_lines_have_time_level_logger_and_message(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(verbose=False, fmt="text")
    logging.getLogger("monitor.alerts").warning("alert %s to %s failed", "change-1-ops", "ops")
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING monitor\.alerts: alert change-1-ops to ops failed\n",
        err,
    )


def test_configuring_again_replaces_the_handler_instead_of_doubling_lines(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logs.configure(verbose=False, fmt="text")
    logs.configure(verbose=False, fmt="text")
    logging.getLogger("monitor").info("once")
    assert capsys.readouterr().err.count("once") == 1

    logs.configure(verbose=False, fmt="json")
    logging.getLogger("monitor").info("now as json")
    assert [line["message"] for line in json_lines(capsys.readouterr().err)] == ["now as json"]


def test_handlers_installed_by_others_are_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    logging.getLogger().addHandler(Keep())
    logs.configure(verbose=False, fmt="json")
    logs.configure(verbose=False, fmt="json")
    logging.getLogger("monitor").info("both hear it")
    assert seen == ["both hear it"]
    assert len(json_lines(capsys.readouterr().err)) == 1


def test_libraries_stay_at_warning_unless_verbose(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure(verbose=False, fmt="text")
    logging.getLogger("httpx").info("HTTP Request: GET https://example.org 200")
    logging.getLogger("apscheduler.executors").warning("job missed")
    logging.getLogger("monitor").debug("debug detail")
    logging.getLogger("monitor").info("info line")
    err = capsys.readouterr().err
    assert ("job missed" in err, "info line" in err) == (True, True)
    assert ("HTTP Request" in err, "debug detail" in err) == (False, False)

    logs.configure(verbose=True, fmt="text")
    for name in logs.NOISY:
        logging.getLogger(name).debug("%s speaks", name)
    logging.getLogger("monitor").debug("debug detail")
    err = capsys.readouterr().err
    assert all(f"{name} speaks" in err for name in logs.NOISY)
    assert "debug detail" in err


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log format 'xml'"):
        logs.configure(verbose=False, fmt="xml")  # type: ignore[arg-type]
