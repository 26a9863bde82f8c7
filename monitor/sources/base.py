"""The contract every source kind fulfils.

A kind is a subclass of :class:`Source` in its own module under ``monitor/sources/``, decorated
with :func:`register`. Its class attributes do triple duty: config validation (``Options``), the
``monitor sources --kinds`` listing and the docs (``kind``, ``title``, the docstring).

``parse`` is pure: bytes in, normalised records out, :class:`~monitor.errors.ParseError` when
the payload lacks the structure the kind needs. Fetching is done by the pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Protocol, TypeVar

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
