"""Group commit for checks that finish about together.

Recording a check is a transaction; on a cycle of thousands of sources most checks are a
conditional GET answered 304, and the transaction costs more than the request. A
:class:`CheckWriter` collects the checks that finish within ``window`` seconds of each other (at
most ``largest`` of them) and records them with :meth:`Store.save_checks`, in one transaction
with shared statements. Each caller waits until its own check is committed, so a check counts as
done exactly when it did before; it only waits up to ``window`` longer.

Should the group fail for a reason of one of its checks (an unknown source, an invalid check, a
database error), each check is recorded again on its own, so that one bad check costs the others
nothing and every caller gets its own answer. When the database itself does not answer (see
:func:`monitor.database.unavailable`), every caller gets that error at once: none is recorded.
"""

from __future__ import annotations

import asyncio
import logging

from monitor.alerts.routing import Router
from monitor.database import unavailable
from monitor.errors import StorageError
from monitor.store import CheckWrite, Store

log = logging.getLogger(__name__)

WINDOW = 0.02  # seconds a finished check may wait for others to share its transaction
LARGEST = 500  # checks per transaction at most


class CheckWriter:
    """Records checks in groups. One event loop; the database calls run in it, as before."""

    def __init__(self, store: Store, *, window: float = WINDOW, largest: int = LARGEST) -> None:
        if window < 0 or largest < 1:
            raise ValueError("window must not be negative and largest at least 1")
        self._store = store
        self._window = window
        self._largest = largest
        self._waiting: list[tuple[CheckWrite, Router | None, asyncio.Future[int]]] = []
        self._timer: asyncio.TimerHandle | None = None

    async def save(self, check: CheckWrite, router: Router | None = None) -> int:
        """Record ``check`` (with its alerts for ``router``) and return its id, as
        :meth:`Store.save_check` does and with the same errors, once its group is committed."""
        loop = asyncio.get_running_loop()
        saved: asyncio.Future[int] = loop.create_future()
        self._waiting.append((check, router, saved))
        if len(self._waiting) >= self._largest:
            self.flush()
        elif self._timer is None:
            self._timer = loop.call_later(self._window, self.flush)
        # Shielded: a caller cancelled now does not take its check out of a group being written.
        return await asyncio.shield(saved)

    def flush(self) -> None:
        """Record every check waiting now (stopping calls this: nothing is left behind)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiting, self._waiting = self._waiting, []
        by_router: dict[int, list[tuple[CheckWrite, Router | None, asyncio.Future[int]]]] = {}
        for item in waiting:
            by_router.setdefault(id(item[1]), []).append(item)
        for group in by_router.values():
            self._write(group)

    def _write(self, group: list[tuple[CheckWrite, Router | None, asyncio.Future[int]]]) -> None:
        router = group[0][1]
        try:
            ids = self._store.save_checks([check for check, _, _ in group], router)
        except (KeyError, ValueError, StorageError) as exc:
            if len(group) == 1 or (isinstance(exc, StorageError) and unavailable(exc)):
                # A database that does not answer fails every check alike: trying each again
                # would only wait the busy timeout once per check, with the event loop held.
                for _, _, saved in group:
                    _settle(saved, exception=exc)
                return
            log.debug("a group of %d checks failed (%s); recording them one by one", len(group), exc)
            for check, _, saved in group:
                try:
                    _settle(saved, result=self._store.save_check(check, router))
                except (KeyError, ValueError, StorageError) as one:
                    _settle(saved, exception=one)
            return
        except BaseException as exc:
            for _, _, saved in group:
                _settle(saved, exception=exc)
            raise
        for (_, _, saved), check_id in zip(group, ids, strict=True):
            _settle(saved, result=check_id)


def _settle(
    future: asyncio.Future[int], *, result: int | None = None, exception: BaseException | None = None
) -> None:
    if future.done():
        return
    if exception is not None:
        future.set_exception(exception)
    else:
        assert result is not None
        future.set_result(result)
