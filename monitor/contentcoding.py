"""Content-Encoding decoding that never produces more than a fixed number of bytes.

A few hundred bytes of brotli can expand to gigabytes, so the size cap has to be enforced inside
the decompressor, not on its output: every step is asked for at most the room that is left.
Codings: ``gzip`` (and ``x-gzip``), ``deflate`` (zlib-wrapped or raw), ``br``, ``identity``;
an unknown coding is passed through unchanged, as httpx and browsers do.
"""

from __future__ import annotations

import zlib
from typing import Protocol

import brotli  # type: ignore[import-untyped]


class BodyTooLargeError(Exception):
    """The decoded body would exceed the limit."""


class ContentDecodingError(Exception):
    """The body is not valid data for its Content-Encoding."""


class _Step(Protocol):
    def decode(self, data: bytes, room: int) -> bytes:
        """Decode more input; returns at most ``room + 1`` bytes unless the step is identity."""

    def flush(self) -> bytes:
        """Output still held once all input has been given."""


class _Identity:
    def decode(self, data: bytes, room: int) -> bytes:
        return data

    def flush(self) -> bytes:
        return b""


class _Zlib:
    def __init__(self, wbits: int) -> None:
        self._inflater = zlib.decompressobj(wbits)

    def decode(self, data: bytes, room: int) -> bytes:
        # Output shorter than max_length means all input was consumed, so nothing is lost when
        # the caller stops at room + 1.
        return self._inflater.decompress(data, room + 1)

    def flush(self) -> bytes:
        return self._inflater.flush()


class _Deflate(_Zlib):
    """RFC 9110 deflate is zlib-wrapped, but some servers send raw deflate; try both."""

    def __init__(self) -> None:
        super().__init__(zlib.MAX_WBITS)
        # The start of the body, until it holds the two bytes of a zlib header: zlib accepts a
        # first chunk of one byte without checking it, so raw deflate sent in chunks of one
        # byte was read as zlib and failed on the second. None once the form is known.
        self._head: bytes | None = b""

    def decode(self, data: bytes, room: int) -> bytes:
        if self._head is None:
            return super().decode(data, room)
        data = self._head + data
        if len(data) < 2:
            self._head = data
            return b""
        self._head = None
        try:
            return super().decode(data, room)
        except zlib.error:
            self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            return super().decode(data, room)

    def flush(self) -> bytes:
        if self._head:  # a body of one byte: too short for either form
            raise zlib.error("deflate body of one byte")
        return super().flush()


class _Brotli:
    def __init__(self) -> None:
        self._decompressor = brotli.Decompressor()

    def decode(self, data: bytes, room: int) -> bytes:
        out: bytes = self._decompressor.process(data, output_buffer_limit=room + 1)
        return out

    def flush(self) -> bytes:
        return b""


def _encoded_room(limit: int) -> int:
    """The most an inner step may yield: the still-encoded form of a body of ``limit`` bytes.
    That form may be a little larger than the body (incompressible data gains headers and block
    overheads: a few bytes per block, far less than a sixteenth), never much larger."""
    return limit + limit // 16 + 4096


def _step(coding: str) -> _Step:
    if coding in ("gzip", "x-gzip"):
        return _Zlib(zlib.MAX_WBITS | 16)
    if coding == "deflate":
        return _Deflate()
    if coding == "br":
        return _Brotli()
    return _Identity()


class BoundedDecoder:
    """Decodes a body sent with ``content_encoding`` into at most ``limit`` bytes.

    Feed the raw chunks in order with :meth:`feed`, then call :meth:`finish`. Both raise
    :class:`BodyTooLargeError` as soon as the decoded body would exceed ``limit`` and
    :class:`ContentDecodingError` for corrupt data. :attr:`value` is what was decoded so far,
    cut at ``limit``, also after an error.
    """

    def __init__(self, content_encoding: str | None, limit: int) -> None:
        codings = [c.strip().lower() for c in (content_encoding or "").split(",") if c.strip()]
        # Codings are listed in the order they were applied, so they are undone last first.
        # Identity steps change nothing: left out, an unknown coding before gzip does not hold
        # the raw compressed bytes to the decoded body's limit.
        steps = [_step(coding) for coding in reversed(codings)]
        self._steps = [step for step in steps if not isinstance(step, _Identity)] or [_Identity()]
        self._limit = limit
        self._out = bytearray()

    @property
    def value(self) -> bytes:
        return bytes(self._out)

    def feed(self, data: bytes) -> None:
        """Decode one raw chunk."""
        self._run(data, flush=False)

    def finish(self) -> bytes:
        """Decode what the steps still hold and return the whole decoded body."""
        self._run(b"", flush=True)
        return self.value

    @property
    def _room(self) -> int:
        return self._limit - len(self._out)

    def _run(self, data: bytes, *, flush: bool) -> None:
        last = self._steps[-1]
        try:
            for step in self._steps:
                # An inner step yields still-encoded bytes, which need not fit what is left, and
                # may be a little larger than the body they encode (a body of exactly the limit,
                # or an empty one, encoded twice, was refused as too large).
                room = self._room if step is last else _encoded_room(self._limit)
                data = step.decode(data, room) + (step.flush() if flush else b"")
                if len(data) > room:
                    if step is last:
                        self._out += data[:room]
                    raise BodyTooLargeError(f"decoded body exceeds {self._limit} bytes")
        except (zlib.error, brotli.error) as exc:
            raise ContentDecodingError(str(exc)) from None
        self._out += data
