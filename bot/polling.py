"""The loop every worker runs: rounds back to back while there is work, else a wait for a
wake-up (intake stored something) or the poll interval (items from other replicas, retries),
until told to stop. A failing round is logged and retried: the database may be briefly away."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def work_until_stopped(round_: Callable[[], Awaitable[int]], *, wake: asyncio.Event,
                             stop: asyncio.Event, poll_seconds: float, name: str) -> None:
    """`round_` returns how much it did; 0 means idle."""
    while not stop.is_set():
        # Cleared before the round, not after: a wake-up that comes during the round (new work
        # the round may have missed) then brings the next round at once.
        wake.clear()
        try:
            done = await round_()
        except Exception:
            log.exception("%s round failed; retrying", name)
            done = 0
            await asyncio.sleep(poll_seconds)
        if done:
            continue
        waiters = [asyncio.create_task(wake.wait()), asyncio.create_task(stop.wait())]
        await asyncio.wait(waiters, timeout=poll_seconds, return_when=asyncio.FIRST_COMPLETED)
        for w in waiters:
            w.cancel()


async def drain(round_: Callable[[], Awaitable[int]]) -> int:
    """Rounds until one finds nothing to do (the demo and tests use this); returns the total."""
    total = 0
    while (n := await round_()) > 0:
        total += n
    return total
