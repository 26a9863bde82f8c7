"""The contract every source kind fulfils.

A kind is a subclass of :class:`Source` in its own module under ``monitor/sources/``, decorated
with :func:`register`. Its class attributes do triple duty: config validation (``Options``), the
``monitor sources --kinds`` listing and the docs (``kind``, ``title``, the docstring).

``parse`` is pure: bytes in, normalised records out, :class:`~monitor.errors.ParseError` when
the payload lacks the structure the kind needs. Fetching is done by the pipeline.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from monitor.models import Fetched, Record, Validators

if TYPE_CHECKING:
    from monitor.config import SourceConfig


class Fetches(Protocol):
    """What a kind fetches with: the HTTP fetcher, or the browser one for ``fetcher: browser``."""

    async def fetch(
        self, url: str, *, validators: Validators | None = None, source_id: str | None = None
    ) -> Fetched: ...


class NoOptions(BaseModel):
    """A kind without options."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(ABC):
    """One configured source of a given kind."""

    kind: ClassVar[str]
    title: ClassVar[str]
    # Who publishes what this kind reads, as alerts name it; generic kinds leave it empty and
    # alerts fall back to the source's ``publisher`` setting or its id.
    publisher: ClassVar[str] = ""
    Options: ClassVar[type[BaseModel]] = NoOptions
    default_interval: ClassVar[timedelta] = timedelta(minutes=15)

    def __init__(self, config: SourceConfig) -> None:
        self.config = config
        self.options: BaseModel = self.Options.model_validate(config.options)

    @property
    def id(self) -> str:
        return self.config.id

    async def fetch(self, fetcher: Fetches, validators: Validators | None) -> Fetched:
        """Fetch the payload ``parse`` reads: by default one (conditional) GET of the URL.

        Kinds whose payload takes several requests override this. Raises FetchError."""
        return await fetcher.fetch(self.config.url, validators=validators, source_id=self.id)

    @abstractmethod
    def parse(self, body: bytes, *, content_type: str | None, url: str) -> list[Record]:
        """Turn one fetched payload into records (at least one). Raises ParseError.

        A source with ``countries`` returns records for those countries only (the ones the
        payload speaks about); without, for every country in the payload."""


# A lone surrogate can only come from a ``\\uD800``-``\\uDFFF`` escape in JSON text.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def load_json(payload: bytes | str) -> Any:
    """``json.loads`` for the JSON kinds, with lone surrogates made U+FFFD.

    JSON may escape half of a UTF-16 pair (``"\\ud800"``, an emoji cut in two); Python keeps it
    as a lone surrogate, which no UTF-8 encoder accepts, so lxml, the store and the alerts would
    all fail on it. It becomes U+FFFD, as an invalid byte does in :func:`~monitor.decoding.decode_body`;
    so do UTF-8-encoded surrogates in ``bytes``, which are invalid UTF-8. Raises ``ValueError``
    for what is not JSON (or not text) and ``RecursionError`` for arrays nested too deep."""
    text = payload if isinstance(payload, str) else payload.decode(json.detect_encoding(payload))
    data = json.loads(text)
    return _without_surrogates(data) if _SURROGATE_ESCAPE.search(text) else data


def json_problem(exc: ValueError | RecursionError) -> str:
    """What :func:`load_json` found wrong, in a few words: where the JSON breaks, and how."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno} column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    return str(exc) or type(exc).__name__


def _without_surrogates(data: Any) -> Any:
    """``data`` with every lone surrogate of its strings and keys replaced, in place (a loop,
    not recursion: the document may be nested as deep as the JSON parser allows)."""
    if isinstance(data, str):
        return _SURROGATE.sub("\ufffd", data)
    stack = [data]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if any(_SURROGATE.search(key) for key in node):
                fixed = {_SURROGATE.sub("\ufffd", key): value for key, value in node.items()}
                node.clear()
                node.update(fixed)
            entries: list[tuple[Any, Any]] = list(node.items())
        elif isinstance(node, list):
            entries = list(enumerate(node))
        else:
            continue
        for key, value in entries:
            if isinstance(value, str):
                node[key] = _SURROGATE.sub("\ufffd", value)
            elif isinstance(value, dict | list):
                stack.append(value)
    return data


REGISTRY: dict[str, type[Source]] = {}

S = TypeVar("S", bound=type[Source])


def register(cls: S) -> S:
    """Class decorator: make a kind available under ``cls.kind``."""
    if cls.kind in REGISTRY and REGISTRY[cls.kind] is not cls:
        raise RuntimeError(f"source kind {cls.kind!r} is registered twice")
    REGISTRY[cls.kind] = cls
    return cls


def build(config: SourceConfig) -> Source:
    """Instantiate the kind named by ``config.kind``."""
    factory: Callable[[SourceConfig], Source] = REGISTRY[config.kind]
    return factory(config)
