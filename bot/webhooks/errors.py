"""Request rejection: every refused request gets a 4xx with a JSON body saying what is wrong."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from fastapi import Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ValidationError

M = TypeVar("M", bound=BaseModel)


class RequestRejected(Exception):
    """Raised anywhere in a handler; answered as `{"error": code, "detail": text}`."""

    def __init__(self, status: int, error: str, detail: str,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.error = error
        self.detail = detail
        self.headers = headers


async def rejected_response(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestRejected)
    return JSONResponse({"error": exc.error, "detail": exc.detail}, status_code=exc.status,
                        headers=exc.headers)


async def read_body(request: Request, *, limit: int) -> bytes:
    """The raw body (signatures are over the exact bytes), refused past `limit` bytes whether or
    not the sender declared a Content-Length."""
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
    return b"".join(chunks)


def require_json(request: Request) -> None:
    ctype = request.headers.get("content-type", "")
    if ctype.split(";")[0].strip().lower() != "application/json":
        raise RequestRejected(415, "unsupported_media_type",
                              f"expected Content-Type application/json, got {ctype or 'none'}")


def parse_json(body: bytes) -> Any:
    if not body.strip():
        raise RequestRejected(400, "empty_body", "the request body is empty; expected JSON")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestRejected(400, "malformed_json", f"body is not valid JSON: {exc}") from exc


def validate(model: type[M], data: Any, *, what: str) -> M:
    """Validate against the wire model; a 422 lists each bad field by its path."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(body)'}: {err['msg']}"
            for err in exc.errors()[:10])
        raise RequestRejected(422, "invalid_payload", f"not a valid {what}: {problems}") from exc
