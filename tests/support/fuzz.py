"""What the fuzz tests share: their hypothesis settings, mutations of real payloads, hostile
values, and the list of reported crashes in code the fuzz tests do not fix.

Settings: ``MONITOR_FUZZ_EXAMPLES`` overrides every fuzz test's number of examples (a long run:
``MONITOR_FUZZ_EXAMPLES=5000``); with ``CI=true`` the examples are derived from the test's name
(``derandomize``), so a CI run is reproducible, and no example database is kept.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CI = os.environ.get("CI") == "true"
EXAMPLES = os.environ.get("MONITOR_FUZZ_EXAMPLES")
ROOT = Path(__file__).resolve().parents[2]


def fuzz_settings(examples: int, *, health: Sequence[HealthCheck] = ()) -> settings:
    """``examples`` examples (or ``MONITOR_FUZZ_EXAMPLES``), each allowed 2 s: parsers answer in
    milliseconds, and a generous deadline keeps a loaded machine from failing the run. ``health``:
    health checks the caller has a reason to suppress."""
    chosen = settings(
        max_examples=int(EXAMPLES) if EXAMPLES else examples,
        deadline=timedelta(seconds=2),
        derandomize=CI,
        suppress_health_check=list(health),
    )
    return settings(chosen, database=None) if CI else chosen


# --- mutations of real payloads ------------------------------------------------------------------

# Bytes that change how a parser reads what follows: markup, entities, JSON syntax, invalid or
# unusual UTF-8 (a UTF-8-encoded surrogate, a BOM, U+2028), huge numbers, block-page words.
TOKENS = (
    b"<", b">", b"</", b"/>", b"&", b"&amp;", b"&#0;", b"&#xD800;", b"&#x110000;", b"&nbsp;", b'"', b"'",
    b"<!--", b"-->", b"<![CDATA[", b"]]>", b"<?xml version='1.0'?>", b"<!DOCTYPE html>",
    b'<meta charset="utf-16">', b'<meta charset="bogus">', b"<div>", b"</div>", b"<p>", b"<h2>", b"<li>",
    b"<script>", b"</body>", b"<a href='/news/1/x'>", b"<time datetime='9999-99-99'>",
    b"\x00", b"\xff", b"\xfe\xff", b"\xef\xbb\xbf", b"\xed\xa0\x80", b"\xe2\x80\xa8", b"\r", b"\n",
    b"{", b"}", b"[", b"]", b",", b":", b"null", b"true", b"-0", b"1e999", b"NaN", b"\\ud800", b"\\u0000",
    b"99999999999999999999999", b"-1", b"Level 4: Do Not Travel", b" - Level ", b"2025-13-45",
)  # fmt: skip
_TAG = re.compile(rb"<[^<>]{0,200}>")


def _position(draw: st.DrawFn, data: bytearray) -> int:
    return draw(st.integers(0, len(data)))


def _truncate(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    return data[: _position(draw, data)]


def _flip(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if data:
        data[draw(st.integers(0, len(data) - 1))] ^= draw(st.integers(1, 255))
    return data


def _insert(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    at = _position(draw, data)
    data[at:at] = draw(st.sampled_from(TOKENS) | st.binary(min_size=1, max_size=12))
    return data


def _delete(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    start = _position(draw, data)
    del data[start : start + draw(st.integers(1, 64))]
    return data


def _duplicate(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    start, at = _position(draw, data), _position(draw, data)
    data[at:at] = data[start : start + draw(st.integers(1, 256))]
    return data


def _tags(data: bytearray) -> list[tuple[int, int]]:
    return [match.span() for match in _TAG.finditer(data)]


def _remove_tag(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if tags := _tags(data):
        start, end = draw(st.sampled_from(tags))
        del data[start:end]
    return data


def _duplicate_tag(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    if tags := _tags(data):
        start, end = draw(st.sampled_from(tags))
        at = draw(st.sampled_from(tags))[draw(st.integers(0, 1))]
        data[at:at] = data[start:end] * draw(st.integers(1, 3))
    return data


def _splice(draw: st.DrawFn, data: bytearray, seeds: Sequence[bytes]) -> bytearray:
    other = draw(st.sampled_from(seeds))
    start = draw(st.integers(0, len(other)))
    at = _position(draw, data)
    data[at:] = other[start:]
    return data


_MUTATIONS: tuple[Callable[[st.DrawFn, bytearray, Sequence[bytes]], bytearray], ...] = (
    _truncate, _flip, _insert, _insert, _delete, _duplicate, _remove_tag, _duplicate_tag, _splice,
)  # fmt: skip


@st.composite
def mutated(draw: st.DrawFn, seeds: Sequence[bytes], steps: int = 4) -> bytes:
    """One of ``seeds`` after 1 to ``steps`` random edits: truncation, byte flips, inserted
    tokens, deleted or duplicated ranges, removed or repeated tags, a splice of another seed."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, steps))):
        data = draw(st.sampled_from(_MUTATIONS))(draw, data, seeds)
    return bytes(data)


