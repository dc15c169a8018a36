"""A fake Slack on loopback for tests: the Web API that apps call, the upload and response URLs
it hands out, and the signed requests Slack sends to apps — so slack_sdk's `AsyncWebClient` and
slack-bolt's `AsyncApp` run against it unchanged:
`AsyncWebClient(token=fake.bot_token, base_url=fake.base_url + "/api/")`.

Written from Slack's API reference, independently of slack_sdk and slack-bolt. Where Slack is
strict the fake is too: the token (missing → `not_authed`, wrong → `invalid_auth`, both HTTP
200), unknown methods (HTTP 404 `unknown_method`), unknown channels, users and messages, a bot
posting to a public channel it has not joined (`not_in_channel`, unless the channel allows it as
`chat:write.public` would), private channels the bot is not in (`channel_not_found`), updating
someone else's message (`cant_update_message`), `trigger_id`s it never issued or already used.

Every Web API call is recorded in `calls` (method, params merged from the query string and a
form or JSON body, `blocks`/`attachments`/`files`/`view` form values JSON-decoded; the token is
taken out). State is plain dataclasses to seed and read: `channels`, `users`, `messages` (per
channel id, oldest first, thread replies included), `files`, `ephemerals`, `views`, and
`responses` (POSTs to response URLs). `rate_limit_next`, `fail_next` and `lose_next_answer`
script failures.

Differences from Slack worth knowing: file shares after `files.completeUploadExternal` appear at
once (Slack shares asynchronously, so its response carries no `shares`: neither does this one);
`conversations.join`, `invite` and `setTopic` post Slack's system messages (`channel_join`,
`channel_topic`) into the history, as Slack does.
"""

from __future__ import annotations

import base64
import email.parser
import email.policy
import hashlib
import hmac
import json
import mimetypes
import re
import secrets
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

JSON = dict[str, Any]
Answer = tuple[int, dict[str, str], JSON | str]  # status, extra headers, JSON (or text) body

TEAM_ID = "T0001"
TEAM_DOMAIN = "acme"
APP_ID = "A0APP"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
VERIFICATION_TOKEN = "Jhj5dZrVaK7ZwHHjRyZWjbDl"  # the legacy token field in Slack's payloads
_JSON_FIELDS = frozenset({"blocks", "attachments", "files", "view", "metadata", "user_auth_blocks"})
_FIRST_TS_US = 1_700_000_000_000_100  # the first ts handed out: "1700000000.000100"
_SCOPES = {  # the scope a `missing_scope` error names as `needed`
    "chat.postMessage": "chat:write", "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write", "conversations.info": "channels:read",
    "conversations.list": "channels:read",
    "conversations.join": "channels:join", "conversations.create": "channels:manage",
    "conversations.invite": "channels:manage", "conversations.setTopic": "channels:manage",
    "conversations.history": "channels:history", "conversations.replies": "channels:history",
    "reactions.add": "reactions:write", "users.info": "users:read",
    "users.lookupByEmail": "users:read.email", "files.getUploadURLExternal": "files:write",
    "files.completeUploadExternal": "files:write",
}
DEFAULT_SCOPES = ("app_mentions:read", "channels:history", "channels:join", "channels:read",
                  "chat:write", "commands", "files:write", "reactions:write", "users:read")


class SlackError(Exception):
    """An `{"ok": false, "error": ...}` answer; `fields` go into the body beside `error`."""

    def __init__(self, error: str, **fields: Any) -> None:
        super().__init__(error)
        self.error = error
        self.fields = fields


# --- state ---------------------------------------------------------------------------------


@dataclass
class Call:
    """One Web API call as the fake received it; `status`/`response` are what it answered."""

    method: str
    params: JSON
    headers: dict[str, str]  # lower-cased names
    http_method: str = "POST"
    status: int = 0
    response: JSON = field(default_factory=dict)


@dataclass
class User:
    id: str
    name: str
    email: str | None = None
    real_name: str = ""
    is_bot: bool = False


@dataclass
class Channel:
    """A conversation. `post_without_join` lets the bot post without joining (as the
    `chat:write.public` scope does); otherwise posting needs `is_member`."""

    id: str
    name: str
    topic: str = ""
    purpose: str = ""
    members: list[str] = field(default_factory=list)
    is_member: bool = True
    is_private: bool = False
    is_im: bool = False
    is_archived: bool = False
    post_without_join: bool = False
    creator: str = ""
    created: int = 1_700_000_000


@dataclass
class Message:
    ts: str
    text: str
    user: str
    thread_ts: str | None = None
    blocks: list[Any] | None = None
    attachments: list[Any] | None = None
    files: list[JSON] | None = None
    subtype: str | None = None
    bot_id: str | None = None
    edited: JSON | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)  # name → user ids
    extra: JSON = field(default_factory=dict)  # further fields, e.g. `topic`, `inviter`
    # Message metadata (`event_type`, `event_payload`): history shows it only when asked
    # (`include_all_metadata`), as Slack's does.
    metadata: JSON | None = None


@dataclass
class UploadedFile:
    """A file from the files_upload_v2 flow; `data` is None until its upload URL got the bytes."""

    id: str
    filename: str
    length: int
    upload_key: str
    title: str = ""
    alt_txt: str | None = None
    data: bytes | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Ephemeral:
    channel: str
    user: str
    message: Message


@dataclass(frozen=True)
class ResponsePost:
    """A POST to a response URL (`respond()` in Bolt): `body` is the parsed JSON."""

    url: str
    body: Any
    headers: dict[str, str]


# --- the fake ------------------------------------------------------------------------------


