"""Request bodies, read defensively: the size limit while reading, the nesting depth on the raw
bytes before any parser (or a signature check that parses) sees them, and after parsing only what
storage can hold — no NUL character or lone surrogate in any string (PostgreSQL's text holds
neither), no integer longer than 20 digits, no NaN or Infinity (JSON columns refuse them).
Every problem is a `RequestRejected` 4xx that says where it is."""

from __future__ import annotations

import json
import math
import re
from typing import Any

import numpy as np
from fastapi import Request

from bot.webhooks.errors import RequestRejected

# Real payloads nest a handful of levels (a Teams activity about 6, an Alertmanager one 4,
# a Slack block_actions payload about 12): 64 is far beyond them and far below the recursion
# limit that deep nesting hits in json, pydantic and bolt.
MAX_DEPTH = 64
MAX_DIGITS = 20  # an int64 has 19 digits and a sign
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_OPEN, _CLOSE = np.frombuffer(b"[{", dtype=np.uint8), np.frombuffer(b"]}", dtype=np.uint8)


async def read_body(request: Request, *, limit: int) -> bytes:
    """The raw body (signatures are over the exact bytes), refused past `limit` bytes whether or
    not the sender declared a Content-Length. Kept on the request, so a library reading the
    body afterwards (bolt) gets these bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise RequestRejected(400, "bad_content_length", "Content-Length is not a number")
        if int(declared) > limit:
            raise RequestRejected(413, "body_too_large",
                                  f"body of {declared} bytes is over the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestRejected(413, "body_too_large",
                                  f"body is over the {limit}-byte limit")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Starlette's own cache: `await request.body()` returns it
    return body


def require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise RequestRejected(415, "unsupported_media_type",
                              f"expected Content-Type application/json, got {ctype or 'none'}")


def check_depth(raw: bytes | str, *, limit: int = MAX_DEPTH) -> None:
    """Refuse JSON nested deeper than `limit`, read off the bytes without parsing them (brackets
    inside strings do not count). Vectorised, so a megabyte of brackets costs milliseconds."""
    data = raw.encode("utf-8", "surrogatepass") if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return  # too few brackets to be deep: the common case costs two counts
    depth = _depth(np.frombuffer(data, dtype=np.uint8))
    if depth > limit:
        raise RequestRejected(400, "too_deep",
                              f"JSON nested {depth} levels deep; at most {limit} are accepted")


def _depth(b: np.ndarray) -> int:
    n = len(b)
    index = np.arange(n)
    backslash = b == ord("\\")
    # Backslashes running up to each position: a quote after an odd run is escaped.
    last_other = np.maximum.accumulate(np.where(backslash, -1, index))
    run = np.concatenate(([0], index[:-1] - last_other[:-1]))
    quote = (b == ord('"')) & (run % 2 == 0)
    outside = np.cumsum(quote) % 2 == 0  # an even number of quotes so far: not in a string
    steps = (np.isin(b, _OPEN) & outside).astype(np.int32) - (
        np.isin(b, _CLOSE) & outside).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def parse_json(body: bytes | str) -> Any:
    """Parse a JSON body that `check_depth` lets through and whose every string storage holds."""
    if not body.strip():
        raise RequestRejected(400, "empty_body", "the request body is empty; expected JSON")
    check_depth(body)
    try:
        data = json.loads(body, parse_int=_integer, parse_float=_finite,
                          parse_constant=_no_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRejected(400, "malformed_json", f"body is not valid JSON: {exc}") from exc
    check_strings(data)
    return data


def check_strings(data: Any, path: str = "") -> None:
    """Refuse a NUL character or a lone surrogate in any key or string, naming its path."""
    stack: list[tuple[str, Any]] = [(path, data)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            _storable(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                inner = f"{where}.{key}" if where else str(key)
                _storable(str(key), inner)
                stack.append((inner, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in enumerate(value))


def _storable(text: str, where: str) -> None:
    found = _UNSTORABLE.search(text)
    if found is not None:
        what = "a NUL character" if found.group() == "\x00" else "a lone UTF-16 surrogate"
        raise RequestRejected(422, "invalid_payload",
                              f"{_shown(where)}: holds {what}, which cannot be stored")


def _shown(where: str) -> str:
    return _UNSTORABLE.sub("?", where)[:200] or "(body)"


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise RequestRejected(400, "number_too_long",
                              f"an integer of {len(text)} digits; at most {MAX_DIGITS} are "
                              "accepted")
    return int(text)


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise RequestRejected(400, "number_out_of_range", f"{text[:40]} is not a finite number")
    return value


def _no_constant(text: str) -> float:
    raise RequestRejected(400, "malformed_json", f"{text} is not JSON")
