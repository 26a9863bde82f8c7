"""Bytes of a fetched page to text, the way a browser chooses the encoding.

Precedence: a byte-order mark, then the ``charset`` of the Content-Type header, then a
``<meta charset>`` / ``<meta http-equiv="content-type">`` or an XML declaration in the first
2 KB, then UTF-8 when the bytes are valid UTF-8, else windows-1252 (the legacy default of
browsers for unlabelled Western pages). Labels are resolved as the WHATWG Encoding Standard
says (``webencodings``), so ``iso-8859-1`` and ``us-ascii`` decode as windows-1252; a label no
browser knows is ignored and the next rule applies.

Two labelling mistakes of real servers are corrected, because legacy single-byte text is
almost never valid UTF-8 by chance: bytes labelled with a single-byte encoding that are valid
UTF-8 with non-ASCII characters are read as UTF-8, and bytes labelled UTF-8 in which no
non-ASCII byte forms a UTF-8 character are read as windows-1252. A page that mixes both keeps
its label, with U+FFFD for the bytes that do not fit.
"""

from __future__ import annotations

import codecs
import re
from email.message import Message

import webencodings  # type: ignore[import-untyped]
from bs4.dammit import EncodingDetector

_PRESCAN_BYTES = 2048
# Encodings in which a character may take several bytes (Python codec names, as prefixes).
_MULTI_BYTE = ("utf", "shift_jis", "euc", "gb", "big5", "iso2022", "hz", "cp932", "cp949", "cp950")
_UTF8_CHARACTER = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def decode_body(body: bytes, content_type: str | None) -> str:
    """Decode ``body`` as a browser would; ``content_type`` is the raw Content-Type header.

    Bytes that are invalid in the chosen encoding become U+FFFD. Never raises.
    """
    stripped, bom_encoding = EncodingDetector.strip_byte_order_mark(body)
    if bom_encoding:
        return stripped.decode(bom_encoding, errors="replace")
    codec = _browser_codec(_header_charset(content_type)) or _declared_codec(body)
    if codec:
        return _decode_labelled(body, codec)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        # Unlabelled and not UTF-8: the legacy default browsers use for Western pages.
        return body.decode("cp1252", errors="replace")


def _decode_labelled(body: bytes, codec: str) -> str:
    """``body`` in the encoding its label names, unless the label is one of the two mistakes."""
    if codec == "utf-8" or not codec.startswith(_MULTI_BYTE):
        try:
            return body.decode("utf-8")
        except UnicodeDecodeError:
            if codec == "utf-8" and _UTF8_CHARACTER.search(body) is None:
                return body.decode("cp1252", errors="replace")
    return body.decode(codec, errors="replace")


def _browser_codec(label: str | None) -> str | None:
    """The Python codec a browser uses for an encoding label, or None for a label it would ignore."""
    if not label:
        return None
    encoding = webencodings.lookup(label.strip().strip("\"'"))
    if encoding is None:
        return None
    try:
        # webencodings knows encodings Python has no codec for (x-user-defined, replacement):
        # such a label is ignored, as by a browser that lacks the encoding.
        return codecs.lookup(encoding.codec_info.name).name
    except LookupError:
        return None


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
