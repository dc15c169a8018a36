"""A scripted stand-in for the Anthropic Messages API (non-streaming `POST /v1/messages`) on
loopback, for tests that drive the official `anthropic` SDK unchanged: `running_anthropic(*steps)`
starts it in a thread, and `AsyncAnthropic(base_url=fake.base_url, api_key=fake.api_key)` talks
to it over real HTTP (the SDK uses `httpx2`, which respx cannot intercept).

It acts as the API where the API is strict, so a request the real API would refuse fails here
too: auth (401), the `anthropic-version` header, required fields, user/assistant alternation,
every `tool_use` answered by a `tool_result` in the next user message, `tool_choice` and tool
definitions (400 `invalid_request_error`). Valid requests consume one scripted step each, in
order; steps come from `text`, `reply`, `tool_use`, `error` (and `rate_limited`, `overloaded`,
`server_error`), `delay`, or a callable `fn(request_body) -> step`. Things only a script can get
wrong (a forced tool not used, a tool called under `tool_choice: none`, an exhausted script) are
served anyway and listed in `violations`, so a test can assert on them.

Usage emulates prompt caching: the prompt is tools → system → messages, blocks are cache
breakpoints where they carry `cache_control`, each breakpoint's prefix is written to the cache,
and a later request reads the longest cached prefix ending within 20 blocks before one of its
breakpoints (the API's lookback). Tokens are counted as len(JSON)//4.

What anthropic 2.14 does with the answers (read in `_client.py`, `_base_client.py`,
`_error_classes.py`, `_constants.py`), so the fake's errors behave like the API's:
- Auth: an `api_key` is sent as `Authorization: Bearer <key>`, not `x-api-key`; the fake accepts
  either header. Every request carries `anthropic-version` (2026-10-21 in 2.14).
- Retries (default 2): on 408, 409, 429 and every status >= 500, and on connection errors and
  timeouts; `x-should-retry: true|false` overrides the status. The wait is `retry-after-ms`
  (milliseconds), else `retry-after` (seconds, floats allowed, or an HTTP date), taken as given
  when > 0 and not capped at 60 s; otherwise 0.5 s · 2^n with up to 25 % jitter, at most 8 s.
  A timed-out request that is retried consumes the next step here.
- Exceptions: 400 BadRequestError, 401 AuthenticationError, 429 RateLimitError, 500
  InternalServerError, 529 OverloadedError (a subclass of InternalServerError).
"""

from __future__ import annotations

import hashlib
import json
import math
import secrets
import string
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

JSON = dict[str, Any]
_ID_CHARS = string.ascii_letters + string.digits
_LOOKBACK_BLOCKS = 20  # the API looks for cached prefixes this many blocks before a breakpoint


def _new_id(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice(_ID_CHARS) for _ in range(22))


