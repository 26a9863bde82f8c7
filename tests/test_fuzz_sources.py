"""Fuzzing every source kind's ``parse``: whatever the publisher sends, it returns records the
store can write or raises ParseError, quickly.

Payloads are random bytes, and above all mutations of the kinds' own fixtures
(``tests/fixtures/kinds``): truncated, bytes flipped, tokens inserted, tags removed or repeated,
JSON values swapped for hostile ones. Hostile documents follow: entity bombs and external
entities (never expanded nor read), nesting 100,000 deep, huge attributes, NUL bytes and lone
surrogates. See ``tests/support/fuzz.py`` for the settings (``MONITOR_FUZZ_EXAMPLES``).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from monitor.config import SourceConfig
from monitor.errors import ParseError
from monitor.models import Record
from monitor.sources import REGISTRY, Source, build
from tests.support.fuzz import fuzz_settings, json_mutated, mutated

FIXTURES = Path(__file__).parent / "fixtures" / "kinds"
JSON_KINDS = ("ca-gac", "de-aa", "uk-fcdo")
XML_KINDS = ("rss", "us-state")
HTML_KINDS = ("cma-cgm", "fr-diplomatie", "html", "msc")
CONTENT_TYPES = (
    None, "text/html", "text/html; charset=utf-16", "text/plain", "application/json", "application/xml",
    "application/rss+xml; charset=shift_jis", "application/octet-stream", "text/html; charset=bogus", ";;;",
)  # fmt: skip


def _case(folder: Path) -> tuple[SourceConfig, str | None, bytes]:
    stanza = yaml.safe_load((folder / "source.yaml").read_text(encoding="utf-8"))
    content_type = stanza.pop("content_type", None)
    [payload] = folder.glob("input.*")
    return SourceConfig.model_validate(stanza), content_type, payload.read_bytes()


CASES = {
    kind: [_case(folder) for folder in sorted((FIXTURES / kind).glob("*/"))] for kind in sorted(REGISTRY)
}


def _source(kind: str, **config: Any) -> Source:
    """A source of ``kind`` configured as its first fixture, changed by ``config``."""
    base = CASES[kind][0][0]
    return build(base.model_copy(update=config))


def parse_or_refuse(source: Source, body: bytes, content_type: str | None) -> list[Record] | None:
    """The contract: records (at least one, distinct keys, each storable as UTF-8 JSON), or a
    ParseError with a message; None for the latter. Any other exception is a bug."""
    try:
        records = source.parse(body, content_type=content_type, url=source.config.url)
    except ParseError as exc:
        assert exc.message.strip()
        return None
    assert records, "parse returned no record and raised no ParseError"
    keys = [record.key for record in records]
    assert len(set(keys)) == len(keys), keys
    for record in records:
        record.canonical().encode("utf-8")  # what the store hashes and writes
    return records


def test_every_kind_is_fuzzed() -> None:
    assert set(CASES) == set(REGISTRY)
    assert all(CASES.values())
    assert set(JSON_KINDS + XML_KINDS + HTML_KINDS) == set(REGISTRY)


@pytest.mark.parametrize("kind", sorted(REGISTRY))
@fuzz_settings(200)
@given(data=st.data())
def test_parse_survives_mutated_payloads(kind: str, data: st.DataObject) -> None:
    config, content_type, _ = data.draw(st.sampled_from(CASES[kind]), label="case")
    seeds = [payload for _, _, payload in CASES[kind]]
    bodies = [mutated(seeds), st.binary(max_size=4000)]
    if kind in JSON_KINDS:
        bodies.append(json_mutated(seeds))
    body = data.draw(st.one_of(*bodies), label="body")
    content_type = data.draw(st.sampled_from((content_type, *CONTENT_TYPES)), label="content_type")
    parse_or_refuse(build(config), body, content_type)


# --- regressions found by the fuzzing above ------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "body"),
    [
        (
            "de-aa",
            b'{"response": {"1": {"iso3CountryCode": "MLI", "warning": false, "partialWarning": false,'
            b' "title": "Mali\\ud800", "content": "<h2>\\udc00</h2><p>Text</p>"}}}',
        ),
        (
            "ca-gac",
            b'{"data": {"country-iso": "ML", "advisory-state": 1,'
            b' "eng": {"name": "<b>\\ud800</b>", "advisories": "<p>\\ud83d</p>"}}}',
        ),
        (
            "uk-fcdo",
            b'{"document_type": "travel_advice", "title": "Mali\\udfff travel advice",'
            b' "details": {"country": {"slug": "mali", "name": "Mali"}, "alert_status": [],'
            b' "parts": [{"slug": "summary", "body": "<p>\\ud800 The FCDO advises.</p>"}]}}',
        ),
    ],
)
def test_lone_surrogate_escapes_become_replacement_characters(kind: str, body: bytes) -> None:
    """JSON may escape half of a UTF-16 pair; lxml and the store cannot encode it as UTF-8."""
    records = parse_or_refuse(_source(kind, countries=("ML",)), body, "application/json")
    assert records is not None
    [record] = records
    assert "\ufffd" in record.canonical()


def test_utf8_encoded_surrogates_in_json_are_not_json() -> None:
    body = '{"data": {"country-iso": "ML", "advisory-state": 1, "eng": {"name": "\ud800"}}}'
    with pytest.raises(ParseError, match="not JSON"):
        _source("ca-gac", countries=("ML",)).parse(
            body.encode("utf-8", "surrogatepass"), content_type=None, url="https://x/"
        )


def test_html_excluded_element_followed_by_a_control_character() -> None:
    """lxml reads U+000B after an excluded element but refuses to move it to the neighbour."""
    source = _source("html", options={"select": ["#notices"], "exclude": [".refreshed"]})
    body = b'<section id="notices">\x0b <p class="refreshed">10:42</p>\x0b Suspension in Mali</section>'
    records = parse_or_refuse(source, body, None)
    assert records is not None
    [record] = records
    assert record.sections[0].text == "Suspension in Mali"


# --- hostile XML ------------------------------------------------------------------------------------

_DECLARATIONS = {
    "utf-8": '<?xml version="1.0" encoding="utf-8"?>',
    # Encodings expat cannot read: feedparser converts them and parses the result strictly.
    "shift_jis": '<?xml version="1.0" encoding="shift_jis"?>',
    "unknown": '<?xml version="1.0" encoding="x-unknown"?>',
    "utf-32": '<?xml version="1.0" encoding="utf-32"?>',
    "cp037": '<?xml version="1.0" encoding="cp037"?>',
    "utf-16": '<?xml version="1.0" encoding="utf-16"?>',
}


def _encoded(text: str, name: str) -> bytes:
    return text.encode({"shift_jis": "shift_jis", "unknown": "ascii"}.get(name, name))


def billion_laughs(levels: int = 10) -> str:
    """10^levels "lol"s: 3 GB at 10 levels, in under 1 KB."""
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, levels))
    return (
        f'<!DOCTYPE rss [<!ENTITY l0 "lol">{lol}]><rss version="2.0"><channel><title>&l{levels - 1};</title>'
        f"<item><title>Mali - Level 4: Do Not Travel &l{levels - 1};</title><description>&l{levels - 1};"
        "</description></item></channel></rss>"
    )


def external_entity(secret: Path) -> str:
    return (
        f'<!DOCTYPE rss [<!ENTITY x SYSTEM "file://{secret}">]><rss version="2.0"><channel><title>&x;</title>'
        "<item><title>Mali - Level 4: Do Not Travel &x;</title><description>&x;</description></item>"
        "</channel></rss>"
    )


def _hostile_documents(secret: Path) -> dict[str, str]:
    return {
        "billion laughs": billion_laughs(),
        "external entity": external_entity(secret),
        "parameter entity": (
            f'<!DOCTYPE rss [<!ENTITY % p SYSTEM "file://{secret}"> %p;]>'
            '<rss version="2.0"><channel><title>t</title></channel></rss>'
        ),
        "quadratic blowup": (
            f'<!DOCTYPE rss [<!ENTITY a "{"x" * 50_000}">]><rss version="2.0"><channel><title>'
            + "&a;" * 5_000
            + "</title></channel></rss>"
        ),
    }


@pytest.mark.parametrize("kind", XML_KINDS)
@pytest.mark.parametrize("encoding", sorted(_DECLARATIONS))
def test_feeds_refuse_entity_declarations_quickly(kind: str, encoding: str, tmp_path: Path) -> None:
    """Never expanded, never read: refused before any XML parser expands them, whatever the
    encoding (an encoding expat cannot read used to let the bomb through to feedparser)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    source = _source(kind)
    for name, document in _hostile_documents(secret).items():
        body = _encoded(_DECLARATIONS[encoding] + document, encoding)
        started = time.perf_counter()
        with pytest.raises(ParseError, match="declares entities"):
            source.parse(body, content_type="application/rss+xml", url=source.config.url)
        assert time.perf_counter() - started < 1.0, name


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_no_kind_expands_or_reads_entities(kind: str, tmp_path: Path) -> None:
    """The same documents to every kind, as XML or wrapped in what the kind reads: whatever the
    outcome, no expansion and no file content reaches a record, within a second each."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    dtd = tmp_path / "entities.dtd"
    dtd.write_text('<!ENTITY x SYSTEM "file://' + str(secret) + '">')
    documents = _hostile_documents(secret)
    documents["external DTD"] = (
        f'<!DOCTYPE rss SYSTEM "file://{dtd}"><rss version="2.0"><channel><title>&x;</title></channel></rss>'
    )
    for name, document in documents.items():
        for body in (
            ('<?xml version="1.0"?>' + document).encode(),
            json.dumps({"data": document, "response": {"1": {"content": document}}}).encode(),
        ):
            started = time.perf_counter()
            records = parse_or_refuse(_source(kind), body, None) or []
            assert time.perf_counter() - started < 1.0, name
            text = "".join(record.canonical() for record in records)
            assert "TOP-SECRET" not in text, name
            assert "lollollol" not in text and "x" * 100_000 not in text, name


# --- hostile structure ----------------------------------------------------------------------------

DEPTH = 100_000  # the documents' own nesting: far beyond any recursion limit, Python's or C's
INNER = 20_000  # nesting inside a field or an item: 20 times Python's recursion limit


def _deep_payloads(kind: str) -> dict[str, bytes]:
    """Payloads nested deep in what the kind reads, and other hostile shapes."""
    html = {
        "nested divs": b"<html><body>" + b"<div>" * DEPTH + b"Mali" + b"</div>" * DEPTH + b"</body></html>",
        "unclosed divs": b"<html><body>" + b"<div><p>Mali" * INNER,
        "huge attribute": b'<html><body><a href="/news/1/' + b"x" * 5_000_000 + b'">Mali</a></body></html>',
        "NUL bytes": b"<html><body><p>Mali\x00" + b"\x00" * 100_000 + b"</p></body></html>",
    }
    if kind in JSON_KINDS:
        deep_html = "<div>" * INNER + "Avoid all travel to Mali"
        return {
            "nested arrays": b"[" * DEPTH + b"]" * DEPTH,
            "nested objects": b'{"a":' * DEPTH + b"1" + b"}" * DEPTH,
            "nested objects in the payload": (
                b'{"data": {"country-iso": "ML", "advisory-state": 1, "eng": ' + b'{"a":' * INNER + b"1"
            ),
            "nested HTML in JSON": json.dumps(
                {
                    "response": {
                        "1": {
                            "iso3CountryCode": "MLI",
                            "warning": False,
                            "partialWarning": False,
                            "content": deep_html,
                            "lastChanges": deep_html,
                        }
                    },
                    "data": {
                        "country-iso": "ML",
                        "advisory-state": 3,
                        "eng": {"advisories": deep_html, "security": deep_html},
                    },
                    "document_type": "travel_advice",
                    "details": {
                        "country": {"slug": "mali"},
                        "alert_status": [],
                        "parts": [{"slug": "summary", "body": deep_html}],
                    },
                }
            ).encode(),
            "NUL bytes": b'{"data": {"country-iso": "ML\\u0000", "advisory-state": 1}}' + b"\x00" * 1000,
            **html,
        }
    if kind in XML_KINDS:
        item = b"<item><title>Mali - Level 4: Do Not Travel</title><description>"
        return {
            "nested elements": b'<rss version="2.0"><channel>' + b"<x>" * DEPTH,
            "nested HTML in an item": b'<rss version="2.0"><channel>'
            + item
            + b"&lt;div&gt;" * INNER
            + b"</description></item></channel></rss>",
            "many items": b'<rss version="2.0"><channel>' + item * 5_000 + b"</channel></rss>",
            "huge attribute": html["huge attribute"],
            "NUL bytes": html["NUL bytes"],
        }
    return html


@pytest.mark.parametrize("kind", sorted(REGISTRY))
def test_hostile_structure_is_read_or_refused(kind: str) -> None:
    """Nesting 100,000 deep (no recursion may follow it), a 5 MB attribute, NUL bytes: records or
    ParseError, in linear time: about 30 µs per element at most, 5 s for the deepest here. (The
    uk-fcdo kind took minutes on a part nested 100,000 deep: it searched each block's subtree.)"""
    for name, body in _deep_payloads(kind).items():
        started = time.perf_counter()
        parse_or_refuse(_source(kind), body, None)
        assert time.perf_counter() - started < 12.0, name
