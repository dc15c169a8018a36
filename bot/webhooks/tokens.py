"""Webhook authorisation against the org a request targets. Bearer tokens for senders that can
only send a static token (Alertmanager, CI/CD pipelines): the org's own token (`sre-copilot orgs
add|rotate`), or for the default org the environment's; compared in constant time. A token opens
only its own org, so `?org=` cannot carry one org's credentials into another."""

from __future__ import annotations

import hmac

from fastapi import Request

from bot.webhooks.errors import RequestRejected
from bot.webhooks.intake import OrgKeys
from knowledge.orgs import token_matches


def require_bearer(request: Request, org: OrgKeys, *, digest: str | None, env_token: str | None,
                   setting: str, hint: str, option: str) -> None:
    """Refuse with 401 unless `Authorization: Bearer <token>` carries `org`'s token (its stored
    `digest`), or — for the default org only — the environment's `env_token`. An org with
    neither refuses everything, saying how to set one (`setting` and `hint` for the
    environment, `orgs rotate --option` for the org)."""
    usable_env = env_token if org.is_default else None
    if not digest and not usable_env:
        how = (f"{setting} is not set on the copilot; {hint}, or run `sre-copilot orgs rotate "
               f"{org.slug} {option}`" if org.is_default else
               f"org {org.slug!r} has no such token yet: run `sre-copilot orgs rotate "
               f"{org.slug} {option}`")
        raise RequestRejected(401, "not_configured", how)
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    given = given.strip()
    if scheme.lower() != "bearer" or not given:
        raise RequestRejected(401, "missing_token", "expected 'Authorization: Bearer <token>'",
                              headers={"WWW-Authenticate": "Bearer"})
    if token_matches(given, digest) or (
            usable_env is not None and hmac.compare_digest(given.encode(), usable_env.encode())):
        return
    raise RequestRejected(401, "invalid_token",
                          f"the bearer token is not org {org.slug!r}'s",
                          headers={"WWW-Authenticate": "Bearer"})