class FakeSlack:
    """The fake's state and request handling; use `running_slack`, or `start()`/`stop()`."""

    def __init__(self, *, bot_token: str = "xoxb-test", team_id: str = TEAM_ID,
                 team_domain: str = TEAM_DOMAIN, team_name: str = "Acme",
                 bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID, bot_name: str = "copilot",
                 app_id: str = APP_ID, scopes: Sequence[str] = DEFAULT_SCOPES) -> None:
        self.bot_token, self.team_id, self.team_domain = bot_token, team_id, team_domain
        # OAuth installs: client id → secret, code → (team id, name, user), token → team.
        self.oauth_apps: dict[str, str] = {}
        self.oauth_codes: dict[str, tuple[str, str, str]] = {}
        self.installed_tokens: dict[str, tuple[str, str]] = {}
        self._request = threading.local()
        self.team_name, self.bot_user_id, self.bot_id = team_name, bot_user_id, bot_id
        self.bot_name, self.app_id, self.scopes = bot_name, app_id, tuple(scopes)
        self.calls: list[Call] = []
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.messages: dict[str, list[Message]] = {}
        self.files: dict[str, UploadedFile] = {}
        self.ephemerals: list[Ephemeral] = []
        self.views: list[JSON] = []
        self.responses: list[ResponsePost] = []
        self._lock = threading.RLock()
        self._clock_us = _FIRST_TS_US - 100
        self._counter = 0
        self._rate_limits: dict[str, list[int]] = {}  # method → Retry-After of each next call
        self._failures: dict[str, list[SlackError]] = {}
        self._lost: set[str] = set()  # methods whose next answer is lost (`lose_next_answer`)
        self._triggers: dict[str, bool] = {}  # trigger_id → used
        self._response_ids: set[str] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.add_user(bot_name, id=bot_user_id, real_name=bot_name, is_bot=True)

    @property
    def base_url(self) -> str:
        """`http://127.0.0.1:PORT`; the Web API is under `/api/`."""
        assert self._server is not None, "FakeSlack is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    # --- seeding and reading -------------------------------------------------------------

    def add_channel(self, name: str, *, id: str | None = None, topic: str = "",
                    purpose: str = "", members: Sequence[str] = (), is_member: bool = True,
                    is_private: bool = False, post_without_join: bool = False,
                    is_archived: bool = False, creator: str | None = None) -> Channel:
        """Seed a channel; with `is_member` (the default) the bot is in it; `creator`: who
        made it (default: the bot)."""
        with self._lock:
            channel = Channel(id or self._new_id("C"), name, topic, purpose, list(members),
                              is_member, is_private, is_archived=is_archived,
                              post_without_join=post_without_join,
                              creator=self.bot_user_id if creator is None else creator)
            if is_member and self.bot_user_id not in channel.members:
                channel.members.append(self.bot_user_id)
            self.channels[channel.id] = channel
            self.messages[channel.id] = []
            return channel

    def add_user(self, name: str, *, id: str | None = None, email: str | None = None,
                 real_name: str = "", is_bot: bool = False) -> User:
        with self._lock:
            user = User(id or self._new_id("U"), name, email, real_name or name, is_bot)
            self.users[user.id] = user
            return user

    def add_message(self, channel: str, text: str, *, user: str, ts: str | None = None,
                    thread_ts: str | None = None, blocks: list[Any] | None = None) -> Message:
        """Seed a message (by channel id or name); without `ts` it gets the next one."""
        with self._lock:
            ch = self.channel(channel)
            if ts is not None:
                self._clock_us = max(self._clock_us, _ts_us(ts))
            msg = Message(ts or self._next_ts(), text, user, thread_ts, blocks)
            self.messages[ch.id].append(msg)
            self.messages[ch.id].sort(key=lambda m: _ts_us(m.ts))
            return msg

    def channel(self, key: str) -> Channel:
        """A channel by id or name (`#name` too); KeyError if none."""
        with self._lock:
            found = self._lookup_channel(key)
            if found is None:
                raise KeyError(key)
            return found

    def message(self, channel: str, ts: str) -> Message:
        with self._lock:
            found = self._find_message(self.channel(channel).id, ts)
            if found is None:
                raise KeyError(ts)
            return found

    def calls_to(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def copilot_env(self) -> dict[str, str]:
        """The settings that point a `sre-copilot serve` at this fake, a channel per incident."""
        return {"SLACK_BOT_TOKEN": self.bot_token, "SLACK_SIGNING_SECRET": "secret",
                "SLACK_API_URL": self.base_url + "/api/",
                "SRE_COPILOT_SLACK_CREATE_CHANNELS": "true"}

    def incident_cards(self) -> list[Message]:
        """Incident cards: the first message with blocks in each incident's channel (status
        notices follow it there as the incident moves)."""
        return [msgs[0] for c in list(self.channels.values()) if c.name.startswith("inc-")
                for msgs in [[m for m in self.messages.get(c.id, [])
                              if not m.thread_ts and m.blocks]] if msgs]

    # --- scripting -----------------------------------------------------------------------

    def rate_limit_next(self, method: str, n: int = 1, retry_after: int = 1) -> None:
        """Answer the next `n` calls of `method` with HTTP 429, `Retry-After: retry_after` and
        `{"ok": false, "error": "ratelimited"}`."""
        with self._lock:
            self._rate_limits.setdefault(method, []).extend([retry_after] * n)

    def fail_next(self, method: str, error: str = "channel_not_found", *,
                  needed: str | None = None, provided: str | None = None,
                  **fields: Any) -> None:
        """Answer the next authorised call of `method` with `error` (HTTP 200, as Slack does);
        `missing_scope` carries `needed` (the method's scope unless given) and `provided`."""
        if error == "missing_scope":
            fields["needed"] = needed or _SCOPES.get(method, "chat:write")
            fields["provided"] = provided if provided is not None else ",".join(self.scopes)
        with self._lock:
            self._failures.setdefault(method, []).append(SlackError(error, **fields))

    def lose_next_answer(self, method: str) -> None:
        """Carry out the next authorised call of `method`, then answer HTTP 503 as if the
        answer was lost on the way (a timeout): the caller cannot tell it was done."""
        with self._lock:
            self._lost.add(method)

    def clear_failures(self) -> None:
        """Drop the scripted failures not yet used: Slack is back."""
        with self._lock:
            self._failures.clear()

    def new_response_url(self) -> str:
        """A response URL on this fake; POSTs to it land in `responses`."""
        with self._lock:
            key = f"{self.team_id}/{self._next_number()}/{secrets.token_hex(8)}"
            self._response_ids.add(key)
            return f"{self.base_url}/response/{key}"

    def new_trigger_id(self) -> str:
        """A trigger_id `views.open` accepts once."""
        with self._lock:
            trigger = f"{int(time.time())}.{self._next_number()}.{secrets.token_hex(16)}"
            self._triggers[trigger] = False
            return trigger

    # --- payloads from this workspace (module functions below do the shapes) -------------

    def event_callback(self, event: JSON, *, event_id: str | None = None) -> bytes:
        return event_callback(event, event_id=event_id, team_id=self.team_id,
                              api_app_id=self.app_id, bot_user_id=self.bot_user_id)

    def slash_command(self, command: str, text: str, channel_id: str, user_id: str) -> bytes:
        return slash_command(command, text, channel_id, user_id,
                             response_url=self.new_response_url(),
                             trigger_id=self.new_trigger_id(),
                             channel_name=self._channel_name(channel_id),
                             user_name=self._user_name(user_id), team_id=self.team_id,
                             team_domain=self.team_domain, api_app_id=self.app_id)

    def block_actions(self, action_id: str, value: str, user: str, channel: str,
                      message_ts: str, *, block_id: str = "actions",
                      message_text: str = "") -> bytes:
        return block_actions(action_id, value, user, channel, message_ts, block_id=block_id,
                             message_text=message_text, message_user=self.bot_user_id,
                             response_url=self.new_response_url(),
                             trigger_id=self.new_trigger_id(),
                             channel_name=self._channel_name(channel),
                             user_name=self._user_name(user), team_id=self.team_id,
                             team_domain=self.team_domain, api_app_id=self.app_id)

    def message_action(self, callback_id: str, channel: str, message_ts: str, text: str,
                       user: str, *, message_user: str | None = None) -> bytes:
        return message_action(callback_id, channel, message_ts, text, user,
                              message_user=message_user, response_url=self.new_response_url(),
                              trigger_id=self.new_trigger_id(),
                              channel_name=self._channel_name(channel),
                              user_name=self._user_name(user), team_id=self.team_id,
                              team_domain=self.team_domain, api_app_id=self.app_id)

    # --- lifecycle -----------------------------------------------------------------------

    def start(self) -> FakeSlack:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-slack", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving (handler threads) -------------------------------------------------------

    def answer(self, http_method: str, target: str, headers: dict[str, str],
               raw: bytes) -> Answer:
        path = urlsplit(target).path
        with self._lock:
            if path.startswith("/api/"):
                return self._api(http_method, target, headers, raw)
            if path.startswith("/upload/v1/") and http_method == "POST":
                return self._upload(path.removeprefix("/upload/v1/"), raw)
            if path.startswith("/response/") and http_method == "POST":
                return self._response(target, path.removeprefix("/response/"), headers, raw)
            return 404, {}, {"ok": False, "error": "not_found"}

    def _api(self, http_method: str, target: str, headers: dict[str, str], raw: bytes) -> Answer:
        method = urlsplit(target).path.removeprefix("/api/")
        params = _parse_params(target, headers.get("content-type", ""), raw)
        token = params.pop("token", None)
        call = Call(method, params, headers, http_method)
        self.calls.append(call)
        status, extra, body = self._dispatch(method, params, headers, token)
        call.status, call.response = status, body
        return status, extra, body

    def _dispatch(self, method: str, params: JSON, headers: dict[str, str],
                  token: Any) -> tuple[int, dict[str, str], JSON]:
        waits = self._rate_limits.get(method)
        if waits:
            return 429, {"Retry-After": str(waits.pop(0))}, {"ok": False, "error": "ratelimited"}
        if method == "oauth.v2.access":  # app credentials, not a token
            return self._oauth_v2_access(params, headers)
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            return 404, {}, {"ok": False, "error": "unknown_method", "req_method": method}
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        if not token:
            return 200, {}, {"ok": False, "error": "not_authed"}
        if token != self.bot_token and token not in self.installed_tokens:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        self._request.token = token
        try:
            failures = self._failures.get(method)
            if failures:
                raise failures.pop(0)
            result: JSON = handler(params)
        except SlackError as exc:
            return 200, {}, {"ok": False, "error": exc.error, **exc.fields}
        if method in self._lost:
            self._lost.discard(method)
            return 503, {}, {"ok": False, "error": "service_unavailable"}
        return 200, {}, {"ok": True, **result}

    def _upload(self, key: str, raw: bytes) -> Answer:
        file = next((f for f in self.files.values() if f.upload_key == key), None)
        if file is None or file.completed:
            return 404, {}, "Not Found"
        file.data = raw
        return 200, {}, f"OK - {len(raw)}"

    def _response(self, target: str, key: str, headers: dict[str, str], raw: bytes) -> Answer:
        if key not in self._response_ids:
            return 404, {}, {"ok": False, "error": "expired_url"}
        try:
            body = json.loads(raw or b"null")
        except ValueError:
            return 400, {}, {"ok": False, "error": "invalid_payload"}
        self.responses.append(ResponsePost(f"{self.base_url}{target}", body, headers))
        return 200, {}, {"ok": True}

    # --- Web API methods -----------------------------------------------------------------

    def _m_auth_test(self, p: JSON) -> JSON:
        team_id, team_name = self.installed_tokens.get(
            getattr(self._request, "token", None) or "", (self.team_id, self.team_name))
        return {"url": f"https://{self.team_domain}.slack.com/", "team": team_name,
                "user": self.bot_name, "team_id": team_id, "user_id": self.bot_user_id,
                "bot_id": self.bot_id, "is_enterprise_install": False}

    # --- OAuth v2 (the install flow) --------------------------------------------------------

    def add_oauth_app(self, client_id: str, client_secret: str) -> None:
        self.oauth_apps[client_id] = client_secret

    def new_oauth_code(self, team_id: str, team_name: str, *, user: str = "U0ADMIN") -> str:
        """The `code` Slack appends to the redirect URL once a person approved the install."""
        code = f"code-{secrets.token_hex(6)}"
        self.oauth_codes[code] = (team_id, team_name, user)
        return code

    def _oauth_v2_access(self, p: JSON, headers: dict[str, str]
                         ) -> tuple[int, dict[str, str], JSON]:
        client_id, secret = p.get("client_id"), p.get("client_secret")
        auth = headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        if client_id not in self.oauth_apps or self.oauth_apps[client_id] != secret:
            return 200, {}, {"ok": False, "error": "invalid_client_id"}
        found = self.oauth_codes.pop(str(p.get("code")), None)
        if found is None:
            return 200, {}, {"ok": False, "error": "invalid_code"}
        team_id, team_name, user = found
        token = f"xoxb-{team_id}-{secrets.token_hex(8)}"
        self.installed_tokens[token] = (team_id, team_name)
        return 200, {}, {
            "ok": True, "access_token": token, "token_type": "bot",
            "scope": ",".join(self.scopes), "bot_user_id": self.bot_user_id,
            "app_id": self.app_id, "team": {"id": team_id, "name": team_name},
            "enterprise": None, "is_enterprise_install": False,
            "authed_user": {"id": user, "scope": "", "access_token": None,
                            "token_type": None}}

    def _m_chat_postMessage(self, p: JSON) -> JSON:
        ch = self._postable(p.get("channel"))
        msg = self._bot_message(p)
        msg.thread_ts = p.get("thread_ts") or None
        if p.get("metadata") is not None:
            meta = p["metadata"]
            if not isinstance(meta, dict) or not meta.get("event_type") \
                    or not isinstance(meta.get("event_payload"), dict):
                raise SlackError("invalid_metadata_format")
            msg.metadata = meta
        if msg.thread_ts and _flag(p.get("reply_broadcast")):
            msg.subtype = "thread_broadcast"
        self.messages[ch.id].append(msg)
        return {"channel": ch.id, "ts": msg.ts, "message": self._message_json(ch.id, msg)}

    def _m_chat_update(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        msg = self._find_message(ch.id, p.get("ts"))
        if msg is None:
            raise SlackError("message_not_found")
        if msg.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        for name in ("text", "blocks", "attachments"):
            if name in p:
                setattr(msg, name, p[name])
        msg.edited = {"user": self.bot_user_id, "ts": self._next_ts()}
        return {"channel": ch.id, "ts": msg.ts, "text": msg.text,
                "message": self._message_json(ch.id, msg)}

    def _m_chat_postEphemeral(self, p: JSON) -> JSON:
        ch = self._postable(p.get("channel"))
        user = p.get("user")
        if user not in self.users:
            raise SlackError("user_not_found")
        if user not in ch.members:
            raise SlackError("user_not_in_channel")
        msg = self._bot_message(p)
        msg.thread_ts = p.get("thread_ts") or None
        self.ephemerals.append(Ephemeral(ch.id, user, msg))
        return {"message_ts": msg.ts}

    def _m_chat_getPermalink(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        msg = self._find_message(ch.id, p.get("message_ts"))
        if msg is None:
            raise SlackError("message_not_found")
        link = f"https://{self.team_domain}.slack.com/archives/{ch.id}/p{msg.ts.replace('.', '')}"
        if msg.thread_ts and msg.thread_ts != msg.ts:
            link += f"?thread_ts={msg.thread_ts}&cid={ch.id}"
        return {"channel": ch.id, "permalink": link}

    def _m_conversations_list(self, p: JSON) -> JSON:
        """Channels of the asked types (default public), a page at a time: `limit` (at most
        1,000) and the opaque `cursor` of the previous page's `next_cursor`."""
        types = {t.strip() for t in str(p.get("types") or "public_channel").split(",")}
        limit = min(int(p.get("limit") or 100), 1000)
        start = int(str(p.get("cursor") or "0") or 0)
        found = [ch for ch in self.channels.values() if not ch.is_im
                 and ("private_channel" if ch.is_private else "public_channel") in types
                 and (ch.is_member or not ch.is_private)
                 and not (ch.is_archived and _flag(p.get("exclude_archived")))]
        page = found[start:start + limit]
        more = start + limit < len(found)
        return {"channels": [self._channel_json(ch) for ch in page],
                "response_metadata": {"next_cursor": str(start + limit) if more else ""}}

    def _m_conversations_info(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        return {"channel": self._channel_json(ch, _flag(p.get("include_num_members")))}

    def _m_conversations_join(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        if ch.is_private or ch.is_im:
            raise SlackError("method_not_supported_for_channel_type")
        if ch.is_archived:
            raise SlackError("is_archived")
        if ch.is_member:
            return {"channel": self._channel_json(ch), "warning": "already_in_channel",
                    "response_metadata": {"warnings": ["already_in_channel"]}}
        self._join(ch, self.bot_user_id)
        return {"channel": self._channel_json(ch)}

    def _m_conversations_create(self, p: JSON) -> JSON:
        name = str(p.get("name") or "")
        if not name:
            raise SlackError("invalid_name_required")
        if len(name) > 80:
            raise SlackError("invalid_name_maxlength")
        if not re.fullmatch(r"[a-z0-9_\-]+", name):
            raise SlackError("invalid_name_specials")
        if self._lookup_channel(name) is not None:
            raise SlackError("name_taken")
        ch = self.add_channel(name, is_private=_flag(p.get("is_private")))
        ch.created = int(time.time())
        return {"channel": self._channel_json(ch)}

    def _m_conversations_invite(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        if not ch.is_member:
            raise SlackError("not_in_channel")
        users = [u.strip() for u in str(p.get("users") or "").split(",") if u.strip()]
        if not users:
            raise SlackError("no_user")
        for user in users:
            if user not in self.users:
                raise SlackError("user_not_found")
            if user == self.bot_user_id:
                raise SlackError("cant_invite_self")
            if user in ch.members:
                raise SlackError("already_in_channel")
        for user in users:
            self._join(ch, user, inviter=self.bot_user_id)
        return {"channel": self._channel_json(ch)}

    def _m_conversations_setTopic(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        if not ch.is_member:
            raise SlackError("not_in_channel")
        topic = str(p.get("topic") or "")
        if len(topic) > 250:
            raise SlackError("too_long")
        ch.topic = topic
        self.messages[ch.id].append(Message(
            self._next_ts(), f"set the channel topic: {topic}", self.bot_user_id,
            subtype="channel_topic", extra={"topic": topic}))
        return {"channel": self._channel_json(ch)}

    def _m_conversations_history(self, p: JSON) -> JSON:
        ch = self._readable(p.get("channel"))
        rows = [m for m in self.messages[ch.id] if m.thread_ts in (None, m.ts)
                or m.subtype == "thread_broadcast"]
        rows = _in_range(rows, p)[::-1]  # newest first
        if p.get("cursor"):
            cursor = _ts_us(base64.b64decode(str(p["cursor"])).decode().removeprefix("next_ts:"))
            rows = [m for m in rows if _ts_us(m.ts) <= cursor]
        return self._page(ch.id, rows, p, default_limit=100, max_limit=999) | {
            "pin_count": 0, "channel_actions_ts": None, "channel_actions_count": 0}

    def _m_conversations_replies(self, p: JSON) -> JSON:
        ch = self._readable(p.get("channel"))
        parent = self._find_message(ch.id, p.get("ts"))
        if parent is None:
            raise SlackError("thread_not_found")
        replies = [m for m in self.messages[ch.id] if m.thread_ts == parent.ts and m is not parent]
        rows = [parent, *_in_range(replies, p)]
        if p.get("cursor"):
            cursor = _ts_us(base64.b64decode(str(p["cursor"])).decode().removeprefix("next_ts:"))
            rows = [parent, *(m for m in rows[1:] if _ts_us(m.ts) >= cursor)]
        return self._page(ch.id, rows, p, default_limit=1000, max_limit=1000)

    def _m_reactions_add(self, p: JSON) -> JSON:
        ch = self._visible(p.get("channel"))
        msg = self._find_message(ch.id, p.get("timestamp"))
        if msg is None:
            raise SlackError("message_not_found")
        name = str(p.get("name") or "").strip(":")
        if not re.fullmatch(r"[a-z0-9_+\-']+(::skin-tone-[2-6])?", name):
            raise SlackError("invalid_name")
        users = msg.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _m_users_info(self, p: JSON) -> JSON:
        user = self.users.get(str(p.get("user")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": self._user_json(user)}

    def _m_users_lookupByEmail(self, p: JSON) -> JSON:
        email = str(p.get("email") or "").lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": self._user_json(user)}

    def _m_views_open(self, p: JSON) -> JSON:
        trigger = p.get("trigger_id")
        if trigger not in self._triggers:
            raise SlackError("invalid_trigger_id")
        if self._triggers[trigger]:
            raise SlackError("exchanged_trigger_id")
        view = p.get("view")
        if not isinstance(view, dict) or view.get("type") != "modal" or "title" not in view:
            raise SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] view must be a modal with a title"]})
        self._triggers[trigger] = True
        view_id = self._new_id("V")
        full = {"id": view_id, "team_id": self.team_id, "type": "modal",
                "blocks": view.get("blocks", []), "private_metadata":
                view.get("private_metadata", ""), "callback_id": view.get("callback_id", ""),
                "state": {"values": {}}, "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
                "title": view["title"], "clear_on_close": False, "notify_on_close": False,
                "close": view.get("close"), "submit": view.get("submit"),
                "previous_view_id": None, "root_view_id": view_id, "app_id": self.app_id,
                "external_id": view.get("external_id", ""), "app_installed_team_id":
                self.team_id, "bot_id": self.bot_id}
        self.views.append(full)
        return {"view": full}

    def _m_files_getUploadURLExternal(self, p: JSON) -> JSON:
        filename, length = p.get("filename"), str(p.get("length") or "")
        if not filename or not length.isdigit() or int(length) < 1:
            raise SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] filename and a positive length are required"]})
        file = UploadedFile(self._new_id("F"), str(filename), int(length),
                            secrets.token_urlsafe(24), str(filename), p.get("alt_txt"))
        self.files[file.id] = file
        return {"upload_url": f"{self.base_url}/upload/v1/{file.upload_key}",
                "file_id": file.id}

    def _m_files_completeUploadExternal(self, p: JSON) -> JSON:
        entries = p.get("files")
        if not isinstance(entries, list) or not entries:
            raise SlackError("invalid_arguments", response_metadata={
                "messages": ["[ERROR] files must be a non-empty JSON array"]})
        files = [self.files.get(str(e.get("id"))) if isinstance(e, dict) else None
                 for e in entries]
        ready = [f for f in files if f is not None and f.data is not None and not f.completed]
        if len(ready) != len(entries):
            raise SlackError("file_not_found")
        targets = [c for c in [p.get("channel_id"), *str(p.get("channels") or "").split(",")] if c]
        channels = [self._postable(c) for c in targets]
        for file, entry in zip(ready, entries, strict=True):
            file.completed, file.title = True, entry.get("title") or file.filename
        for ch in channels:
            for file in ready:
                file.channels.append(ch.id)
            self.messages[ch.id].append(Message(
                self._next_ts(), str(p.get("initial_comment") or ""), self.bot_user_id,
                thread_ts=p.get("thread_ts") or None,
                files=[self._file_json(f) for f in ready]))
        return {"files": [self._file_json(f) for f in ready]}

    # --- helpers -------------------------------------------------------------------------

    def _lookup_channel(self, key: Any) -> Channel | None:
        key = str(key or "")
        if key in self.channels:
            return self.channels[key]
        name = key.removeprefix("#")
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def _visible(self, key: Any) -> Channel:
        """A channel by id that the bot can see (private ones only as a member)."""
        ch = self.channels.get(str(key or ""))
        if ch is None or ((ch.is_private or ch.is_im) and not ch.is_member):
            raise SlackError("channel_not_found")
        return ch

    def _readable(self, key: Any) -> Channel:
        ch = self._visible(key)
        if not ch.is_member:
            raise SlackError("not_in_channel")
        return ch

    def _postable(self, key: Any) -> Channel:
        """chat.postMessage's target: an id, a `#name`, or a user id (opens the DM)."""
        if str(key or "") in self.users:
            return self._im_with(str(key))
        ch = self._lookup_channel(key)
        if ch is None or (ch.is_private and not ch.is_member):
            raise SlackError("channel_not_found")
        if ch.is_archived:
            raise SlackError("is_archived")
        if not ch.is_member and not ch.post_without_join:
            raise SlackError("not_in_channel")
        return ch

    def _im_with(self, user: str) -> Channel:
        for ch in self.channels.values():
            if ch.is_im and ch.members == [self.bot_user_id, user]:
                return ch
        ch = self.add_channel(user, id=self._new_id("D"))
        ch.is_im, ch.members = True, [self.bot_user_id, user]
        return ch

    def _join(self, ch: Channel, user: str, inviter: str | None = None) -> None:
        ch.members.append(user)
        if user == self.bot_user_id:
            ch.is_member = True
        self.messages[ch.id].append(Message(
            self._next_ts(), f"<@{user}> has joined the channel", user, subtype="channel_join",
            extra={"inviter": inviter} if inviter else {}))

    def _bot_message(self, p: JSON) -> Message:
        text, blocks, attachments = p.get("text"), p.get("blocks"), p.get("attachments")
        if not (text or blocks or attachments):
            raise SlackError("no_text")
        if text and len(str(text)) > 40_000:
            raise SlackError("msg_too_long")
        if blocks is not None and (not isinstance(blocks, list) or len(blocks) > 50):
            raise SlackError("invalid_blocks")
        return Message(self._next_ts(), str(text or ""), self.bot_user_id, blocks=blocks,
                       attachments=attachments, bot_id=self.bot_id)

    def _find_message(self, channel_id: str, ts: Any) -> Message | None:
        return next((m for m in self.messages.get(channel_id, []) if m.ts == ts), None)

    def _page(self, channel_id: str, rows: list[Message], p: JSON, *, default_limit: int,
              max_limit: int) -> JSON:
        limit = min(max(int(p.get("limit") or default_limit), 1), max_limit)
        page, rest = rows[:limit], rows[limit:]
        with_metadata = _flag(p.get("include_all_metadata"))
        out: JSON = {"messages": [self._message_json(channel_id, m) | (
            {"metadata": m.metadata} if with_metadata and m.metadata else {}) for m in page],
                     "has_more": bool(rest)}
        if rest:
            cursor = base64.b64encode(f"next_ts:{rest[0].ts}".encode()).decode()
            out["response_metadata"] = {"next_cursor": cursor}
        return out

    def _message_json(self, channel_id: str, msg: Message) -> JSON:
        out: JSON = {"type": "message", "user": msg.user, "text": msg.text, "ts": msg.ts,
                     "team": self.team_id}
        if msg.subtype:
            out["subtype"] = msg.subtype
        out |= msg.extra
        if msg.bot_id:
            out |= {"bot_id": msg.bot_id, "app_id": self.app_id}
        for name in ("blocks", "attachments", "files", "edited"):
            if getattr(msg, name) is not None:
                out[name] = getattr(msg, name)
        if msg.files:
            out |= {"upload": True, "display_as_bot": False}
        if msg.reactions:
            out["reactions"] = [{"name": n, "users": list(u), "count": len(u)}
                                for n, u in msg.reactions.items()]
        rows = self.messages.get(channel_id, [])
        if msg.thread_ts and msg.thread_ts != msg.ts:
            parent = self._find_message(channel_id, msg.thread_ts)
            out |= {"thread_ts": msg.thread_ts,
                    "parent_user_id": parent.user if parent else msg.user}
        else:
            replies = [m for m in rows if m.thread_ts == msg.ts and m is not msg]
            if replies:
                users = list(dict.fromkeys(m.user for m in replies))
                out |= {"thread_ts": msg.ts, "reply_count": len(replies),
                        "reply_users_count": len(users), "latest_reply": replies[-1].ts,
                        "reply_users": users, "is_locked": False, "subscribed": False}
        return out

    def _channel_json(self, ch: Channel, num_members: bool = False) -> JSON:
        if ch.is_im:
            return {"id": ch.id, "created": ch.created, "is_im": True, "is_org_shared": False,
                    "user": ch.members[-1], "is_user_deleted": False, "priority": 0}
        out: JSON = {
            "id": ch.id, "name": ch.name, "is_channel": True, "is_group": False,
            "is_im": False, "is_mpim": False, "is_private": ch.is_private,
            "created": ch.created, "is_archived": ch.is_archived,
            "is_general": ch.name == "general", "unlinked": 0, "name_normalized": ch.name,
            "is_shared": False, "is_org_shared": False, "is_pending_ext_shared": False,
            "pending_shared": [], "context_team_id": self.team_id, "updated": ch.created * 1000,
            "parent_conversation": None, "creator": ch.creator, "is_ext_shared": False,
            "shared_team_ids": [self.team_id], "pending_connected_team_ids": [],
            "is_member": ch.is_member,
            "topic": {"value": ch.topic, "creator": ch.creator if ch.topic else "",
                      "last_set": ch.created if ch.topic else 0},
            "purpose": {"value": ch.purpose, "creator": ch.creator if ch.purpose else "",
                        "last_set": ch.created if ch.purpose else 0},
            "previous_names": [],
        }
        if num_members:
            out["num_members"] = len(ch.members)
        return out

    def _user_json(self, user: User) -> JSON:
        profile: JSON = {"real_name": user.real_name, "real_name_normalized": user.real_name,
                         "display_name": user.name, "display_name_normalized": user.name,
                         "team": self.team_id, "image_48": "https://a.slack-edge.com/48.png"}
        if user.email:
            profile["email"] = user.email
        if user.is_bot:
            profile |= {"bot_id": self.bot_id, "api_app_id": self.app_id}
        return {"id": user.id, "team_id": self.team_id, "name": user.name, "deleted": False,
                "color": "9f69e7", "real_name": user.real_name, "tz": "Etc/UTC",
                "tz_label": "Coordinated Universal Time", "tz_offset": 0, "profile": profile,
                "is_admin": False, "is_owner": False, "is_primary_owner": False,
                "is_restricted": False, "is_ultra_restricted": False, "is_bot": user.is_bot,
                "is_app_user": False, "updated": 1_700_000_000, "is_email_confirmed": True}

    def _file_json(self, f: UploadedFile) -> JSON:
        ext = f.filename.rsplit(".", 1)[-1].lower() if "." in f.filename else "binary"
        private = f"https://files.slack.com/files-pri/{self.team_id}-{f.id}/{f.filename}"
        return {"id": f.id, "created": int(time.time()), "timestamp": int(time.time()),
                "name": f.filename, "title": f.title,
                "mimetype": mimetypes.guess_type(f.filename)[0] or "application/octet-stream",
                "filetype": ext, "pretty_type": ext.upper(), "user": self.bot_user_id,
                "user_team": self.team_id, "editable": False, "size": len(f.data or b""),
                "mode": "hosted", "is_external": False, "external_type": "",
                "is_public": any(not self.channels[c].is_private for c in f.channels),
                "public_url_shared": False, "display_as_bot": False, "username": "",
                "url_private": private, "url_private_download": private.replace(
                    "/files-pri/", "/files-pri/download/"),
                "permalink": f"https://{self.team_domain}.slack.com/files/{self.bot_user_id}/"
                             f"{f.id}/{f.filename}",
                "channels": list(f.channels), "groups": [], "ims": [], "comments_count": 0,
                **({"alt_txt": f.alt_txt} if f.alt_txt else {})}

    def _channel_name(self, channel_id: str) -> str:
        ch = self.channels.get(channel_id)
        return ch.name if ch else "general"

    def _user_name(self, user_id: str) -> str:
        user = self.users.get(user_id)
        return user.name if user else user_id.lower()

    def _next_ts(self) -> str:
        self._clock_us += 100
        return f"{self._clock_us // 1_000_000}.{self._clock_us % 1_000_000:06d}"

    def _next_number(self) -> int:
        self._counter += 1
        return self._counter

    def _new_id(self, prefix: str) -> str:
        n, digits = self._next_number(), ""
        for _ in range(8):
            n, r = divmod(n, 36)
            digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"[r] + digits
        return prefix + digits


@contextmanager
def running_slack(*, bot_token: str = "xoxb-test", team_id: str = TEAM_ID,
                  bot_user_id: str = BOT_USER_ID, bot_id: str = BOT_ID, app_id: str = APP_ID,
                  team_domain: str = TEAM_DOMAIN,
                  scopes: Sequence[str] = DEFAULT_SCOPES) -> Iterator[FakeSlack]:
    """A started FakeSlack on a free loopback port (a daemon thread, so an async test's event
    loop never blocks on it), stopped on exit."""
    fake = FakeSlack(bot_token=bot_token, team_id=team_id, bot_user_id=bot_user_id,
                     bot_id=bot_id, app_id=app_id, team_domain=team_domain, scopes=scopes)
    with fake:
        yield fake


def _handler_for(fake: FakeSlack) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as aiohttp's connection pool expects
        # Headers and body go out as two writes; with Nagle on, the client's delayed ACK adds
        # ~40 ms to every request.
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            raw = self._read_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = fake.answer(self.command, self.path, headers, raw)
            if isinstance(body, str):
                data, kind = body.encode(), "text/plain; charset=utf-8"
            else:
                data, kind = json.dumps(body).encode(), "application/json; charset=utf-8"
            try:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up; nothing to answer

        def _read_body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() != "chunked":
                length = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(length) if length else b""
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline().strip():
                pass  # trailers
            return b"".join(chunks)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: `fake.calls` has the record

    return Handler


# --- request parsing -----------------------------------------------------------------------


def _parse_params(target: str, content_type: str, raw: bytes) -> JSON:
    """Query string and body merged (the body wins): form, JSON or multipart, as Slack takes."""
    params: JSON = dict(parse_qsl(urlsplit(target).query, keep_blank_values=True))
    kind = content_type.split(";")[0].strip().lower()
    if kind == "application/json" and raw:
        body = json.loads(raw)
        params.update(body if isinstance(body, dict) else {})
    elif kind == "application/x-www-form-urlencoded":
        params.update(parse_qsl(raw.decode(), keep_blank_values=True))
    elif kind == "multipart/form-data":
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                params[name] = payload if part.get_filename() else payload.decode()
    for name in _JSON_FIELDS & params.keys():
        if isinstance(params[name], str) and params[name][:1] in ("[", "{"):
            try:
                params[name] = json.loads(params[name])
            except ValueError:
                pass  # Slack answers invalid_blocks & co.; the method checks the type
    return params


def _flag(value: Any) -> bool:
    return value is True or str(value).lower() in ("1", "true")


def _ts_us(ts: str) -> int:
    seconds, _, fraction = str(ts).partition(".")
    return int(seconds) * 1_000_000 + int((fraction + "000000")[:6])


def _in_range(rows: list[Message], p: JSON) -> list[Message]:
    """`oldest`/`latest` bounds, exclusive unless `inclusive`."""
    inclusive = _flag(p.get("inclusive"))
    oldest = _ts_us(p["oldest"]) if p.get("oldest") else None
    latest = _ts_us(p["latest"]) if p.get("latest") else None
    out = []
    for m in rows:
        t = _ts_us(m.ts)
        if oldest is not None and (t < oldest or (t == oldest and not inclusive)):
            continue
        if latest is not None and (t > latest or (t == latest and not inclusive)):
            continue
        out.append(m)
    return out


# --- Slack → app: signing and payloads -----------------------------------------------------


def sign(body: bytes | str, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """The headers Slack signs a request with: `v0=` HMAC-SHA256 of `v0:{ts}:{body}`."""
    ts = int(time.time()) if timestamp is None else timestamp
    raw = body.encode() if isinstance(body, str) else body
    digest = hmac.new(secret.encode(), b"v0:%d:" % ts + raw, hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": str(ts), "X-Slack-Signature": f"v0={digest}"}


def _now_ts() -> str:
    return f"{time.time():.6f}"


def _rich_text(text: str) -> list[JSON]:
    return [{"type": "rich_text", "block_id": secrets.token_hex(2), "elements": [
        {"type": "rich_text_section", "elements": [{"type": "text", "text": text}]}]}]


def event_callback(event: JSON, *, event_id: str | None = None, team_id: str = TEAM_ID,
                   api_app_id: str = APP_ID, bot_user_id: str = BOT_USER_ID,
                   authorizations: list[JSON] | None = None,
                   event_time: int | None = None) -> bytes:
    """The Events API envelope around `event`, as the JSON body Slack POSTs."""
    body = {
        "token": VERIFICATION_TOKEN, "team_id": team_id, "context_team_id": team_id,
        "context_enterprise_id": None, "api_app_id": api_app_id, "event": event,
        "type": "event_callback",
        "event_id": event_id or "Ev" + secrets.token_hex(5).upper(),
        "event_time": int(time.time()) if event_time is None else event_time,
        "authorizations": authorizations if authorizations is not None else [
            {"enterprise_id": None, "team_id": team_id, "user_id": bot_user_id,
             "is_bot": True, "is_enterprise_install": False}],
        "is_ext_shared_channel": False,
        "event_context": "4-" + base64.b64encode(secrets.token_bytes(24)).decode(),
    }
    return json.dumps(body).encode()


def _user_message(kind: str, text: str, channel: str, ts: str, user: str,
                  thread_ts: str | None, team: str) -> JSON:
    event: JSON = {"type": kind, "user": user, "text": text, "ts": ts, "channel": channel,
                   "event_ts": ts, "client_msg_id": str(uuid.uuid4()), "team": team,
                   "blocks": _rich_text(text)}
    if thread_ts:
        event["thread_ts"] = thread_ts
    return event


def app_mention(text: str, channel: str, ts: str, user: str, thread_ts: str | None = None, *,
                team: str = TEAM_ID) -> JSON:
    return _user_message("app_mention", text, channel, ts, user, thread_ts, team)


def message(text: str, channel: str, ts: str, user: str, thread_ts: str | None = None, *,
            channel_type: str = "channel", team: str = TEAM_ID) -> JSON:
    return _user_message("message", text, channel, ts, user, thread_ts, team) | {
        "channel_type": channel_type}


def reaction_added(reaction: str, channel: str, ts: str, user: str, *,
                   item_user: str | None = None) -> JSON:
    event: JSON = {"type": "reaction_added", "user": user, "reaction": reaction,
                   "item": {"type": "message", "channel": channel, "ts": ts},
                   "event_ts": _now_ts()}
    if item_user:
        event["item_user"] = item_user
    return event


def channel_created(id: str, name: str, creator: str) -> JSON:
    return {"type": "channel_created", "event_ts": _now_ts(), "channel": {
        "id": id, "name": name, "name_normalized": name, "created": int(time.time()),
        "creator": creator, "is_channel": True, "is_private": False, "is_shared": False,
        "is_org_shared": False, "context_team_id": TEAM_ID}}


def member_joined_channel(user: str, channel: str, *, channel_type: str = "C",
                          team: str = TEAM_ID, inviter: str | None = None) -> JSON:
    event: JSON = {"type": "member_joined_channel", "user": user, "channel": channel,
                   "channel_type": channel_type, "team": team, "event_ts": _now_ts()}
    if inviter:
        event["inviter"] = inviter
    return event


def url_verification(challenge: str) -> bytes:
    return json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge,
                       "type": "url_verification"}).encode()


def slash_command(command: str, text: str, channel_id: str, user_id: str, *,
                  response_url: str, trigger_id: str | None = None,
                  channel_name: str = "general", user_name: str | None = None,
                  team_id: str = TEAM_ID, team_domain: str = TEAM_DOMAIN,
                  api_app_id: str = APP_ID) -> bytes:
    """The form-encoded body Slack POSTs for a slash command."""
    return urlencode({
        "token": VERIFICATION_TOKEN, "team_id": team_id, "team_domain": team_domain,
        "channel_id": channel_id, "channel_name": channel_name, "user_id": user_id,
        "user_name": user_name or user_id.lower(), "command": command, "text": text,
        "api_app_id": api_app_id, "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": trigger_id or _trigger(),
    }).encode()


def block_actions(action_id: str, value: str, user: str, channel: str, message_ts: str, *,
                  response_url: str, trigger_id: str | None = None, block_id: str = "actions",
                  button_text: str = "Button", message_text: str = "",
                  message_user: str = BOT_USER_ID, channel_name: str = "general",
                  user_name: str | None = None, team_id: str = TEAM_ID,
                  team_domain: str = TEAM_DOMAIN, api_app_id: str = APP_ID) -> bytes:
    """A button click on a message: the `payload=<json>` form body Slack POSTs."""
    name = user_name or user.lower()
    return _payload_form({
        "type": "block_actions",
        "user": {"id": user, "username": name, "name": name, "team_id": team_id},
        "api_app_id": api_app_id, "token": VERIFICATION_TOKEN,
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel,
                      "is_ephemeral": False},
        "trigger_id": trigger_id or _trigger(), "team": {"id": team_id, "domain": team_domain},
        "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": channel, "name": channel_name},
        "message": {"type": "message", "user": message_user, "text": message_text,
                    "ts": message_ts, "team": team_id},
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": block_id, "value": value,
                     "type": "button", "action_ts": _now_ts(),
                     "text": {"type": "plain_text", "text": button_text, "emoji": True}}],
    })


def message_action(callback_id: str, channel: str, message_ts: str, text: str, user: str, *,
                   response_url: str, trigger_id: str | None = None,
                   message_user: str | None = None, channel_name: str = "general",
                   user_name: str | None = None, team_id: str = TEAM_ID,
                   team_domain: str = TEAM_DOMAIN, api_app_id: str = APP_ID) -> bytes:
    """A message shortcut `user` ran on a message (`text`, by `message_user`, default `user`)."""
    name = user_name or user.lower()
    return _payload_form({
        "type": "message_action", "token": VERIFICATION_TOKEN, "action_ts": _now_ts(),
        "team": {"id": team_id, "domain": team_domain},
        "user": {"id": user, "username": name, "name": name, "team_id": team_id},
        "channel": {"id": channel, "name": channel_name}, "is_enterprise_install": False,
        "enterprise": None, "api_app_id": api_app_id, "callback_id": callback_id,
        "trigger_id": trigger_id or _trigger(), "response_url": response_url,
        "message_ts": message_ts,
        "message": {"type": "message", "user": message_user or user, "text": text,
                    "ts": message_ts, "team": team_id, "client_msg_id": str(uuid.uuid4())},
    })


def _payload_form(payload: JSON) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def _trigger() -> str:
    return f"{int(time.time())}.{secrets.randbelow(10**9)}.{secrets.token_hex(16)}"
