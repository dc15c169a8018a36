"""Outbound calls to Teams through the Bot Framework connector (botbuilder's `ConnectorClient`,
one per service URL, with the bot's kept credentials): send, reply, update, start a thread in
a channel, list a team's channels.

Every call is retried on 429 (waiting what `Retry-After` says) and on 5xx and dropped
connections (with backoff) by tenacity; msrest's own urllib3 retries are turned off so there is
one policy, and because they never retry a 429. What still fails is a `TeamsError` whose
`reason` says what a person should do about it (and, given `metrics`, is counted)."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from botbuilder.schema import (
    Activity,
    ConversationParameters,
    ErrorResponseException,
)
from botframework.connector.aio import ConnectorClient
from botframework.connector.auth import (
    AuthenticationConstants,
    BotFrameworkAuthentication,
    ClaimsIdentity,
)
from botframework.connector.teams import TeamsConnectorClient
from requests.exceptions import ConnectionError as RequestsConnectionError
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception,
    stop_after_attempt,
)

from bot.metrics import Metrics
from bot.outgoing import scrub_activity

log = logging.getLogger(__name__)
RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})


class TeamsError(Exception):
    """A connector call that failed for good. `reason`: `auth` (the bot's credentials were
    refused), `removed` (the bot is no longer in the conversation), `rejected` (Teams refused
    the content, e.g. a card), `throttled` or `unavailable` (still 429 / 5xx after retries),
    `failed` (anything else)."""

    def __init__(self, reason: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.reason, self.status = reason, status


@dataclass(frozen=True)
class NewThread:
    conversation_id: str  # `<channel id>;messageid=<activity id>`
    activity_id: str


def _status(exc: BaseException) -> int | None:
    if isinstance(exc, ErrorResponseException) and exc.response is not None:
        return int(exc.response.status_code)
    return None


def _retryable(exc: BaseException) -> bool:
    return _status(exc) in RETRIED_STATUS or isinstance(exc, RequestsConnectionError)


class _RetryAfter:
    """tenacity's wait: the connector's `Retry-After` when it sent one (capped), else
    exponential backoff from half a second."""

    def __init__(self, cap: float) -> None:
        self.cap = cap

    def __call__(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        header = None
        if isinstance(exc, ErrorResponseException) and exc.response is not None:
            header = exc.response.headers.get("Retry-After")
        try:
            wanted = float(header) if header is not None else 0.5 * 2 ** (
                state.attempt_number - 1)
        except ValueError:  # an HTTP date: rare from the connector; back off instead
            wanted = 0.5 * 2 ** (state.attempt_number - 1)
        return max(0.0, min(wanted, self.cap))


def _explain(exc: Exception, what: str) -> TeamsError:
    status = _status(exc)
    if isinstance(exc, PermissionError):  # msal: the login URL refused the app's credentials
        return TeamsError("auth", f"Teams refused the bot's credentials while trying to "
                                  f"{what} (check TEAMS_APP_ID, TEAMS_APP_PASSWORD and "
                                  f"TEAMS_APP_TENANT_ID): {exc}")
    detail = _error_text(exc)
    if status == 401:
        return TeamsError("auth", f"the connector refused the bot's token while trying to "
                                  f"{what}: {detail}", status=status)
    if status in (403, 404):
        return TeamsError("removed", f"could not {what}: the bot is not in that conversation "
                                     f"any more (removed, or the conversation was deleted): "
                                     f"{detail}", status=status)
    if status in (400, 413):
        return TeamsError("rejected", f"Teams rejected the message while trying to {what}: "
                                      f"{detail}", status=status)
    if status == 429:
        return TeamsError("throttled", f"still throttled (429) after retries while trying to "
                                       f"{what}", status=status)
    if status is not None and status >= 500:
        return TeamsError("unavailable", f"the connector answered {status} after retries "
                                         f"while trying to {what}: {detail}", status=status)
    return TeamsError("failed", f"could not {what}: {type(exc).__name__}: {detail}",
                      status=status)


def _error_text(exc: Exception) -> str:
    """The connector's `{"error": {"code", "message"}}`, else the exception's text."""
    if isinstance(exc, ErrorResponseException) and exc.response is not None:
        try:
            error = exc.response.json().get("error") or {}
            if error:
                return f"{error.get('code', '')}: {error.get('message', '')}".strip(": ")
        except ValueError:
            pass
        return f"HTTP {exc.response.status_code} {exc.response.text[:300]}"
    return str(exc)


class Connector:
    """The bot's outbound side. `attempts` bounds retries per call; `max_wait` caps a wait;
    `metrics` counts the calls that failed for good."""

    def __init__(self, auth: BotFrameworkAuthentication, app_id: str, *, attempts: int = 5,
                 max_wait: float = 30.0, metrics: Metrics | None = None) -> None:
        self.auth, self.app_id = auth, app_id
        self.attempts, self.max_wait = attempts, max_wait
        self.metrics = metrics
        self._clients: dict[str, ConnectorClient] = {}

    async def client(self, service_url: str) -> ConnectorClient:
        if service_url not in self._clients:
            claims = ClaimsIdentity({AuthenticationConstants.AUDIENCE_CLAIM: self.app_id,
                                     AuthenticationConstants.APP_ID_CLAIM: self.app_id}, True)
            factory = self.auth.create_connector_factory(claims)
            client = await factory.create(service_url, self.auth.get_originating_audience())
            client.config.retry_policy.retries = 0  # ours, in `_call`
            self._clients[service_url] = client
        client = self._clients[service_url]
        # The token is fetched (or refreshed, hourly) off the event loop; msrest's signing
        # then finds it in msal's cache.
        await asyncio.to_thread(client.config.credentials.get_access_token)
        return client

    async def _call(self, what: str, service_url: str, call: Any) -> Any:
        try:
            client = await self.client(service_url)
            async for attempt in AsyncRetrying(
                    retry=retry_if_exception(_retryable), wait=_RetryAfter(self.max_wait),
                    stop=stop_after_attempt(self.attempts), reraise=True,
                    before_sleep=lambda s: log.warning(
                        "Teams connector: %s got %s; retrying", what,
                        _status(s.outcome.exception() or Exception()) if s.outcome else "?")):
                with attempt:
                    return await call(client)
        except (ErrorResponseException, PermissionError, RequestsConnectionError) as exc:
            if self.metrics is not None:
                self.metrics.upstream_failed("teams")
            raise _explain(exc, what) from exc
        raise AssertionError("unreachable")  # AsyncRetrying either returns or reraises

    async def send(self, service_url: str, conversation_id: str, activity: Activity) -> str:
        """Post into a conversation (a channel thread, a chat); the new activity's id."""
        safe = scrub_activity(activity)
        response = await self._call(
            f"post to {conversation_id}", service_url,
            lambda c: c.conversations.send_to_conversation(conversation_id, safe))
        return str(response.id or "")

    async def reply(self, service_url: str, conversation_id: str, reply_to_id: str,
                    activity: Activity) -> str:
        safe = scrub_activity(activity)
        response = await self._call(
            f"reply in {conversation_id}", service_url,
            lambda c: c.conversations.reply_to_activity(conversation_id, reply_to_id, safe))
        return str(response.id or "")

    async def update(self, service_url: str, conversation_id: str, activity_id: str,
                     activity: Activity) -> None:
        activity.id = activity_id
        safe = scrub_activity(activity)
        await self._call(
            f"update message {activity_id} in {conversation_id}", service_url,
            lambda c: c.conversations.update_activity(conversation_id, activity_id, safe))

    async def start_thread(self, service_url: str, *, tenant_id: str, channel_id: str,
                           activity: Activity) -> NewThread:
        """A new post in a channel, which starts its own reply chain."""
        params = ConversationParameters(is_group=True, tenant_id=tenant_id,
                                        activity=scrub_activity(activity),
                                        channel_data={"channel": {"id": channel_id},
                                                      "tenant": {"id": tenant_id}})
        response = await self._call(
            f"start a thread in {channel_id}", service_url,
            lambda c: c.conversations.create_conversation(params))
        return NewThread(str(response.id), str(response.activity_id or ""))

    async def team_channels(self, service_url: str, team_id: str) -> list[tuple[str, str]]:
        """A team's channels as (id, name); the General channel's name comes back empty."""
        async def listing(client: ConnectorClient) -> list[tuple[str, str]]:
            teams = TeamsConnectorClient(client.config.credentials, service_url)
            teams.config.retry_policy.retries = 0
            found = await asyncio.to_thread(teams.teams.get_teams_channels, team_id)
            return [(str(c.id), str(c.name or "General")) for c in found.conversations or []]

        result: list[tuple[str, str]] = await self._call(
            f"list the channels of team {team_id}", service_url, listing)
        return result
