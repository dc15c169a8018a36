"""Slack in: a slack-bolt `AsyncApp` whose listeners only store what Slack sent in the durable
inbox (keyed by Slack's own ids, so Slack's retries — `X-Slack-Retry-Num` — are duplicates) and
acknowledge. Bolt verifies the signing secret; `process_before_response` makes the HTTP answer
wait for the store, so an acknowledged event is never lost. The chat worker
(`bot/chat_worker.py` with `bot/slack/handlers.py`) does the work and answers in the thread.
"""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any
from urllib.parse import parse_qs

import aiohttp
from fastapi import Request
from pydantic import BaseModel, ConfigDict
from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.oauth.async_oauth_flow import AsyncOAuthFlow
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import (
    AsyncConnectionErrorRetryHandler,
    AsyncRateLimitErrorRetryHandler,
)
from slack_sdk.oauth.installation_store.async_installation_store import AsyncInstallationStore
from slack_sdk.oauth.state_store.async_state_store import AsyncOAuthStateStore
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.metrics import Metrics
from bot.outgoing import scrub_arguments
from bot.settings import Settings
from bot.webhooks.bodies import check_strings, parse_json, read_body
from bot.webhooks.errors import RequestRejected, validate
from knowledge.db import Database
from knowledge.inbox import InboxEntry, enqueue
from knowledge.orgs import Org, ensure_org, org_for_slack_team

log = logging.getLogger(__name__)
SOURCE = "slack"
EVENTS = ("app_mention", "message", "reaction_added", "channel_created",
          "member_joined_channel")
ACTIONS = re.compile(r"^(hypothesis_(confirm|reject)|incident_(ack|mitigated|resolve))$")
SHORTCUT = "add_to_timeline"
# The bot scopes the app asks for when installed (bot/slack/manifest.yaml lists the same).
BOT_SCOPES = ("app_mentions:read", "channels:history", "channels:join", "channels:manage",
              "channels:read", "chat:write", "commands", "files:write", "groups:history",
              "groups:read", "reactions:read", "users:read", "users:read.email")


async def guard(request: Request, settings: Settings) -> None:
    """What is checked before bolt reads a byte, since bolt parses a body before it verifies
    it: the size limit, a signature (Slack's v0 HMAC over the exact bytes, timestamp within
    five minutes), then the nesting depth of the JSON, or of a form's `payload`."""
    body = await read_body(request, limit=settings.max_body_bytes)
    timestamp = request.headers.get("x-slack-request-timestamp", "")
    signature = request.headers.get("x-slack-signature", "")
    if not timestamp.isdigit() or not signature:
        raise RequestRejected(401, "invalid_signature",
                              "X-Slack-Request-Timestamp (a number) and X-Slack-Signature are "
                              "required")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RequestRejected(400, "malformed_body", "the body is not UTF-8") from exc
    if not SignatureVerifier(settings.slack_signing_secret or "-").is_valid(
            text, timestamp, signature):
        raise RequestRejected(401, "invalid_signature",
                              "the Slack signature is invalid or more than five minutes old")
    if request.headers.get("content-type", "").startswith("application/json"):
        validate(SlackEnvelope, parse_json(body), what="Slack event")
        return
    form = parse_qs(text, keep_blank_values=True)
    check_strings(form)
    for payload in form.get("payload", []):
        validate(SlackEnvelope, parse_json(payload), what="Slack interaction payload")


# What bolt and the listeners read of a payload, typed as Slack sends it; the rest is kept as it
# came. Signed payloads are Slack's, but one that would crash bolt is refused with a 4xx.
_Ref = str | dict[str, Any] | None


