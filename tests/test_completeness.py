"""Unit tests of monitor.completeness: an answer that stops short is recognised by its syntax."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.completeness import incomplete

PAGE = b"<!DOCTYPE html>\n<html><head><title>Mali</title></head><body><p>Quittez le pays.</p></body></html>\n"
FEED = b'<?xml version="1.0"?>\n<!-- feed -->\n<rss version="2.0"><channel><title>x</title></channel></rss>'


def never_asked() -> bytes | None:
    raise AssertionError("the previous body is only read for a page without its end")


def test_empty_answer() -> None:
    assert incomplete(b"", 200, never_asked) == "empty answer (HTTP 200 with no body)"


@pytest.mark.parametrize(
    "body",
    [
        PAGE,
        FEED,
        b'{"a": [1, 2]}\n',
        b"[1, 2]",
        b"plain text",
        b"\xef\xbb\xbf" + FEED,
        b"<rss version='2.0'/>",
    ],
)
def test_whole_documents_pass(body: bytes) -> None:
    assert incomplete(body, 200, never_asked) is None


def test_a_page_cut_short_is_incomplete_when_the_previous_one_ended() -> None:
    cut = PAGE[: len(PAGE) // 2]

    reason = incomplete(cut, 200, lambda: PAGE)

    assert reason is not None and reason.startswith(f"incomplete page: it stops after {len(cut)} bytes")


def test_a_page_without_its_end_passes_when_the_previous_one_had_none_or_there_is_none() -> None:
    open_ended = PAGE.replace(b"</body></html>", b"")

    assert incomplete(open_ended, 200, lambda: open_ended) is None
    assert incomplete(open_ended, 200, lambda: None) is None


def test_a_page_that_ends_with_body_only_is_whole() -> None:
    assert incomplete(PAGE.replace(b"</html>", b""), 200, never_asked) is None


def test_a_feed_cut_short_is_incomplete() -> None:
    assert incomplete(FEED[:-20], 200, never_asked) == (
        f"incomplete XML document: it stops after {len(FEED) - 20} bytes without closing <rss>"
    )


def test_a_feed_with_a_doctype_is_read_past_it() -> None:
    body = b'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY a "b">]><rss><channel>'
    assert incomplete(body, 200, never_asked) == (
        f"incomplete XML document: it stops after {len(body)} bytes without closing <rss>"
    )


@pytest.mark.parametrize(("body", "closer"), [(b'{"a": [1, 2', "}"), (b"[1, {", "]")])
def test_json_cut_short_is_incomplete(body: bytes, closer: str) -> None:
    assert incomplete(body, 200, never_asked) == (
        f"incomplete JSON document: it stops after {len(body)} bytes, before its closing {closer}"
    )


@given(st.binary(max_size=400))
def test_never_raises(body: bytes) -> None:
    reason = incomplete(body, 200, lambda: PAGE)
    assert reason is None or reason.startswith(("empty", "incomplete"))
