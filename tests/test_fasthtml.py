"""The `html` kind's lxml reading gives exactly what its BeautifulSoup reading gives."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from monitor import fasthtml
from monitor.config import SourceConfig
from monitor.decoding import decode_body
from monitor.errors import ParseError
from monitor.sources import build
from monitor.sources.html import HtmlSource
from tests.conftest import REAL_SAMPLES

FIXTURES = Path(__file__).parent / "fixtures"
PAGES = sorted(FIXTURES.rglob("*.html")) + sorted(REAL_SAMPLES.rglob("*.html"))
OPTIONS = [
    {},
    {"select": ["main"], "required": False},
    {"select": ["h1, h2", "p"], "exclude": ["nav", "footer", "header", ".breadcrumbs"], "required": False},
    {"select": ["article p:first-child", "li a[href]"], "required": False},
    {"select": ["#content", "div > ul"], "exclude": ["[aria-hidden=true]"], "required": False},
]


def source(options: dict[str, object]) -> HtmlSource:
    built = build(
        SourceConfig.model_validate({"id": "page", "kind": "html", "url": "https://x/", "options": options})
    )
    assert isinstance(built, HtmlSource)
    return built


def both(page: HtmlSource, html: str) -> tuple[object, object]:
    """What each reading gives: (title, sections) or the ParseError message."""
    results = []
    for read in (page._read_fast, page._read):
        try:
            results.append(read(html))
        except ParseError as exc:
            results.append(exc.message)
    return results[0], results[1]


@pytest.mark.parametrize("options", OPTIONS, ids=range(len(OPTIONS)))
def test_recorded_pages_read_the_same(options: dict[str, object]) -> None:
    assert len(PAGES) >= 10
    page = source(options)
    for path in PAGES:
        html = decode_body(path.read_bytes(), "text/html")
        fast, slow = both(page, html)
        assert fast is not None, path  # every selector above is one lxml can run
        assert fast == slow, path


_TEXT = st.text(alphabet=st.sampled_from("ab \n\t&;<>éx\u00a0\u200b"), max_size=8)
_NAMES = ["p", "div", "span", "b", "a", "li", "ul", "br", "h2", "script", "style", "template", "section"]


@st.composite
def markup(draw: st.DrawFn, depth: int = 0) -> str:
    """Nested markup with text, entities, comments and invisible elements, some of it unclosed."""
    parts = []
    for _ in range(draw(st.integers(0, 4))):
        choice = draw(st.integers(0, 5 if depth < 4 else 1))
        if choice == 0:
            parts.append(draw(_TEXT).replace("<", "&lt;"))
        elif choice == 1:
            parts.append(f"<!-- {draw(_TEXT).replace('-', '')} -->")
        else:
            name = draw(st.sampled_from(_NAMES))
            close = "" if draw(st.integers(0, 6)) == 0 else f"</{name}>"
            parts.append(f"<{name}>{draw(markup(depth + 1))}{close}")
    return "".join(parts)


@settings(max_examples=300, deadline=None)
@given(body=markup(), title=_TEXT)
def test_generated_markup_reads_the_same(body: str, title: str) -> None:
    html = f"<html><head><title>{title.replace('<', '')}</title></head><body>{body}</body></html>"
    for options in ({"required": False}, {"select": ["div", "li"], "exclude": ["b"], "required": False}):
        fast, slow = both(source(options), html)
        assert fast == slow


def test_a_selector_only_soupsieve_knows_is_read_with_beautifulsoup() -> None:
    page = source({"select": ['p:-soup-contains("Mali")']})
    assert fasthtml.compile_selectors(page.options.select) is None
    html = "<html><body><p>Niger</p><p>Mali: leave now</p></body></html>"
    assert page._read_fast(html) is None
    [record] = page.parse(html.encode(), content_type="text/html", url="https://x/")
    assert record.sections[0].text == "Mali: leave now"


def test_markup_lxml_will_not_read_from_a_string_falls_back() -> None:
    page = source({})
    html = '<?xml version="1.0" encoding="utf-8"?><html><body><p>Leave now</p></body></html>'
    [record] = page.parse(html.encode(), content_type="text/html", url="https://x/")
    assert record.sections[0].text == "Leave now"
