"""Bearer-token authorisation, for senders that can only send a static token (Alertmanager,
CI/CD pipelines): the configured token must be set and match, compared in constant time."""

from __future__ import annotations

import hmac

from fastapi import Request

from bot.webhooks.errors import RequestRejected


def require_bearer(request: Request, token: str | None, *, setting: str, hint: str) -> None:
    """Refuse with 401 unless `Authorization: Bearer <token>` carries the configured token.
    Unconfigured (`token` unset) refuses everything, naming the `setting` and how to fix it."""
    if not token:
        raise RequestRejected(401, "not_configured",
                              f"{setting} is not set on the copilot; {hint}")
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not given:
        raise RequestRejected(401, "missing_token", "expected 'Authorization: Bearer <token>'",
                              headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise RequestRejected(401, "invalid_token", "the bearer token is not the configured one",
                              headers={"WWW-Authenticate": "Bearer"})
