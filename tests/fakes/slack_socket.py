"""A fake Slack Socket Mode endpoint on loopback: `apps.connections.open` hands out a one-time
WebSocket URL, the WebSocket greets with `hello`, pushes envelopes the test sends and records
the acknowledgements — so slack_sdk's `SocketModeClient` (and Bolt's handler) run against it
unchanged, with the Web API at `base_url + "/api/"`.

Written from Slack's Socket Mode documentation, independently of slack_sdk. Envelopes are
`{"envelope_id", "type", "payload", "accepts_response_payload"}`; `events_api` ones also carry
`retry_attempt`/`retry_reason`; an acknowledgement is `{"envelope_id"[, "payload"]}`.
`apps.connections.open` wants the app-level token (`not_authed`, `invalid_auth`, and
`not_allowed_token_type` for the bot token); `auth.test` answers the bot token, as Bolt calls it.
Each WebSocket URL's ticket works once. Envelopes sent before a client connects wait for it.

Differences from Slack: nothing is redelivered when an acknowledgement does not come (Slack
retries events after 3 s); `send_disconnect` asks for a reconnect but never closes the old link.
A server with its own event loop runs in a thread, so awaiting `wait_ack` in the test's loop
lets the client under test run meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from aiohttp import WSMsgType, web

JSON = dict[str, Any]
TEAM_ID = "T0001"
TEAM_DOMAIN = "acme"
APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"


class FakeSocketSlack:
    """State and serving; use `running_socket_slack`, or `start()`/`stop()`.

    Read `acks` (envelope id → the acknowledgement as sent), `ack_times` (envelope id →
    `time.monotonic()` at arrival), `sent` (envelopes pushed), `received` (every text frame from
    clients), `api_calls` (Web API method names, in order) and `connections` (WebSockets
    accepted). Set `refuse_websocket` to answer the WebSocket handshake with HTTP 403.
    """

    def __init__(self, *, app_token: str = "xapp-test", bot_token: str = "xoxb-test",
                 team_id: str = TEAM_ID, app_id: str = APP_ID,
                 bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID) -> None:
        self.app_token, self.bot_token = app_token, bot_token
        self.team_id, self.app_id, self.bot_user_id, self.bot_id = (
            team_id, app_id, bot_user_id, bot_id)
        self.acks: dict[str, JSON] = {}
        self.ack_times: dict[str, float] = {}
        self.sent: list[JSON] = []
        self.received: list[JSON] = []
        self.api_calls: list[str] = []
        self.connections = 0
        self.refuse_websocket = False
        self._lock = threading.Lock()
        self._tickets: set[str] = set()
        self._sockets: set[web.WebSocketResponse] = set()
        self._outbox: asyncio.Queue[str] = asyncio.Queue()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None
        self._port = 0

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`; the Web API is under `/api/`."""
        assert self._port, "FakeSocketSlack is not started"
        return f"http://127.0.0.1:{self._port}"

    @property
    def open_sockets(self) -> int:
        return len(self._sockets)

    # --- what Slack sends ----------------------------------------------------------------

    def send_events_api(self, body: JSON, *, retry_attempt: int = 0,
                        retry_reason: str = "") -> str:
        """Push an Events API body (`{"type": "event_callback", "event": ...}`); returns the
        envelope id."""
        return self._push("events_api", body, accepts_response_payload=False,
                          retry_attempt=retry_attempt, retry_reason=retry_reason)

    def send_slash_command(self, form: JSON) -> str:
        """Push a slash command: the fields Slack would form-encode over HTTP, as an object."""
        return self._push("slash_commands", form, accepts_response_payload=True)

    def send_interactive(self, payload: JSON) -> str:
        """Push an interaction (`block_actions`, `shortcut`, `message_action`, ...); only
        `view_submission` accepts a response payload (`response_action`)."""
        return self._push("interactive", payload,
                          accepts_response_payload=payload.get("type") == "view_submission")

    def send_disconnect(self, reason: str = "refresh_requested") -> None:
        """Ask connected clients to reconnect, as Slack does every few hours (`warning`,
        `refresh_requested`) or when Socket Mode is turned off (`link_disabled`)."""
        self._enqueue({"type": "disconnect", "reason": reason,
                       "debug_info": {"host": "applink-fake"}})

    async def wait_ack(self, envelope_id: str, seconds: float = 5.0) -> JSON:
        """The acknowledgement of `envelope_id`, once it arrived (TimeoutError after
        `seconds`). Awaited, so the client under test runs meanwhile."""
        deadline = time.monotonic() + seconds
        while envelope_id not in self.acks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no acknowledgement of envelope {envelope_id} within "
                                   f"{seconds}s; acknowledged: {sorted(self.acks)}")
            await asyncio.sleep(0.01)
        return self.acks[envelope_id]

    async def wait_connected(self, connections: int = 1, seconds: float = 5.0) -> None:
        """Until `connections` WebSockets have been accepted in all (and one is open)."""
        deadline = time.monotonic() + seconds
        while self.connections < connections or not self._sockets:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.connections} of {connections} Socket Mode "
                                   f"connections within {seconds}s")
            await asyncio.sleep(0.01)

    def auth_test(self) -> JSON:
        return {"ok": True, "url": f"https://{TEAM_DOMAIN}.slack.com/", "team": "Acme",
                "user": "copilot", "team_id": self.team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    def _push(self, kind: str, payload: JSON, *, accepts_response_payload: bool,
              **extra: Any) -> str:
        envelope_id = str(uuid.uuid4())
        envelope = {"envelope_id": envelope_id, "type": kind, "payload": payload,
                    "accepts_response_payload": accepts_response_payload, **extra}
        with self._lock:
            self.sent.append(envelope)
        self._enqueue(envelope)
        return envelope_id

    def _enqueue(self, message: JSON) -> None:
        assert self._loop is not None, "FakeSocketSlack is not started"
        self._loop.call_soon_threadsafe(self._outbox.put_nowait, json.dumps(message))

    # --- serving (the server thread) -----------------------------------------------------

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        with self._lock:
            self.api_calls.append(method)
        form = await request.post() if request.can_read_body else {}
        auth = request.headers.get("Authorization", "")
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else form.get("token")
        if method == "apps.connections.open":
            return web.json_response(self._connections_open(request.method, token))
        if method == "auth.test":
            if not token:
                return web.json_response({"ok": False, "error": "not_authed"})
            if token != self.bot_token:
                return web.json_response({"ok": False, "error": "invalid_auth"})
            return web.json_response(self.auth_test())
        return web.json_response({"ok": False, "error": "unknown_method",
                                  "req_method": method}, status=404)

    def _connections_open(self, http_method: str, token: Any) -> JSON:
        if http_method != "POST":
            return {"ok": False, "error": "insecure_request"}
        if not token:
            return {"ok": False, "error": "not_authed"}
        if token == self.bot_token:
            return {"ok": False, "error": "not_allowed_token_type"}
        if token != self.app_token:
            return {"ok": False, "error": "invalid_auth"}
        ticket = secrets.token_hex(16)
        with self._lock:
            self._tickets.add(ticket)
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}/link/?ticket={ticket}"
                                   f"&app_id={self.app_id}"}

    async def _link(self, request: web.Request) -> web.StreamResponse:
        ticket = request.query.get("ticket", "")
        with self._lock:
            valid = ticket in self._tickets
            self._tickets.discard(ticket)
        if not valid or self.refuse_websocket:
            return web.Response(status=403 if self.refuse_websocket else 401)
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        self._sockets.add(ws)
        with self._lock:
            self.connections += 1
        await ws.send_json({
            "type": "hello", "num_connections": len(self._sockets),
            "debug_info": {"host": "applink-fake", "build_number": 1,
                           "approximate_connection_time": 18060},
            "connection_info": {"app_id": self.app_id}})
        sender = asyncio.create_task(self._send_from_outbox(ws))
        try:
            async for frame in ws:
                if frame.type == WSMsgType.TEXT:
                    self._receive(json.loads(frame.data))
        finally:
            sender.cancel()
            await asyncio.gather(sender, return_exceptions=True)
            self._sockets.discard(ws)
        return ws

    async def _send_from_outbox(self, ws: web.WebSocketResponse) -> None:
        while True:
            text = await self._outbox.get()
            try:
                await ws.send_str(text)
            except ConnectionError:
                self._outbox.put_nowait(text)  # another (or the next) connection takes it
                return

    def _receive(self, message: JSON) -> None:
        with self._lock:
            self.received.append(message)
            envelope_id = message.get("envelope_id")
            if envelope_id:
                self.acks[envelope_id] = message
                self.ack_times[envelope_id] = time.monotonic()

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeSocketSlack:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self._port = sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(sock, started),
                                        name="fake-slack-socket", daemon=True)
        self._thread.start()
        if not started.wait(5):
            raise RuntimeError("the fake Socket Mode server did not start")
        return self

    def _serve(self, sock: socket.socket, started: threading.Event) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        app = web.Application()
        app.router.add_post("/api/{method}", self._api)
        app.router.add_get("/api/{method}", self._api)
        app.router.add_get("/link/", self._link)
        self._runner = web.AppRunner(app, access_log=None)
        self._loop.run_until_complete(self._runner.setup())
        self._loop.run_until_complete(web.SockSite(self._runner, sock).start())
        started.set()
        try:
            self._loop.run_forever()
        finally:
            self._loop.run_until_complete(self._runner.cleanup())
            self._loop.close()

    async def _close_sockets(self) -> None:
        for ws in list(self._sockets):
            await ws.close(code=1001, message=b"going away")

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(self._close_sockets(), self._loop).result(5)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeSocketSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_socket_slack(app_token: str = "xapp-test",
                         bot_token: str = "xoxb-test") -> Iterator[FakeSocketSlack]:
    with FakeSocketSlack(app_token=app_token, bot_token=bot_token) as fake:
        yield fake
