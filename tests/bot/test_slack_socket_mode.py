"""Socket Mode (bot/slack/socket_mode.py) against a fake Slack speaking the real protocol: a Bolt
app's listeners see events and commands, each envelope is acknowledged only after its listener
ran, a failing listener leaves its envelope unacknowledged, and `stop` disconnects."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.settings import Settings
from bot.slack.socket_mode import SocketModeError, run_socket_mode
from tests.fakes.slack_api import app_mention, event_callback, slash_command
from tests.fakes.slack_socket import FakeSocketSlack, running_socket_slack


@dataclass
class Seen:
    """What a listener saw, when it finished, and which envelopes were acknowledged by then."""

    body: dict[str, Any]
    done_at: float
    acked_by_then: set[str]


@pytest.fixture
def fake() -> Iterator[FakeSocketSlack]:
    with running_socket_slack(app_token="xapp-test", bot_token="xoxb-test") as fake:
        yield fake


def settings_for(fake: FakeSocketSlack, tmp_path: Path, app_token: str = "xapp-test"
                 ) -> Settings:
    return Settings(slack_app_token=app_token, slack_api_url=fake.base_url + "/api/",
                    slack_bot_token="xoxb-test", slack_signing_secret="x", data_dir=tmp_path)


def bolt_app(fake: FakeSocketSlack, seen: list[Seen], *, process_before_response: bool = True,
             store_seconds: float = 0.2, started: asyncio.Event | None = None) -> AsyncApp:
    """An app like intake's: the mention listener takes `store_seconds` to "store" the event."""
    app = AsyncApp(signing_secret="x", process_before_response=process_before_response,
                   client=AsyncWebClient(token="xoxb-test", base_url=fake.base_url + "/api/"))

    @app.event("app_mention")
    async def on_mention(body: dict[str, Any]) -> None:
        if started is not None:
            started.set()
        if "boom" in body["event"]["text"]:
            raise RuntimeError("the inbox is down")
        await asyncio.sleep(store_seconds)
        seen.append(Seen(body, time.monotonic(), set(fake.acks)))

    @app.command("/sre")
    async def on_sre(ack: AsyncAck, body: dict[str, Any]) -> None:
        seen.append(Seen(body, time.monotonic(), set(fake.acks)))
        await ack("On it.")

    return app


@asynccontextmanager
async def socket_mode(app: AsyncApp, settings: Settings
                      ) -> AsyncIterator[tuple[asyncio.Event, asyncio.Task[None]]]:
    stop = asyncio.Event()
    task = asyncio.create_task(run_socket_mode(app, settings, stop))
    try:
        yield stop, task
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


def mention(text: str) -> dict[str, Any]:
    event = app_mention(f"<@U0BOT> {text}", "C0INC", "1700000000.000100", "U0ALICE")
    body: dict[str, Any] = json.loads(event_callback(event))
    return body


def sre_command(text: str) -> dict[str, Any]:
    form = slash_command("/sre", text, "C0INC", "U0ALICE", response_url="https://hooks.invalid/x")
    return dict(parse_qsl(form.decode()))


