"""Pure text normalisation shared by the source kinds.

The goal is that two fetches of a page whose advice did not change give the same text: no
markup, no scripts, no invisible characters, one logical line per block, whitespace folded.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
import warnings

from bs4 import BeautifulSoup, MarkupResemblesLocatorWarning, XMLParsedAsHTMLWarning
from bs4.element import Comment, NavigableString, PageElement, PreformattedString, Tag

# Dropped before text extraction: they never carry advice and often carry per-request tokens.
INVISIBLE_TAGS = ("script", "style", "noscript", "template", "svg", "iframe")

BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd details dialog div dl dt fieldset figcaption figure "
    "footer form h1 h2 h3 h4 h5 h6 header hr li main nav ol p pre section summary table tbody "
    "td tfoot th thead tr ul".split()
)

# Zero-width characters and soft hyphens, and control characters (but tab and line breaks):
# nothing a reader sees, and ESC would be obeyed by a terminal that prints the text.
_INVISIBLE_CHARS = dict.fromkeys(
    [
        *map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"),
        *(c for c in range(0x20) if chr(c) not in "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"),
        *range(0x7F, 0x85),
        *range(0x86, 0xA0),
    ],
    None,
)
_SPACES = re.compile(r"[^\S\n]+")
_WHITESPACE = re.compile(r"\s+")


def clean_text(text: str) -> str:
    """NFC-normalise, drop invisible and control characters, fold spaces, strip lines, drop
    empty lines."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE_CHARS)
    lines = (_SPACES.sub(" ", line).strip() for line in text.splitlines())
    return "\n".join(line for line in lines if line)


def parse_html(html: str) -> BeautifulSoup:
    """Parse with lxml (lenient with broken markup) and remove invisible elements and comments."""
    with warnings.catch_warnings():
        # A body that is only "http:" or a file name is still a (useless) page, not a mistake;
        # so is an XHTML page or a feed given to an HTML kind: the kind says what it expects.
        warnings.simplefilter("ignore", MarkupResemblesLocatorWarning)
        warnings.simplefilter("ignore", XMLParsedAsHTMLWarning)
        soup = BeautifulSoup(html, "lxml")
    for tag in soup.find_all(INVISIBLE_TAGS):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    return soup


def element_text(element: Tag) -> str:
    """The visible text of an element, one line per block element, cleaned.

    Inline elements (``<b>``, ``<a>``…) stay on their line, unlike ``get_text("\\n")``, and
    line breaks inside the markup are plain spaces, as a browser shows them.
    """
    parts: list[str] = []
    # An explicit stack instead of recursion: hostile pages may nest thousands of elements deep.
    stack: list[PageElement | None] = [element]
    while stack:
        node = stack.pop()
        if node is None:  # the end of a block element
            parts.append("\n")
        elif isinstance(node, Tag):
            if node.name in BLOCK_TAGS:
                parts.append("\n")
                stack.append(None)
            stack.extend(reversed(node.contents))
        elif isinstance(node, NavigableString) and not isinstance(node, PreformattedString):
            parts.append(_WHITESPACE.sub(" ", node))
    return clean_text("".join(parts))


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
