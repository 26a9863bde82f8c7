"""Pure: is an answer a whole document, or did it stop short?

A server or proxy that closes an answer early with framing that looks complete (a truncated
file served whole, a ``Content-Length`` computed after the cut) hands over a document that
lenient parsers read without complaint: HTML parsers close what is open, feedparser reads the
items it got. Read as content, the missing end would be text removed, and a risk that went down.
These checks catch it before parsing, by the document's own syntax:

- an empty answer is never content;
- an XML document (a feed) must close its root element;
- a JSON document must end with the bracket that opened it;
- an HTML page must end with ``</body>`` or ``</html>`` when the source's previous page did
  (HTML lets a page omit both, so a page that never had them is left alone).
"""

from __future__ import annotations

import re
from collections.abc import Callable

_HTML_TAIL = 1024  # bytes at the end of a page in which its closing tags are looked for
_START = 1024  # bytes at the start in which the kind of document is recognised
_BOM = b"\xef\xbb\xbf"
# The first element of an XML document, after its declaration, comments and doctype.
_XML_ROOT = re.compile(
    rb"\s*(?:<\?.*?\?>\s*|<!--.*?-->\s*|<!DOCTYPE[^>\[]*(?:\[.*?\])?\s*>\s*)*<([A-Za-z_][\w.:-]*)", re.S
)
_JSON_CLOSERS = {ord("{"): ord("}"), ord("["): ord("]")}


def incomplete(body: bytes, status: int, previous_body: Callable[[], bytes | None]) -> str | None:
    """Why ``body`` is not a whole document, or None. ``previous_body`` (the source's last stored
    body, or None) is only called for an HTML page that lacks its end."""
    if not body:
        return f"empty answer (HTTP {status} with no body)"
    text = body.removeprefix(_BOM)
    first = text[:_START].lstrip()[:1]
    if first == b"<":
        return _incomplete_markup(text, previous_body)
    if first and first[0] in _JSON_CLOSERS:
        return _incomplete_json(text)
    return None


def _incomplete_markup(body: bytes, previous_body: Callable[[], bytes | None]) -> str | None:
    if _is_html(body):
        if not _html_without_end(body):
            return None
        previous = previous_body()
        if previous is None or _html_without_end(previous):
            return None
        return (
            f"incomplete page: it stops after {len(body)} bytes without the </html> its previous "
            "version had (cut short by the server or a proxy)"
        )
    root = _XML_ROOT.match(body[: 64 * 1024])
    if root is None or b"</" + root.group(1) in body or _self_closed(body, root.end()):
        return None
    name = root.group(1).decode("ascii", "replace")
    return f"incomplete XML document: it stops after {len(body)} bytes without closing <{name}>"


def _self_closed(body: bytes, after_name: int) -> bool:
    """``<root ... />``: a document with nothing in it, whole."""
    end = body.find(b">", after_name)
    return end > 0 and body[end - 1 : end] == b"/"


def _incomplete_json(body: bytes) -> str | None:
    opener = body.lstrip()[0]
    last = body.rstrip()[-1]
    if last == _JSON_CLOSERS[opener]:
        return None
    closer = chr(_JSON_CLOSERS[opener])
    return f"incomplete JSON document: it stops after {len(body)} bytes, before its closing {closer}"


def _is_html(body: bytes) -> bool:
    start = body[:_START].lower()
    return b"<html" in start or b"<!doctype html" in start


def _html_without_end(body: bytes) -> bool:
    tail = body[-_HTML_TAIL:].lower()
    return _is_html(body) and b"</html" not in tail and b"</body" not in tail
