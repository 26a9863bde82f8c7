"""decode_body picks the encoding as a browser does and never raises."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor.decoding import decode_body

TEXT = "Côte d'Ivoire \u2013 « vigilance renforcée » €"


def test_utf8_header() -> None:
    assert decode_body(TEXT.encode(), "text/html; charset=utf-8") == TEXT


def test_no_declaration_is_utf8() -> None:
    assert decode_body(TEXT.encode(), "text/html") == TEXT
    assert decode_body(TEXT.encode(), None) == TEXT


def test_latin1_header_is_read_as_windows_1252() -> None:
    body = TEXT.encode("cp1252")  # the euro sign and the dash exist only in windows-1252

    assert decode_body(body, "text/html; charset=ISO-8859-1") == TEXT
    assert decode_body(body, 'text/html; charset="latin1"') == TEXT
    assert decode_body(body, "text/plain; charset=us-ascii") == TEXT


def test_meta_charset_declares_windows_1252() -> None:
    body = f'<html><head><meta charset="windows-1252"></head><body>{TEXT}</body></html>'.encode("cp1252")

    assert TEXT in decode_body(body, "text/html")


def test_meta_http_equiv_declares_the_charset() -> None:
    meta = '<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">'
    body = f"<html><head>{meta}</head><body>{TEXT}</body></html>".encode("cp1252")

    assert TEXT in decode_body(body, None)


def test_header_wins_over_meta() -> None:
    body = f'<meta charset="windows-1252"><p>{TEXT}</p>'.encode()

    assert TEXT in decode_body(body, "text/html; charset=utf-8")


def test_meta_after_the_first_2kb_is_ignored() -> None:
    body = ("<!--" + "x" * 3000 + "-->" + '<meta charset="koi8-r">' + "é").encode()

    assert decode_body(body, None).endswith("é")


def test_unlabelled_bytes_that_are_not_utf8_fall_back_to_windows_1252() -> None:
    assert (
        decode_body("<p>Sécurité – zone rouge</p>".encode("cp1252"), None) == "<p>Sécurité – zone rouge</p>"
    )


def test_xml_declaration() -> None:
    text = "Côte d'Ivoire : vigilance renforcée, 5 €"
    body = f'<?xml version="1.0" encoding="ISO-8859-15"?><rss><title>{text}</title></rss>'.encode(
        "iso8859-15"
    )

    assert text in decode_body(body, "application/rss+xml")


def test_legacy_bytes_labelled_utf8_are_read_as_windows_1252() -> None:
    # No non-ASCII byte forms a UTF-8 character: the label is wrong, not the page.
    body = "Sécurité – zone rouge".encode("cp1252")

    assert decode_body(body, "text/html; charset=utf-8") == "Sécurité – zone rouge"


def test_utf8_bytes_labelled_with_a_single_byte_encoding_are_read_as_utf8() -> None:
    body = f'<meta charset="iso-8859-1"><p>{TEXT}</p>'.encode()

    assert TEXT in decode_body(body, "text/html; charset=iso-8859-1")
    assert TEXT in decode_body(body, None)


def test_a_label_is_kept_for_bytes_that_are_not_valid_utf8() -> None:
    body = "Sécurité".encode("iso8859-15")

    assert decode_body(body, "text/html; charset=iso-8859-15") == "Sécurité"


def test_utf8_page_with_a_few_stray_bytes_keeps_its_label_with_replacement_characters() -> None:
    body = "Sécurité à Bamako".encode().replace("é".encode(), b"\xe9", 1)

    assert decode_body(body, "text/html; charset=utf-8") == "S\ufffdcurité à Bamako"


def test_unknown_charset_name_falls_back_to_utf8() -> None:
    assert decode_body(TEXT.encode(), "text/html; charset=no-such-thing") == TEXT
    assert decode_body(TEXT.encode(), "text/html; charset=rot13") == TEXT


def test_unknown_header_charset_falls_back_to_meta() -> None:
    body = f'<meta charset="windows-1252"><p>{TEXT}</p>'.encode("cp1252")

    assert TEXT in decode_body(body, "text/html; charset=bogus")


def test_meta_declaring_utf16_means_utf8() -> None:
    body = f'<meta charset="utf-16"><p>{TEXT}</p>'.encode()

    assert TEXT in decode_body(body, None)


@pytest.mark.parametrize(
    ("bom", "encoding"),
    [(codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"), (codecs.BOM_UTF16_BE, "utf-16-be")],
)
def test_bom_wins_over_the_header(bom: bytes, encoding: str) -> None:
    assert decode_body(bom + TEXT.encode(encoding), "text/html; charset=iso-8859-1") == TEXT


def test_empty_body() -> None:
    assert decode_body(b"", "text/html; charset=utf-8") == ""
    assert decode_body(b"", None) == ""


@given(body=st.binary(max_size=300), content_type=st.none() | st.text(max_size=60))
def test_never_raises(body: bytes, content_type: str | None) -> None:
    assert isinstance(decode_body(body, content_type), str)
