"""Shared reads: the same read asked for by several callers at once is made once for all of them, never stale.

Many people asking for the same plan at once (a team opening the plan card after a reminder) each made the same
query and built the same card. Here, callers asking for the same key while a read of it is under way wait for
the next read, which starts when that one ends and answers them all; a caller alone gets a read of its own at
once. A read only ever answers callers that asked before it began, so what each caller gets was read after it
asked: a write that finished before someone asked is in what they get, whatever the process or replica that
wrote it. Nothing is kept once a read has answered: this is not a cache and never serves an old result.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")


class SharedReads:
    """Reads keyed by what they read; see the module docstring."""

    def __init__(self) -> None:
        self._waiting: dict[Hashable, asyncio.Future[Any]] = {}
        """Per key, the read not begun yet that new callers join."""
        self._under_way: dict[Hashable, asyncio.Future[Any]] = {}
        """Per key, the read that has begun (callers asking now wait for the next one)."""
        self._tasks: set[asyncio.Task[None]] = set()

    async def read(self, key: Hashable, read: Callable[[], Awaitable[T]]) -> T:
        """`read()`'s result, from a read begun after this call, shared with callers of the same key.

        Raises what `read` raises (to every caller it answers).
        """
        waiting = self._waiting.get(key)
        if waiting is None:
            waiting = self._waiting[key] = asyncio.get_running_loop().create_future()
            task = asyncio.create_task(self._run(key, waiting, read))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # Shielded: a caller given up on (cancelled) must not cancel the read others wait for.
        result: T = await asyncio.shield(waiting)
        return result

    async def _run(self, key: Hashable, answer: asyncio.Future[Any], read: Callable[[], Awaitable[Any]]) -> None:
        try:
            before = self._under_way.get(key)
            if before is not None:
                await asyncio.wait([before])
            # From here on nobody joins this read: it begins now, after every caller it answers asked.
            del self._waiting[key]
            self._under_way[key] = answer
            result = await read()
        except asyncio.CancelledError:
            if self._waiting.get(key) is answer:
                del self._waiting[key]
            answer.cancel()
            raise
        except Exception as error:  # every caller gets it, as each would have from a read of its own
            answer.set_exception(error)
            answer.exception()  # retrieved here too: every caller may have been cancelled meanwhile
        else:
            answer.set_result(result)
        finally:
            if self._under_way.get(key) is answer:
                del self._under_way[key]