# --- scripted steps ------------------------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    """An assistant message to serve. A tool_use block without an `id` gets a fresh one each
    time it is served, so one step object can be served twice."""

    content: tuple[JSON, ...]
    stop_reason: str | None = None  # None: "tool_use" if a block is a tool_use, else "end_turn"

    def effective_stop_reason(self) -> str:
        if self.stop_reason is not None:
            return self.stop_reason
        uses_tool = any(b.get("type") == "tool_use" for b in self.content)
        return "tool_use" if uses_tool else "end_turn"


@dataclass(frozen=True)
class ErrorReply:
    """An error response with the API's body shape and headers."""

    status: int
    type: str
    message: str
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` (cut short when the server stops), then serve `step`."""

    seconds: float
    step: Step


Step = Reply | ErrorReply | Delay | Callable[[JSON], "Step"]


def text(value: str) -> Reply:
    """A reply of one text block, stop_reason `end_turn`."""
    return Reply(({"type": "text", "text": value},))


def tool_use(name: str, input: JSON, id: str | None = None) -> Reply:
    """A reply of one tool_use block; combine several with `reply` for parallel tool calls."""
    block: JSON = {"type": "tool_use", "name": name, "input": dict(input)}
    if id is not None:
        block["id"] = id
    return Reply((block,))


def reply(*parts: Reply | JSON | str, stop_reason: str | None = None) -> Reply:
    """One assistant message from several parts: strings become text blocks, dicts are raw
    content blocks, and replies (`text(...)`, `tool_use(...)`) contribute their blocks."""
    blocks: list[JSON] = []
    for part in parts:
        if isinstance(part, str):
            blocks.append({"type": "text", "text": part})
        elif isinstance(part, Reply):
            blocks.extend(part.content)
        else:
            blocks.append(dict(part))
    return Reply(tuple(blocks), stop_reason)


def error(status: int, type: str, message: str, *,
          retry_after: float | None = None, retry_after_ms: int | None = None,
          should_retry: bool | None = None) -> ErrorReply:
    """An error response; the retry headers are the ones the SDK honours (see the docstring)."""
    headers: list[tuple[str, str]] = []
    if retry_after_ms is not None:
        headers.append(("retry-after-ms", str(retry_after_ms)))
    if retry_after is not None:
        headers.append(("retry-after", f"{retry_after:g}"))
    if should_retry is not None:
        headers.append(("x-should-retry", "true" if should_retry else "false"))
    return ErrorReply(status, type, message, tuple(headers))


def rate_limited(retry_after_ms: int = 10) -> ErrorReply:
    """429 `rate_limit_error`; `retry-after` (whole seconds, as the API sends it) is there for
    clients that ignore `retry-after-ms`, which the SDK reads first."""
    return error(429, "rate_limit_error", "Number of request tokens has exceeded your rate limit.",
                 retry_after=math.ceil(retry_after_ms / 1000), retry_after_ms=retry_after_ms)


def overloaded(retry_after_ms: int | None = None) -> ErrorReply:
    """529 `overloaded_error`. The API sends no retry header with it, so by default the SDK
    backs off 0.5 s · 2^n; pass `retry_after_ms` to make a retrying test faster."""
    return error(529, "overloaded_error", "Overloaded", retry_after_ms=retry_after_ms)


def server_error(retry_after_ms: int | None = None) -> ErrorReply:
    """500 `api_error`, which the SDK retries like a 529."""
    return error(500, "api_error", "Internal server error", retry_after_ms=retry_after_ms)


def delay(seconds: float, step: Step) -> Delay:
    """Serve `step` after `seconds`, e.g. to trip a client timeout."""
    return Delay(seconds, step)


# --- request validation --------------------------------------------------------------------


class InvalidRequest(Exception):
    """A body the real API refuses with 400 invalid_request_error; the text is its message."""


def _blocks(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list) or not all(
            isinstance(b, dict) and isinstance(b.get("type"), str) for b in content):
        raise InvalidRequest(f"{where}: Input should be a valid string or a list of content blocks")
    return content


def _validate_tools(body: JSON) -> set[str]:
    tools = body.get("tools", [])
    if not isinstance(tools, list):
        raise InvalidRequest("tools: Input should be a valid list")
    names: set[str] = set()
    for i, tool in enumerate(tools):
        if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
            raise InvalidRequest(f"tools.{i}.name: Field required")
        # Server tools (`{"type": "web_search_20250305", ...}`) have no input_schema.
        if tool.get("type") in (None, "custom") and not isinstance(tool.get("input_schema"), dict):
            raise InvalidRequest(f"tools.{i}.custom.input_schema: Field required")
        if tool["name"] in names:
            raise InvalidRequest("tools: Tool names must be unique.")
        names.add(tool["name"])
    choice = body.get("tool_choice")
    if choice is not None:
        kind = choice.get("type") if isinstance(choice, dict) else None
        if kind not in ("auto", "any", "none", "tool"):
            raise InvalidRequest("tool_choice: Input tag must be one of 'auto', 'any', 'tool', "
                                 "'none'")
        if kind in ("any", "tool") and not names:
            raise InvalidRequest(f"tool_choice: tool_choice.type '{kind}' requires tools")
        if kind == "tool" and choice.get("name") not in names:
            raise InvalidRequest(f"tool_choice: Tool '{choice.get('name')}' not found in tools")
    return names


def _validate_messages(messages: Any) -> None:
    if not isinstance(messages, list):
        raise InvalidRequest("messages: Input should be a valid list")
    if not messages:
        raise InvalidRequest("messages: at least one message is required")
    pending: set[str] = set()  # tool_use ids the next user message must answer
    for i, msg in enumerate(messages):
        role = msg.get("role") if isinstance(msg, dict) else None
        if role not in ("user", "assistant"):
            raise InvalidRequest(f"messages.{i}.role: Input should be 'user' or 'assistant'")
        if i == 0 and role != "user":
            raise InvalidRequest('messages: first message must use the "user" role')
        if i > 0 and messages[i - 1].get("role") == role:
            raise InvalidRequest('messages: roles must alternate between "user" and "assistant", '
                                 f'but found multiple "{role}" roles in a row')
        blocks = _blocks(msg.get("content"), f"messages.{i}.content")
        last = i == len(messages) - 1
        if not blocks and not (last and role == "assistant"):
            raise InvalidRequest(f"messages.{i}: all messages must have non-empty content except "
                                 "for the optional final assistant message")
        for j, b in enumerate(blocks):
            if b["type"] == "text" and not str(b.get("text", "")).strip():
                raise InvalidRequest(f"messages.{i}.content.{j}.text: text content blocks must "
                                     "contain non-whitespace text")
        if role == "user":
            results = [b for b in blocks if b["type"] == "tool_result"]
            answered = {str(b.get("tool_use_id")) for b in results}
            if pending - answered:
                raise InvalidRequest(_unanswered(i - 1, pending - answered))
            if answered - pending:
                raise InvalidRequest(
                    f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                    f"blocks: {', '.join(sorted(answered - pending))}. Each `tool_result` block "
                    "must have a corresponding `tool_use` block in the previous message.")
            if results and any(b["type"] != "tool_result" for b in blocks[:len(results)]):
                raise InvalidRequest(f"messages.{i}.content: `tool_result` blocks must come "
                                     "first in the content, before any other block")
            pending = set()
        else:
            uses = [b for b in blocks if b["type"] == "tool_use"]
            for b in uses:
                if not isinstance(b.get("id"), str) or not isinstance(b.get("input"), dict):
                    raise InvalidRequest(f"messages.{i}.content: tool_use blocks need an `id` "
                                         "and an object `input`")
            pending = {b["id"] for b in uses}
    if pending:
        raise InvalidRequest(_unanswered(len(messages) - 1, pending))


def _unanswered(i: int, ids: set[str]) -> str:
    return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks immediately "
            f"after: {', '.join(sorted(ids))}. Each `tool_use` block must have a corresponding "
            "`tool_result` block in the next message.")


def validate(body: Any) -> None:
    """Raise InvalidRequest where the real API answers 400."""
    if not isinstance(body, dict):
        raise InvalidRequest("body: Input should be a valid dictionary")
    for name in ("model", "max_tokens", "messages"):
        if name not in body:
            raise InvalidRequest(f"{name}: Field required")
    if body.get("stream"):
        raise InvalidRequest("stream: the fake Anthropic server does not support streaming; "
                             "call messages.create without stream=True")
    if not isinstance(body["model"], str):
        raise InvalidRequest("model: Input should be a valid string")
    max_tokens = body["max_tokens"]
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool):
        raise InvalidRequest("max_tokens: Input should be a valid integer")
    if max_tokens < 1:
        raise InvalidRequest("max_tokens: Input should be greater than or equal to 1")
    temperature = body.get("temperature")
    if temperature is not None and not (isinstance(temperature, int | float)
                                        and 0 <= temperature <= 1):
        raise InvalidRequest("temperature: Input should be a number between 0 and 1")
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _blocks(system, "system")
    _validate_tools(body)
    _validate_messages(body["messages"])


# --- prompt caching ------------------------------------------------------------------------


def _prompt_blocks(body: JSON) -> list[tuple[str, JSON]]:
    """The prompt as the cache sees it: (section, block) in tools → system → messages order."""
    out: list[tuple[str, JSON]] = [("tool", t) for t in body.get("tools", [])]
    system = body.get("system")
    if system:
        out += [("system", b) for b in _blocks(system, "system")]
    for msg in body["messages"]:
        out += [(msg["role"], b) for b in _blocks(msg["content"], "content")]
    return out


@dataclass
class _PromptCache:
    """Prefix hashes written at breakpoints; one per server, like an organisation's cache."""

    min_tokens: int = 0
    written: set[str] = field(default_factory=set)

    def usage(self, body: JSON) -> JSON:
        blocks = _prompt_blocks(body)
        # The marker itself is not content: moving a breakpoint keeps the cached prefix valid.
        texts = [json.dumps([section, {k: v for k, v in b.items() if k != "cache_control"}],
                            sort_keys=True) for section, b in blocks]
        hashes, tokens = [], [0]
        digest = hashlib.sha256(body["model"].encode())
        chars = 0
        for t in texts:
            digest.update(t.encode())
            hashes.append(digest.copy().hexdigest())
            chars += len(t)
            tokens.append(chars // 4)  # tokens[k]: the first k blocks
        breakpoints = [i for i, (_, b) in enumerate(blocks)
                       if b.get("cache_control") and tokens[i + 1] >= self.min_tokens]
        total = max(tokens[-1], 1)
        if not breakpoints:
            return _usage(total, 0, 0, one_hour=False)
        last = breakpoints[-1]
        lookup = {k for b in breakpoints for k in range(max(b - _LOOKBACK_BLOCKS + 1, 0), b + 1)}
        hit = max((k for k in lookup if hashes[k] in self.written), default=None)
        read = tokens[hit + 1] if hit is not None else 0
        self.written.update(hashes[b] for b in breakpoints)
        one_hour = blocks[last][1]["cache_control"].get("ttl") == "1h"
        return _usage(total - tokens[last + 1], tokens[last + 1] - read, read, one_hour=one_hour)


def _usage(input_tokens: int, created: int, read: int, *, one_hour: bool) -> JSON:
    return {
        "input_tokens": input_tokens,
        "output_tokens": 0,
        "cache_creation_input_tokens": created,
        "cache_read_input_tokens": read,
        "cache_creation": {"ephemeral_5m_input_tokens": 0 if one_hour else created,
                           "ephemeral_1h_input_tokens": created if one_hour else 0},
        "service_tier": "standard",
    }


# --- the server ----------------------------------------------------------------------------


@dataclass
class RecordedRequest:
    """One request as the fake received it; `status` is what it answered."""

    path: str
    headers: dict[str, str]  # lower-cased names
    body: Any  # parsed JSON, or None when the body was not JSON
    status: int = 0


class FakeAnthropic:
    """The scripted server; use `running_anthropic`, or `start()`/`stop()` yourself."""

    def __init__(self, *steps: Step, api_key: str = "test-key", min_cache_tokens: int = 0) -> None:
        self.api_key = api_key
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._steps: list[Step] = list(steps)
        self._cache = _PromptCache(min_tokens=min_cache_tokens)
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeAnthropic is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def remaining(self) -> int:
        with self._lock:
            return len(self._steps)

    def push(self, *steps: Step) -> None:
        with self._lock:
            self._steps.extend(steps)

    def assert_script_done(self) -> None:
        """Fail unless every step was served and nothing went against the script."""
        problems = list(self.violations)
        if self.remaining:
            problems.append(f"{self.remaining} scripted step(s) never requested")
        assert not problems, "fake anthropic: " + "; ".join(problems)

    def start(self) -> FakeAnthropic:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        # A short poll interval: stop() waits for the serve loop to notice the shutdown.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-anthropic", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # ends pending delays
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeAnthropic:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # Called from handler threads.
    def answer(self, path: str, headers: dict[str, str], raw: bytes,
               method: str) -> tuple[int, JSON, list[tuple[str, str]]]:
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = None
        record = RecordedRequest(path, headers, body)
        with self._lock:
            self.requests.append(record)
        status, payload, extra = self._answer(record, method, raw)
        record.status = status
        return status, payload, extra

    def _answer(self, req: RecordedRequest, method: str,
                raw: bytes) -> tuple[int, JSON, list[tuple[str, str]]]:
        if req.path.split("?")[0] != "/v1/messages" or method != "POST":
            return _error_body(404, "not_found_error", f"Not found: {method} {req.path}")
        key = req.headers.get("x-api-key")
        bearer = req.headers.get("authorization", "")
        if key is None and bearer.startswith("Bearer "):
            key = bearer.removeprefix("Bearer ")
        if key is None:
            return _error_body(401, "authentication_error", "x-api-key header is required")
        if key != self.api_key:
            return _error_body(401, "authentication_error", "invalid x-api-key")
        if "anthropic-version" not in req.headers:
            return _error_body(400, "invalid_request_error",
                               "anthropic-version: header is required")
        if req.body is None:
            return _error_body(400, "invalid_request_error",
                               "There was an error parsing the body" if raw else "body: required")
        try:
            validate(req.body)
        except InvalidRequest as exc:
            return _error_body(400, "invalid_request_error", str(exc))
        with self._lock:
            step = self._steps.pop(0) if self._steps else None
            if step is None:
                self.violations.append(f"request {len(self.requests)}: script exhausted")
        if step is None:
            return _error_body(500, "api_error", "fake anthropic: script exhausted")
        return self._serve(step, req.body)

    def _serve(self, step: Step, body: JSON) -> tuple[int, JSON, list[tuple[str, str]]]:
        while not isinstance(step, Reply | ErrorReply):
            if isinstance(step, Delay):
                self._stopping.wait(step.seconds)
                step = step.step
            else:
                step = step(body)
        if isinstance(step, ErrorReply):
            return _error_body(step.status, step.type, step.message, list(step.headers))
        self._check_against_request(step, body)
        content = [dict(b, id=b.get("id") or _new_id("toolu_")) if b.get("type") == "tool_use"
                   else dict(b) for b in step.content]
        with self._lock:
            usage = self._cache.usage(body)
        usage["output_tokens"] = max(len(json.dumps(content)) // 4, 1)
        return 200, {
            "id": _new_id("msg_"), "type": "message", "role": "assistant",
            "model": body["model"], "content": content,
            "stop_reason": step.effective_stop_reason(), "stop_sequence": None, "usage": usage,
        }, []

    def _check_against_request(self, step: Reply, body: JSON) -> None:
        """Record what a real model could not have answered to this request."""
        n = len(self.requests)
        used = [b.get("name") for b in step.content if b.get("type") == "tool_use"]
        tools = {t.get("name") for t in body.get("tools", [])}
        choice = body.get("tool_choice") or {"type": "auto"}
        for name in used:
            if name not in tools:
                self.violations.append(f"request {n}: tool_use of {name!r}, not in tools")
        if choice["type"] == "none" and used:
            self.violations.append(f"request {n}: tool_choice none, but the step uses {used}")
        if choice["type"] == "any" and not used:
            self.violations.append(f"request {n}: tool_choice any, but the step uses no tool")
        if choice["type"] == "tool" and choice["name"] not in used:
            self.violations.append(f"request {n}: tool_choice forces {choice['name']!r}, but "
                                   f"the step uses {used}")
        if choice.get("disable_parallel_tool_use") and len(used) > 1:
            self.violations.append(f"request {n}: parallel tool use disabled, step uses {used}")


def _error_body(status: int, kind: str, message: str, headers: list[tuple[str, str]] | None = None,
                ) -> tuple[int, JSON, list[tuple[str, str]]]:
    return status, {"type": "error", "error": {"type": kind, "message": message}}, headers or []


def _handler_for(fake: FakeAnthropic) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the SDK's connection pool expects
        # Headers and body go out as two writes; with Nagle on, the client's delayed ACK adds
        # ~40 ms to every request.
        disable_nagle_algorithm = True

        def _handle(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, payload, extra = fake.answer(self.path, headers, raw, self.command)
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.send_header("request-id", _new_id("req_"))
                for name, value in extra:
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test); nothing to answer

        do_POST = do_GET = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean; `fake.requests` has the record

    return Handler


@contextmanager
def running_anthropic(*steps: Step, api_key: str = "test-key",
                      min_cache_tokens: int = 0) -> Iterator[FakeAnthropic]:
    """A started FakeAnthropic serving `steps`, stopped on exit."""
    fake = FakeAnthropic(*steps, api_key=api_key, min_cache_tokens=min_cache_tokens)
    with fake:
        yield fake