async def test_an_event_is_acknowledged_only_after_its_listener_ran(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    seen: list[Seen] = []
    async with socket_mode(bolt_app(fake, seen), settings_for(fake, tmp_path)):
        await fake.wait_connected()
        envelope_id = fake.send_events_api(mention("checkout is down"))
        ack = await fake.wait_ack(envelope_id)

    assert ack == {"envelope_id": envelope_id}
    [event] = seen
    assert event.body["event"]["text"] == "<@U0BOT> checkout is down"
    assert envelope_id not in event.acked_by_then  # the listener finished before the ack...
    assert event.done_at <= fake.ack_times[envelope_id]  # ...and the ack came after it
    assert fake.api_calls[0] == "apps.connections.open"
    assert "auth.test" in fake.api_calls  # Bolt's single-workspace authorization


async def test_without_process_before_response_the_ack_would_come_first(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    """The control for the test above: it does tell the two orders apart."""
    seen: list[Seen] = []
    app = bolt_app(fake, seen, process_before_response=False)
    async with socket_mode(app, settings_for(fake, tmp_path)):
        await fake.wait_connected()
        envelope_id = fake.send_events_api(mention("checkout is down"))
        await fake.wait_ack(envelope_id)
        for _ in range(100):
            if seen:
                break
            await asyncio.sleep(0.01)

    [event] = seen
    assert envelope_id in event.acked_by_then
    assert fake.ack_times[envelope_id] < event.done_at


async def test_a_slash_command_is_acknowledged_with_the_listeners_answer(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    seen: list[Seen] = []
    async with socket_mode(bolt_app(fake, seen), settings_for(fake, tmp_path)):
        await fake.wait_connected()
        envelope_id = fake.send_slash_command(sre_command("status checkout"))
        ack = await fake.wait_ack(envelope_id)

    assert ack == {"envelope_id": envelope_id, "payload": {"text": "On it."}}
    [command] = seen
    assert (command.body["command"], command.body["text"]) == ("/sre", "status checkout")
    assert envelope_id not in command.acked_by_then


async def test_a_failing_listener_leaves_the_envelope_for_slack_to_retry(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    seen: list[Seen] = []
    async with socket_mode(bolt_app(fake, seen), settings_for(fake, tmp_path)):
        await fake.wait_connected()
        failed = fake.send_events_api(mention("boom"))
        stored = fake.send_events_api(mention("after the failure"))
        await fake.wait_ack(stored)
        with pytest.raises(TimeoutError):
            await fake.wait_ack(failed, seconds=0.5)

    assert [s.body["event"]["text"] for s in seen] == ["<@U0BOT> after the failure"]


async def test_stop_disconnects_within_seconds(fake: FakeSocketSlack, tmp_path: Path) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(run_socket_mode(bolt_app(fake, []), settings_for(fake, tmp_path),
                                               stop))
    await fake.wait_connected()
    started = time.monotonic()
    stop.set()
    await asyncio.wait_for(task, 3)
    assert time.monotonic() - started < 1
    for _ in range(100):
        if not fake.open_sockets:
            break
        await asyncio.sleep(0.01)
    assert fake.open_sockets == 0


async def test_stop_waits_for_an_envelope_being_stored_and_acknowledges_it(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    seen: list[Seen] = []
    started = asyncio.Event()
    app = bolt_app(fake, seen, store_seconds=0.5, started=started)
    async with socket_mode(app, settings_for(fake, tmp_path)) as (stop, _task):
        await fake.wait_connected()
        envelope_id = fake.send_events_api(mention("slow store"))
        await asyncio.wait_for(started.wait(), 5)
        stop.set()

    assert envelope_id in fake.acks
    assert len(seen) == 1


async def test_a_wrong_app_token_raises_a_clear_error(fake: FakeSocketSlack,
                                                      tmp_path: Path) -> None:
    settings = settings_for(fake, tmp_path, app_token="xapp-wrong")
    with pytest.raises(SocketModeError, match=r"SLACK_APP_TOKEN.*'invalid_auth'"):
        await asyncio.wait_for(run_socket_mode(bolt_app(fake, []), settings, asyncio.Event()),
                               5)
    assert fake.connections == 0


async def test_stop_ends_a_connection_attempt_that_keeps_failing(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    fake.refuse_websocket = True
    stop = asyncio.Event()
    task = asyncio.create_task(run_socket_mode(bolt_app(fake, []), settings_for(fake, tmp_path),
                                               stop))
    await asyncio.sleep(0.3)
    assert not task.done()  # slack_sdk retries the handshake (every ping interval)
    stop.set()
    await asyncio.wait_for(task, 3)
    assert fake.connections == 0


async def test_slack_asking_to_reconnect_keeps_events_flowing(
        fake: FakeSocketSlack, tmp_path: Path) -> None:
    seen: list[Seen] = []
    async with socket_mode(bolt_app(fake, seen, store_seconds=0), settings_for(fake, tmp_path)):
        await fake.wait_connected()
        fake.send_disconnect("refresh_requested")
        await fake.wait_connected(2)
        envelope_id = fake.send_events_api(mention("after the refresh"))
        await fake.wait_ack(envelope_id)

    assert fake.api_calls.count("apps.connections.open") == 2
    assert [s.body["event"]["text"] for s in seen] == ["<@U0BOT> after the refresh"]
