"""Request rejection: every refused request gets a 4xx with a JSON body saying what is wrong."""

from __future__ import annotations

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


def validate(model: type[M], data: Any, *, what: str, at: str = "") -> M:
    """Validate against the wire model; a 422 lists each bad field by its path (below `at`,
    when `data` is part of a body, e.g. `event.data`)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join([*([at] if at else []), *(str(p) for p in err['loc'])]) or '(body)'}: "
            f"{err['msg']}" for err in exc.errors()[:10])
        raise RequestRejected(422, "invalid_payload", f"not a valid {what}: {problems}") from exc
