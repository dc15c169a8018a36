"""The workers' loop (`bot.polling`): a wake-up is never lost, even one that comes while a round
is running — the inbox worker wakes the chat workers' deliveries that way, mid-round."""

from __future__ import annotations

import asyncio

from bot.polling import work_until_stopped


async def test_a_wake_up_during_a_round_brings_the_next_round_at_once() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    rounds: list[int] = []
    second = asyncio.Event()

    async def round_() -> int:
        rounds.append(len(rounds) + 1)
        if len(rounds) == 1:
            wake.set()  # new work arrives while this round runs; the round reports none
        else:
            second.set()
        return 0

    loop = asyncio.create_task(work_until_stopped(round_, wake=wake, stop=stop,
                                                  poll_seconds=600, name="test"))
    try:
        # With a 10-minute poll, only the wake-up can bring the second round within seconds.
        await asyncio.wait_for(second.wait(), timeout=10)
    finally:
        stop.set()
        await asyncio.wait_for(loop, timeout=10)
    assert rounds[:2] == [1, 2]


async def test_an_idle_loop_waits_for_a_wake_up_and_stops_when_told() -> None:
    wake, stop = asyncio.Event(), asyncio.Event()
    rounds: list[float] = []

    async def round_() -> int:
        rounds.append(asyncio.get_running_loop().time())
        return 0

    loop = asyncio.create_task(work_until_stopped(round_, wake=wake, stop=stop,
                                                  poll_seconds=600, name="test"))
    await asyncio.sleep(0.3)
    assert len(rounds) == 1  # idle: no second round without a wake-up
    wake.set()
    for _ in range(100):
        if len(rounds) == 2:
            break
        await asyncio.sleep(0.05)
    assert len(rounds) == 2
    stop.set()
    await asyncio.wait_for(loop, timeout=10)