class SlackEvent(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    user: _Ref = None
    channel: _Ref = None
    team: _Ref = None
    text: str | None = None
    ts: str | None = None
    thread_ts: str | None = None
    event_ts: str | None = None
    subtype: str | None = None
    item: dict[str, Any] | None = None
    reaction: str | None = None


class SlackEnvelope(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str | None = None
    token: str | None = None
    team_id: str | None = None
    enterprise_id: str | None = None
    api_app_id: str | None = None
    event_id: str | None = None
    challenge: str | None = None
    is_enterprise_install: bool | None = None
    authorizations: list[dict[str, Any]] | None = None
    event: SlackEvent | None = None
    user: _Ref = None
    team: _Ref = None
    channel: _Ref = None
    enterprise: _Ref = None
    actions: list[dict[str, Any]] | None = None
    message: dict[str, Any] | None = None
    container: dict[str, Any] | None = None
    callback_id: str | None = None
    trigger_id: str | None = None
    response_url: str | None = None


# Errors that are answers, not Slack failing: a channel name someone has (the next is tried),
# an on-call person with no Slack account, an invitation already accepted.
EXPECTED_ERRORS = frozenset({"name_taken", "users_not_found", "already_in_channel"})


def web_client(settings: Settings, token: str | None = None, *,
               metrics: Metrics | None = None) -> AsyncWebClient:
    """The Web API client: `SLACK_API_URL`, slack_sdk's own retry handlers (429 with
    Retry-After, dropped connections), every request's content redacted; with `metrics`, it
    counts failed calls."""
    base = settings.slack_api_url if settings.slack_api_url.endswith("/") \
        else settings.slack_api_url + "/"
    retries = [AsyncRateLimitErrorRetryHandler(max_retry_count=3),
               AsyncConnectionErrorRetryHandler(max_retry_count=2)]
    return GuardedWebClient(token=token or settings.slack_bot_token, base_url=base,
                            retry_handlers=retries, metrics=metrics)


class GuardedWebClient(AsyncWebClient):
    """slack_sdk's client with two duties at the one place every Web API method goes through
    (`api_call`): the content of each request is redacted (`bot.outgoing`), and with `metrics`
    each call that fails after its retry handlers (Slack's `ok: false`, HTTP errors, dropped
    connections) is counted as a Slack upstream error."""

    def __init__(self, *args: Any, metrics: Metrics | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.metrics = metrics

    async def api_call(self, api_method: str, *, http_verb: str = "POST",
                       files: dict[Any, Any] | None = None,
                       data: dict[Any, Any] | aiohttp.FormData | None = None,
                       params: dict[Any, Any] | None = None,
                       json: dict[Any, Any] | None = None,
                       headers: dict[Any, Any] | None = None,
                       auth: dict[Any, Any] | None = None) -> AsyncSlackResponse:
        if isinstance(data, dict):
            data = scrub_arguments(api_method, data)
        try:
            return await super().api_call(
                api_method, http_verb=http_verb, files=files, data=data,
                params=scrub_arguments(api_method, params),
                json=scrub_arguments(api_method, json), headers=headers, auth=auth)
        except SlackApiError as exc:
            if self.metrics is not None and (
                    exc.response is None or exc.response.get("error") not in EXPECTED_ERRORS):
                self.metrics.upstream_failed("slack")
            raise
        except Exception:
            if self.metrics is not None:
                self.metrics.upstream_failed("slack")
            raise

    async def files_upload_v2(self, **kwargs: Any) -> AsyncSlackResponse:
        """A text file's content (a post-mortem draft) is redacted before it is uploaded; the
        upload itself does not go through `api_call`."""
        return await super().files_upload_v2(**scrub_arguments("files.upload", kwargs) or {})


async def org_of_team(db: Database, settings: Settings, team_id: str | None) -> int:
    """The org a workspace belongs to. With one bot token the first workspace that writes is
    the default org's; with OAuth installs every workspace is an org of its own."""
    async with db.session() as session, session.begin():
        org: Org | None = None
        if team_id:
            org = await org_for_slack_team(session, team_id=team_id)
        if org is None and team_id and settings.slack_oauth:
            org = await ensure_org(session, slug=f"slack-{team_id.lower()}", name=team_id)
            org.slack_team_id = team_id
            session.add(org)
        if org is None:
            org = await ensure_org(session, slug=settings.default_org, name=settings.default_org)
            if team_id and org.slack_team_id is None:
                org.slack_team_id = team_id
                session.add(org)
        assert org.id is not None
        return org.id


def oauth_flow(settings: Settings, installations: AsyncInstallationStore,
               states: AsyncOAuthStateStore) -> AsyncOAuthFlow:
    """The install flow at `/slack/install` → Slack → `/slack/oauth_redirect`; each
    installation (a bot token per workspace) is kept in the database by slack_sdk's store."""
    return AsyncOAuthFlow(client=web_client(settings), settings=AsyncOAuthSettings(
        client_id=settings.slack_client_id, client_secret=settings.slack_client_secret,
        scopes=list(BOT_SCOPES), installation_store=installations, state_store=states,
        install_path="/slack/install", redirect_uri_path="/slack/oauth_redirect"))


def build_slack_app(settings: Settings, db: Database, wake: asyncio.Event | None = None, *,
                    flow: AsyncOAuthFlow | None = None) -> AsyncApp:
    # The client carries the bot token (or none: OAuth installs bring one per workspace),
    # SLACK_API_URL and the retry handlers.
    # Socket Mode needs no signing secret (the socket is authenticated); HTTP always does —
    # `/slack/events` refuses requests when none is set.
    app = AsyncApp(signing_secret=settings.slack_signing_secret, client=web_client(settings),
                   oauth_flow=flow, process_before_response=True,
                   request_verification_enabled=bool(settings.slack_signing_secret))
    orgs: dict[str, int] = {}  # workspace → org: fixed once known, so asked once per process

    async def store(kind: str, key: str, body: dict[str, Any]) -> None:
        team = (body.get("team_id") or (body.get("team") or {}).get("id")
                or (body.get("authorizations") or [{}])[0].get("team_id") or "")
        if team not in orgs:
            orgs[team] = await org_of_team(db, settings, team)
        org_id = orgs[team]
        async with db.session() as session, session.begin():
            result = await enqueue(session, org_id=org_id, entries=[InboxEntry(
                SOURCE, f"{kind}:{key}", {"kind": kind, "body": body})])
        if result.duplicates:
            log.info("slack %s %s was already stored (a Slack retry)", kind, key)
        if wake is not None:
            wake.set()

    async def on_event(body: dict[str, Any]) -> None:
        await store("event", str(body.get("event_id") or body["event"].get("event_ts")), body)

    for event in EVENTS:
        app.event(event)(on_event)

    @app.command("/sre")
    async def on_command(ack: AsyncAck, body: dict[str, Any]) -> None:
        await store("command", str(body.get("trigger_id")), body)
        await ack()

    @app.action(ACTIONS)
    async def on_action(ack: AsyncAck, body: dict[str, Any]) -> None:
        action = (body.get("actions") or [{}])[0]
        await store("action", f"{body.get('trigger_id')}:{action.get('action_ts')}", body)
        await ack()

    @app.shortcut(SHORTCUT)
    async def on_shortcut(ack: AsyncAck, body: dict[str, Any]) -> None:
        await store("shortcut", str(body.get("trigger_id")), body)
        await ack()

    return app
