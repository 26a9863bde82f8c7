"""Bytes of a fetched page to text, the way a browser chooses the encoding.

Precedence: a byte-order mark, then the ``charset`` of the Content-Type header, then a
``<meta charset>`` / ``<meta http-equiv="content-type">`` or an XML declaration in the first
2 KB, then UTF-8 when the bytes are valid UTF-8, else windows-1252 (the legacy default of
browsers for unlabelled Western pages). Labels are resolved as the WHATWG Encoding Standard
says (``webencodings``), so ``iso-8859-1`` and ``us-ascii`` decode as windows-1252; a label no
browser knows is ignored and the next rule applies.
"""

from __future__ import annotations

from email.message import Message

import webencodings  # type: ignore[import-untyped]
from bs4.dammit import EncodingDetector

_PRESCAN_BYTES = 2048


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode ``body`` as a browser would; ``content_type`` is the raw Content-Type header.

    Bytes that are invalid in the chosen encoding become U+FFFD. Never raises.
    """
    stripped, bom_encoding = EncodingDetector.strip_byte_order_mark(body)
    if bom_encoding:
        return stripped.decode(bom_encoding, errors="replace")
    codec = _browser_codec(_header_charset(content_type)) or _declared_codec(body)
    if codec:
        return body.decode(codec, errors="replace")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Unlabelled and not UTF-8: the legacy default browsers use for Western pages.
        return body.decode("cp1252", errors="replace")


def _browser_codec(label: str | None) -> str | None:
    """The Python codec a browser uses for an encoding label, or None for a label it would ignore."""
    if not label:
        return None
    encoding = webencodings.lookup(label.strip().strip("\"'"))
    return None if encoding is None else str(encoding.codec_info.name)


def _header_charset(content_type: str | None) -> str | None:
    if not content_type:
        return None
    header = Message()
    try:
        header["content-type"] = content_type
        return header.get_content_charset()
    except (ValueError, LookupError, UnicodeError):
        return None


def _declared_codec(body: bytes) -> str | None:
    """The codec named by a meta tag or XML declaration at the start of ``body``."""
    declared = EncodingDetector.find_declared_encoding(body[:_PRESCAN_BYTES], is_html=True)
    codec = _browser_codec(declared)
    # A document that can declare its encoding in ASCII is not UTF-16 (HTML standard, prescan).
    if codec and codec.startswith("utf-16"):
        return "utf-8"
    return codec
