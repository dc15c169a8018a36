"""Cards first, investigations after: the new incidents whose card is on its way in this process.
An investigation (runbook search on the embedding model, Prometheus queries, charts) is the
heaviest thing a replica does; in an alert storm, run beside two hundred cards, it took the
CPU they needed and a group's card went out many seconds late. So an investigation starts
only once no card is on its way — or after `limit_s`, so a storm that never ends does not
starve them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

LIMIT_S = 30.0


@dataclass
class CardsFirst:
    limit_s: float = LIMIT_S
    going: int = 0
    _gone: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    def __post_init__(self) -> None:
        self._gone.set()

    def start(self) -> Callable[[], None]:
        """A card is on its way; call what this returns once it is out (or given up):
        more than once is harmless."""
        self.going += 1
        self._gone.clear()
        done = False

        def finish() -> None:
            nonlocal done
            if not done:
                done = True
                self.going -= 1
                if self.going == 0:
                    self._gone.set()

        return finish

    async def wait(self) -> None:
        """Until no card is on its way, or `limit_s` has passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._gone.wait(), self.limit_s)