# --- hostile JSON values ---------------------------------------------------------------------------

HOSTILE_STRINGS = (
    "", " ", "\ud800", "a\udc00b", "\x00", "\u2028", "<p>x</p>", "<h2>A - Avoid all travel</h2>",
    "<div>" * 3000, "&lol;", "&#xD800;", "x" * 20000, "ML", "MLI", "XK", "XKX", "mali", "Mali",
    "2025-13-45", "0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-23:59",
    "September 99, 2025 25:61 EDT", "travel_advice", "travel_advice_index",
    "avoid_all_travel_to_whole_country", "FCDO advises against all travel to:",
)  # fmt: skip
_NUMBERS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from((0, -1, 3, 4, 10**11, 10**20, 2**63, -(2**63))),
    st.floats(allow_nan=False, allow_infinity=False),
)


def json_values(keys: Sequence[str] = ()) -> st.SearchStrategy[Any]:
    """Any JSON value, leaning on ``keys`` (a payload's own keys) and hostile strings."""
    names = st.sampled_from(keys) | st.text(max_size=8) if keys else st.text(max_size=8)
    return st.recursive(
        st.none() | st.booleans() | _NUMBERS | st.text(max_size=20) | st.sampled_from(HOSTILE_STRINGS),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(names, inner, max_size=3),
        max_leaves=8,
    )


def json_keys(document: Any) -> list[str]:
    """Every key of a JSON document, sorted."""
    found: set[str] = set()
    stack = [document]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.update(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return sorted(found)


@st.composite
def json_mutated(draw: st.DrawFn, seeds: Sequence[bytes], steps: int = 3) -> bytes:
    """One of ``seeds`` (JSON) with 1 to ``steps`` values replaced, keys deleted or added, list
    items repeated, then written as JSON: ASCII with ``\\uXXXX`` escapes (lone surrogates
    included), or UTF-8 (a lone surrogate then as its invalid UTF-8 bytes)."""
    document = json.loads(draw(st.sampled_from(seeds)))
    values = json_values(json_keys(document))
    for _ in range(draw(st.integers(1, steps))):
        parent: Any = None
        key: Any = None
        node = document
        while isinstance(node, dict | list) and node and draw(st.integers(0, 3)):
            parent, key = (
                node,
                draw(st.sampled_from(list(node) if isinstance(node, dict) else range(len(node)))),
            )
            node = node[key]
        action = draw(st.sampled_from(("replace", "delete", "add", "repeat")))
        if parent is None:
            document = draw(values) if action == "replace" else document
        elif action == "replace":
            parent[key] = draw(values)
        elif action == "delete":
            del parent[key]
        elif action == "add" and isinstance(parent, dict):
            parent[draw(st.sampled_from(json_keys(document) or ["x"]))] = draw(values)
        elif isinstance(parent, list):
            parent.insert(key, parent[key])
    if draw(st.booleans()):
        return json.dumps(document).encode()
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")
