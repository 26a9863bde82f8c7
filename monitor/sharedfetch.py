"""One request per upstream document within a batch of checks.

Several configured sources can read one document (every country of the US State Department
feed, the GOV.UK travel-advice index). :class:`SharedFetches` sits between those sources and
the fetcher for one batch, so that the publisher sees that document requested once.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from monitor.errors import FetchError
from monitor.models import Fetched, Validators

if TYPE_CHECKING:
    # Importing the sources package registers every kind; only the protocol is needed here.
    from monitor.sources.base import Fetches

_NONE = Validators()


@dataclass(frozen=True)
class _Request:
    """One request that went to the inner fetcher, with the validators it was sent with."""

    sent: Validators
    # The task catches FetchError and returns it, so that no exception object is shared (and
    # grown with every caller's traceback); each caller raises a copy of its own.
    task: asyncio.Task[Fetched | FetchError]


class SharedFetches:
    """Wraps a Fetches (see monitor/sources/base.py) for one batch of checks: each URL is
    requested once; the other sources of the batch get that answer.

    A 2xx answer serves every caller: as a 304-style answer (empty body, elapsed 0) to a caller
    whose validators match it (the same ETag; or, when neither has one, the same
    Last-Modified), as it is to the others. A 304 answer serves only callers that sent the same
    validators; another caller gets a request of its own, shared by the same rules. A request
    that failed fails every caller that shares it, each with a copy of the error that carries
    its own ``source_id``. A caller that is cancelled does not cancel the request the others
    wait for. There is no time window: make one per batch, and one per inner fetcher (the
    browser and the HTTP fetcher answer differently). Use it from a single event loop.

    ``expected``: how many callers of the batch will ask for each URL (the sources' own URLs).
    Once that many have had their answer, the URL's answers are let go, so that a batch of
    thousands of pages does not hold every body until it ends; a URL not counted there (a
    document a source reads besides its own URL) is kept for the whole batch.
    """

    def __init__(self, inner: Fetches, expected: Mapping[str, int] | None = None) -> None:
        self._inner = inner
        self._by_url: dict[str, list[_Request]] = {}
        self._expected = dict(expected or {})
        self._served: Counter[str] = Counter()
        self._made = 0

    @property
    def requests(self) -> int:
        """How many requests really went to the inner fetcher."""
        return self._made

    @property
    def held(self) -> int:
        """How many URLs' answers the batch still holds."""
        return len(self._by_url)

    async def fetch(
        self, url: str, *, validators: Validators | None = None, source_id: str | None = None
    ) -> Fetched:
        """The answer for ``url`` as :meth:`Fetches.fetch` gives it, shared when possible.

        Raises what the inner fetcher raised (a FetchError copy carrying ``source_id``)."""
        mine = validators or _NONE
        requests = self._by_url.setdefault(url, [])
        try:
            # Requests are tried in the order they were made (others may add some meanwhile); one
            # a caller cannot use was a 304 to other validators. The caller's own request serves.
            seen = 0
            while True:
                if seen == len(requests):
                    requests.append(self._start(url, validators, source_id))
                request = requests[seen]
                seen += 1
                outcome = await asyncio.shield(request.task)
                if isinstance(outcome, FetchError):
                    raise _own_copy(outcome, source_id) from outcome.__cause__
                answer = _answer_for(outcome, request.sent, url, mine)
                if answer is not None:
                    return answer
        finally:
            self._served[url] += 1
            if url in self._expected and self._served[url] >= self._expected[url]:
                # Every caller counted on has its answer: the requests (and bodies) can go.
                self._by_url.pop(url, None)

    def _start(self, url: str, validators: Validators | None, source_id: str | None) -> _Request:
        self._made += 1
        task = asyncio.create_task(self._request(url, validators, source_id))
        return _Request(validators or _NONE, task)

    async def _request(
        self, url: str, validators: Validators | None, source_id: str | None
    ) -> Fetched | FetchError:
        try:
            return await self._inner.fetch(url, validators=validators, source_id=source_id)
        except FetchError as exc:
            return exc


def _answer_for(fetched: Fetched, sent: Validators, url: str, mine: Validators) -> Fetched | None:
    """What ``fetched`` (asked with ``sent``) tells a caller holding ``mine``; None: nothing."""
    if fetched.not_modified:
        return replace(fetched, url=url) if mine == sent else None
    if _same_version(mine, fetched.validators):
        return replace(fetched, url=url, status=304, body=b"", elapsed=0.0)
    return replace(fetched, url=url)


def _same_version(mine: Validators, answer: Validators) -> bool:
    """Whether the caller already holds the answer's version, as a server would judge it."""
    if mine.etag or answer.etag:
        return mine.etag == answer.etag
    return bool(mine.last_modified) and mine.last_modified == answer.last_modified


def _own_copy(error: FetchError, source_id: str | None) -> FetchError:
    """``error`` (of its own class, with all its attributes) for the caller ``source_id``."""
    copy = type(error).__new__(type(error), *error.args)
    copy.__dict__.update(error.__dict__)
    copy.source_id = source_id
    return copy
