"""BoundedDecoder: exact size cap inside the decompressor, for every coding."""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Callable

import brotli  # type: ignore[import-untyped]
import pytest

from monitor.contentcoding import BodyTooLargeError, BoundedDecoder, ContentDecodingError

DATA = bytes(range(256)) * 40

CODINGS: list[tuple[str | None, Callable[[bytes], bytes]]] = [
    (None, lambda data: data),
    ("identity", lambda data: data),
    ("gzip", gzip.compress),
    ("deflate", zlib.compress),
    ("br", brotli.compress),
    ("gzip, br", lambda data: brotli.compress(gzip.compress(data))),
]


def decode(coding: str | None, raw: bytes, limit: int, chunk: int = 7) -> BoundedDecoder:
    decoder = BoundedDecoder(coding, limit)
    for start in range(0, len(raw), chunk):
        decoder.feed(raw[start : start + chunk])
    decoder.finish()
    return decoder


@pytest.mark.parametrize(("coding", "compress"), CODINGS)
def test_body_of_exactly_the_limit_is_decoded(coding: str | None, compress: Callable[[bytes], bytes]) -> None:
    assert decode(coding, compress(DATA), len(DATA)).value == DATA


@pytest.mark.parametrize(("coding", "compress"), CODINGS)
def test_one_byte_over_the_limit_fails_and_keeps_the_start(
    coding: str | None, compress: Callable[[bytes], bytes]
) -> None:
    decoder = BoundedDecoder(coding, len(DATA) - 1)
    with pytest.raises(BodyTooLargeError):
        decoder.feed(compress(DATA))
        decoder.finish()
    assert DATA.startswith(decoder.value)


def test_unknown_coding_is_passed_through() -> None:
    assert decode("zstd-ish", DATA, len(DATA)).value == DATA


@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_corrupt_data_fails(coding: str) -> None:
    with pytest.raises(ContentDecodingError):
        decode(coding, b"certainly not compressed" * 4, 10_000)
