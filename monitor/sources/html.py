"""Generic ``html`` kind: any web page, whole or the parts CSS selectors pick."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

import soupsieve
from lxml import etree
from pydantic import BaseModel, BeforeValidator, ConfigDict, field_validator
from soupsieve import SelectorSyntaxError

from monitor import fasthtml
from monitor.decoding import decode_body
from monitor.errors import ParseError
from monitor.models import Record, Section
from monitor.normalise import element_text, parse_html
from monitor.sources.base import Source, register


def _as_list(value: object) -> object:
    return [value] if isinstance(value, str) else value


Selectors = Annotated[tuple[str, ...], BeforeValidator(_as_list)]


class HtmlOptions(BaseModel):
    """``select``: CSS selectors of the parts to watch (default: the whole ``body``).
    ``exclude``: CSS selectors of parts to drop first (navigation, cookie banners, "last
    reviewed" lines). ``required``: when true (default), a page where a ``select`` selector
    matches nothing is a parse failure, since the page structure has changed."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    select: Selectors = ("body",)
    exclude: Selectors = ()
    required: bool = True

    @field_validator("select", "exclude")
    @classmethod
    def _valid_css(cls, selectors: tuple[str, ...]) -> tuple[str, ...]:
        for selector in selectors:
            try:
                soupsieve.compile(selector)  # cached: thousands of sources share a few selectors
            except SelectorSyntaxError as exc:
                raise ValueError(f"invalid CSS selector {selector!r}: {str(exc).splitlines()[0]}") from None
        return selectors


@register
class HtmlSource(Source):
    """Any HTML page. The record's text is the visible text of the selected parts, one section
    per selector; scripts, styles, comments and invisible characters are dropped. The page
    carries no level of its own, so ``level`` stays empty; a source covering exactly one
    country files its record under that country's code, otherwise under ``page``."""

    kind = "html"
    title = "Any web page (CSS selectors)"
    Options = HtmlOptions
    options: HtmlOptions

    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        html = decode_body(body, content_type)
        read = self._read_fast(html)
        title, sections = read if read is not None else self._read(html)
        if not any(section.text for section in sections):
            raise ParseError("the page has no visible text", source_id=self.id, url=url)
        countries = self.config.countries
        country = countries[0] if len(countries) == 1 else None
        return [
            Record(key=country or "page", title=title, url=url, country=country, sections=tuple(sections))
        ]

    def _read_fast(self, html: str) -> tuple[str, list[Section]] | None:
        """Title and sections through lxml (see :mod:`monitor.fasthtml`); None when a selector
        needs soupsieve or lxml will not read or edit the string."""
        select = fasthtml.compile_selectors(self.options.select)
        exclude = fasthtml.compile_selectors(self.options.exclude)
        if select is None or exclude is None:
            return None
        try:
            root = fasthtml.parse(html)
        except (etree.ParserError, ValueError):
            return None
        try:
            for selector in exclude:
                fasthtml.drop(selector(root))
        except ValueError:
            # Dropping moves the text after an element to its neighbour, and lxml refuses to set
            # text holding control characters (U+000B...) that it read from the page itself.
            return None
        sections = []
        for name, selector in zip(self.options.select, select, strict=True):
            found = selector(root)
            self._require(name, found)
            sections.append(Section(name, "\n".join(fasthtml.element_text(e) for e in found)))
        return fasthtml.title(root), sections

    def _read(self, html: str) -> tuple[str, list[Section]]:
        """Title and sections through BeautifulSoup and soupsieve."""
        soup = parse_html(html)
        for selector in self.options.exclude:
            for element in soup.select(selector):
                element.decompose()
        sections = []
        for selector in self.options.select:
            found = soup.select(selector)
            self._require(selector, found)
            sections.append(Section(selector, "\n".join(element_text(element) for element in found)))
        return (soup.title.get_text(" ", strip=True) if soup.title else ""), sections

    def _require(self, selector: str, found: Sequence[object]) -> None:
        if not found and self.options.required:
            raise ParseError(f"selector {selector!r} matched nothing", source_id=self.id)
