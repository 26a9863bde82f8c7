"""The generic ``html`` kind's text, read with lxml directly: the same text as
:mod:`monitor.normalise` gives through BeautifulSoup, about ten times faster.

BeautifulSoup builds its tree in Python from lxml's parse; on a 60 KB advisory page that is
about 10 ms against 0.5 ms for lxml's own tree, and it was most of the cost of a cold check.
Both read the same libxml2 parse, so the trees are the same; the text rules are those of
:func:`monitor.normalise.element_text` (a line per block element, whitespace folded, scripts,
styles, comments and the like dropped). CSS selectors are translated to XPath by cssselect;
a selector it cannot translate (soupsieve accepts more) makes :func:`compile_selectors` return
None, and the caller reads the page with BeautifulSoup instead. ``tests/test_fasthtml.py``
holds both readings equal on recorded pages and on generated markup.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import lxml.html
from cssselect import SelectorError
from lxml import etree
from lxml.cssselect import CSSSelector

from monitor.normalise import BLOCK_TAGS, INVISIBLE_TAGS, clean_text

_INVISIBLE = frozenset(INVISIBLE_TAGS)
_WHITESPACE = re.compile(r"\s+")


@lru_cache(maxsize=512)
def _compiled(selector: str) -> CSSSelector | None:
    try:
        return CSSSelector(selector, translator="html")
    except (SelectorError, ValueError):
        return None


def compile_selectors(selectors: Sequence[str]) -> tuple[CSSSelector, ...] | None:
    """The selectors compiled for lxml; None when one of them needs soupsieve."""
    compiled = tuple(_compiled(selector) for selector in selectors)
    return None if any(c is None for c in compiled) else compiled


def parse(html: str) -> lxml.html.HtmlElement:
    """The page's tree without invisible elements, comments and processing instructions (their
    following text stays, as BeautifulSoup keeps it). Raises ``lxml.etree.ParserError`` or
    ``ValueError`` for what lxml will not read from a string (the caller falls back)."""
    root = lxml.html.document_fromstring(html) if html.strip() else lxml.html.fromstring("<html></html>")
    doomed = [node for node in root.iter() if not isinstance(node.tag, str) or node.tag.lower() in _INVISIBLE]
    for node in doomed:
        _drop(node)
    return root


def _drop(node: etree._Element) -> None:
    """Remove ``node`` and what it holds; the text after it stays where it was."""
    parent = node.getparent()
    if parent is None:
        return
    tail = node.tail
    previous = node.getprevious()
    parent.remove(node)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def drop(nodes: Sequence[etree._Element]) -> None:
    for node in nodes:
        _drop(node)


def title(root: etree._Element) -> str:
    """The first ``<title>``'s text, its strings stripped and joined by spaces."""
    found = next(root.iter("title"), None)
    if found is None:
        return ""
    return " ".join(part.strip() for part in found.itertext() if part.strip())


def element_text(element: etree._Element) -> str:
    """:func:`monitor.normalise.element_text` for an lxml element."""
    parts: list[str] = []
    # (element, entering): an explicit stack, since hostile pages nest thousands deep.
    stack: list[tuple[etree._Element, bool]] = [(element, True)]
    while stack:
        node, entering = stack.pop()
        block = isinstance(node.tag, str) and node.tag.lower() in BLOCK_TAGS
        if entering:
            if block:
                parts.append("\n")
            if node.text:
                parts.append(_WHITESPACE.sub(" ", node.text))
            stack.append((node, False))
            stack.extend((child, True) for child in reversed(node))
        else:
            if block:
                parts.append("\n")
            if node is not element and node.tail:
                parts.append(_WHITESPACE.sub(" ", node.tail))
    return clean_text("".join(parts))
