"""A fake Bot Framework / Teams on loopback over HTTPS, for tests: the channel's OpenID metadata
and endorsed JWKS, the AAD token endpoint a bot's client-credentials grant uses, the connector
API (`/v3/conversations/...`) replies go to, and the signed activities Teams POSTs to a bot —
so botbuilder's real JWT validation, `MicrosoftAppCredentials` (msal) and `ConnectorClient` run
against it unchanged.

TLS is real: a throw-away test CA signs a certificate for 127.0.0.1/localhost; `ca_bundle` is
its PEM. botbuilder's outbound HTTP (OpenID metadata and JWKS in `JwtTokenExtractor`, msal's
token requests, msrest's `ConnectorClient`) all go through `requests`, so trust it with
`REQUESTS_CA_BUNDLE=fake.ca_bundle`; `SSL_CERT_FILE` covers aiohttp/httpx/`ssl` clients.

Point botbuilder at it with `fake.auth_settings()` (the attributes
`ConfigurationBotFrameworkAuthentication` reads) and `credentials_factory=
fake.credentials_factory()`: msal insists on instance discovery at login.microsoftonline.com for
any unknown authority host, and botbuilder never passes its `validate_authority` on to msal, so a
local login URL only works with credentials whose msal app was built with
`instance_discovery=False` — `fake.app_credentials()` makes those.

Connector calls are recorded in `calls`; `throttle_next(n, retry_after=1)` answers the next n
connector calls with 429 and `Retry-After`. Ids follow Teams: activity ids are millisecond
timestamps, a new channel thread's conversation id is `<channel id>;messageid=<activity id>`.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import re
import secrets
import ssl
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import jwt
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    PasswordServiceClientCredentialFactory,
)
from botframework.connector.auth.jwt_token_extractor import JwtTokenExtractor
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from jwt.algorithms import RSAAlgorithm
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

JSON = dict[str, Any]
Answer = tuple[int, dict[str, str], JSON]

CHANNEL_ISSUER = "https://api.botframework.com"  # `iss` of the tokens Bot Framework signs
BOT_SCOPE = "https://api.botframework.com/.default"
DEFAULT_TENANT = "botframework.com"  # the multi-tenant bot's token authority
DENIED: JSON = {"message": "Authorization has been denied for this request."}
# kid → endorsements, as in Bot Framework's JWKS (Teams' key endorses many channels).
_SIGNING_KEYS = {"bf-msteams-1": ["msteams", "webchat", "emulator", "skype"],
                 "bf-directline-1": ["webchat", "directline"]}
_CONNECTOR = re.compile(r"^(?:/[^/]+)?/v3/conversations(?:/([^/]+)/activities(?:/([^/]+))?)?/?$")
_TEAM_CHANNELS = re.compile(r"^(?:/[^/]+)?/v3/teams/([^/]+)/conversations/?$")
NOT_IN_ROSTER: JSON = {"error": {"code": "BotNotInConversationRoster",
                                 "message": "The bot is not part of the conversation roster."}}


@dataclass
class ConnectorCall:
    """One connector API call: `body` is the parsed JSON activity (or conversation params)."""

    http_method: str
    path: str
    conversation_id: str | None
    activity_id: str | None
    body: Any
    headers: dict[str, str]  # lower-cased names
    authorized: bool = False  # carried a bearer token the token endpoint issued
    status: int = 0
    response: JSON = field(default_factory=dict)
    at: float = field(default_factory=time.monotonic)  # when the fake received it

    @property
    def kind(self) -> str:
        """`send`, `reply`, `update`, `delete` or `create_conversation`."""
        if self.conversation_id is None:
            return "create_conversation"
        if self.activity_id is None:
            return "send"
        return {"POST": "reply", "PUT": "update"}.get(self.http_method, self.http_method.lower())


@dataclass(frozen=True)
class TokenRequest:
    tenant: str
    form: dict[str, str]
    status: int


class FakeBotFramework:
    """The fake's state and request handling; use `running_botframework`, or start()/stop()."""

    def __init__(self, *, app_id: str = "00000000-0000-0000-0000-00000000a11d",
                 app_password: str = "s3cret", tenant_id: str | None = None,
                 bot_name: str = "SRE Copilot") -> None:
        self.app_id, self.app_password, self.tenant_id = app_id, app_password, tenant_id
        self.bot_name = bot_name
        self.calls: list[ConnectorCall] = []
        self.token_requests: list[TokenRequest] = []
        self.issued_tokens: set[str] = set()
        self._keys = {kid: _rsa_key(kid) for kid in _SIGNING_KEYS}
        self._forger = _rsa_key("forger")  # signs `forged` tokens: not in the JWKS
        self._throttle: list[int] = []  # Retry-After of each next throttled connector call
        self._failures: list[tuple[int, JSON]] = []  # scripted answers of next connector calls
        self.removed_from: set[str] = set()  # channel / chat ids the bot was removed from
        self.team_channels: dict[str, list[JSON]] = {}  # team id → [{"id", "name"}]
        self._lock = threading.RLock()
        self._next_id = 1_700_000_001_000
        self._tmp = tempfile.TemporaryDirectory(prefix="fake-botframework-")
        self.ca_bundle, self._cert, self._key = _write_certificates(Path(self._tmp.name))
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- addresses and settings ---------------------------------------------------------

    @property
    def base_url(self) -> str:
        assert self._server is not None, "not started"
        return f"https://127.0.0.1:{self._server.server_address[1]}"

    @property
    def service_url(self) -> str:
        """The activities' `serviceUrl`, shaped like Teams' `https://smba.trafficmanager.net/amer/`."""
        return f"{self.base_url}/amer/"

    @property
    def openid_metadata_url(self) -> str:
        return f"{self.base_url}/v1/.well-known/openidconfiguration"

    @property
    def login_url(self) -> str:
        """The msal authority: `<base>/<tenant or botframework.com>`."""
        return f"{self.base_url}/{self.tenant_id or DEFAULT_TENANT}"

    def auth_settings(self) -> JSON:
        """The attributes `ConfigurationBotFrameworkAuthentication` reads (any of the
        TO_* ones switches botbuilder to its parameterised authentication)."""
        return {"APP_ID": self.app_id, "APP_PASSWORD": self.app_password,
                "APP_TYPE": "SingleTenant" if self.tenant_id else "MultiTenant",
                "APP_TENANTID": self.tenant_id,
                "TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL": self.openid_metadata_url,
                "TO_BOT_FROM_CHANNEL_TOKEN_ISSUER": CHANNEL_ISSUER,
                "TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL": self.openid_metadata_url,
                "TO_CHANNEL_FROM_BOT_LOGIN_URL": self.login_url,
                "TO_CHANNEL_FROM_BOT_OAUTH_SCOPE": CHANNEL_ISSUER,
                "VALIDATE_AUTHORITY": False}

    def trust_environ(self) -> dict[str, str]:
        """Environment variables that make clients trust this fake's CA: `requests` (all of
        botbuilder and msal) reads REQUESTS_CA_BUNDLE, then CURL_CA_BUNDLE — either overrides a
        session's own `verify`; `ssl`'s default context (aiohttp, httpx) reads SSL_CERT_FILE."""
        bundle = str(self.ca_bundle)
        return {"REQUESTS_CA_BUNDLE": bundle, "CURL_CA_BUNDLE": bundle, "SSL_CERT_FILE": bundle}

    def app_credentials(self, *, password: str | None = None) -> MicrosoftAppCredentials:
        """`MicrosoftAppCredentials` whose msal app targets this fake (no instance discovery)."""
        creds = MicrosoftAppCredentials(self.app_id, password or self.app_password,
                                        self.tenant_id, CHANNEL_ISSUER)
        creds.oauth_endpoint = self.login_url
        creds.app = ConfidentialClientApplication(
            client_id=self.app_id, client_credential=password or self.app_password,
            authority=self.login_url, instance_discovery=False, verify=str(self.ca_bundle))
        return creds

    def credentials_factory(self) -> PasswordServiceClientCredentialFactory:
        """A credentials factory for `ConfigurationBotFrameworkAuthentication(...,
        credentials_factory=...)` whose credentials reach this fake's token endpoint."""
        fake = self

        class _Factory(PasswordServiceClientCredentialFactory):  # type: ignore[misc]
            async def create_credentials(self, app_id: str, oauth_scope: str,
                                         login_endpoint: str,
                                         validate_authority: bool) -> Authentication:
                if not await self.is_valid_app_id(app_id):
                    raise PermissionError(f"Invalid app_id {app_id}")
                credentials: Authentication = fake.app_credentials()
                return credentials

        return _Factory(self.app_id, self.app_password, self.tenant_id)

    # --- scripting ----------------------------------------------------------------------

    def throttle_next(self, n: int = 1, *, retry_after: int = 1) -> None:
        with self._lock:
            self._throttle.extend([retry_after] * n)

    def fail_next(self, status: int, code: str, message: str, n: int = 1) -> None:
        """Answer the next n connector calls with `status` and Teams' error body, e.g.
        (400, "BadArgument", "Unknown attachment type") for a card Teams rejects, or
        (502, "BadGateway", ...) for an outage."""
        with self._lock:
            self._failures.extend([(status, {"error": {"code": code, "message": message}})] * n)

    def remove_bot(self, conversation: str) -> None:
        """The bot was removed: calls into this channel or chat (any of its threads) get 403."""
        with self._lock:
            self.removed_from.add(conversation.partition(";messageid=")[0])

    def sign_activity(self, activity: JSON, *, service_url: str | None = None,
                      expired: bool = False, forged: bool = False, audience: str | None = None,
                      endorsement: str = "msteams") -> dict[str, str]:
        """Headers for POSTing `activity` to the bot, as the Bot Framework channel signs it."""
        kid = next((k for k, e in _SIGNING_KEYS.items() if endorsement in e), None)
        if kid is None:
            raise ValueError(f"no signing key endorsed for {endorsement!r}")
        now = int(time.time())
        start = now - 7200 if expired else now - 60
        claims = {"serviceurl": service_url or activity.get("serviceUrl") or self.service_url,
                  "nbf": start, "exp": start + 3600, "iss": CHANNEL_ISSUER,
                  "aud": audience or self.app_id}
        key = self._forger if forged else self._keys[kid]
        token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})
        return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    # --- activities Teams sends ---------------------------------------------------------

    def message(self, text: str, *,
                conversation_id: str = "19:abc@thread.tacv2;messageid=1700000000000",
                from_id: str = "29:1user", from_name: str = "Ana", tenant_id: str = "tenant-1",
                team_id: str = "19:team@thread.tacv2", channel_id: str = "19:chan@thread.tacv2",
                mention_bot: bool = True, reply_to_id: str | None = None) -> JSON:
        """A message in a Teams channel (thread), @mentioning the bot by default."""
        at = f"<at>{self.bot_name}</at>"
        activity = self._activity("message", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": conversation_id}, _channel_data(tenant_id, team_id, channel_id))
        activity.update(textFormat="plain", text=f"{at} {text}" if mention_bot else text)
        if mention_bot:
            activity["entities"].insert(0, {"type": "mention", "text": at, "mentioned": {
                "id": f"28:{self.app_id}", "name": self.bot_name}})
        if reply_to_id:
            activity["replyToId"] = reply_to_id
        return activity

    def personal_message(self, text: str, *, from_id: str = "29:1user", from_name: str = "Ana",
                         tenant_id: str = "tenant-1",
                         conversation_id: str = "a:1personal-chat") -> JSON:
        """A 1:1 chat message to the bot (no mention)."""
        activity = self._activity("message", from_id, from_name, {
            "conversationType": "personal", "tenantId": tenant_id, "id": conversation_id},
            {"tenant": {"id": tenant_id}})
        activity.update(textFormat="plain", text=text)
        return activity

    def conversation_update_installed(self, team_id: str = "19:team@thread.tacv2",
                                      channel_id: str = "19:chan@thread.tacv2", *,
                                      tenant_id: str = "tenant-1", from_id: str = "29:1user",
                                      from_name: str = "Ana", team_name: str = "SRE") -> JSON:
        """The bot was added to a team (`membersAdded` holds the bot)."""
        data = _channel_data(tenant_id, team_id, channel_id)
        data["team"]["name"] = team_name
        data.update(eventType="teamMemberAdded", settings={"selectedChannel": {"id": channel_id}})
        activity = self._activity("conversationUpdate", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": channel_id}, data)
        activity["membersAdded"] = [{"id": f"28:{self.app_id}"}]
        del activity["entities"]
        return activity

    def channel_created(self, channel_id: str, name: str, *,
                        team_id: str = "19:team@thread.tacv2", tenant_id: str = "tenant-1",
                        from_id: str = "29:1user", from_name: str = "Ana") -> JSON:
        """A channel was created in a team the bot is in (`eventType: channelCreated`)."""
        data = _channel_data(tenant_id, team_id, channel_id)
        data.update(eventType="channelCreated", channel={"id": channel_id, "name": name})
        activity = self._activity("conversationUpdate", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": team_id}, data)
        del activity["entities"]
        return activity

    def invoke_action(self, data: JSON, *, verb: str = "ack",
                      conversation_id: str = "19:abc@thread.tacv2;messageid=1700000000000",
                      reply_to_id: str = "1700000000000", from_id: str = "29:1user",
                      from_name: str = "Ana", tenant_id: str = "tenant-1",
                      team_id: str = "19:team@thread.tacv2",
                      channel_id: str = "19:chan@thread.tacv2") -> JSON:
        """An Adaptive Card `Action.Execute` (universal action) invoke on a card the bot posted."""
        activity = self._activity("invoke", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": conversation_id}, _channel_data(tenant_id, team_id, channel_id))
        activity.update(name="adaptiveCard/action", replyToId=reply_to_id, value={
            "action": {"type": "Action.Execute", "verb": verb, "data": data},
            "trigger": "manual"})
        return activity

    def message_action(self, command_id: str, message_html: str, *, note: str = "",
                       conversation_id: str = "19:abc@thread.tacv2;messageid=1700000000000",
                       message_id: str = "1700000000123", author: str = "Bob",
                       from_id: str = "29:1user", from_name: str = "Ana",
                       tenant_id: str = "tenant-1", team_id: str = "19:team@thread.tacv2",
                       channel_id: str = "19:chan@thread.tacv2") -> JSON:
        """A message extension action on a message ("…" → the app's command): a
        `composeExtension/submitAction` invoke carrying the message and the dialog's fields."""
        activity = self._activity("invoke", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": conversation_id}, _channel_data(tenant_id, team_id, channel_id))
        activity.update(name="composeExtension/submitAction", value={
            "commandId": command_id, "commandContext": "message", "data": {"note": note},
            "context": {"theme": "default"},
            "messagePayload": {
                "id": message_id, "messageType": "message", "replyToId": None,
                "createdDateTime": "2026-12-06T03:58:12.345Z", "importance": "normal",
                "locale": "en-us", "body": {"contentType": "html", "content": message_html},
                "from": {"user": {"id": "29:2bob", "displayName": author,
                                  "userIdentityType": "aadUser"}},
                "attachments": [], "mentions": [], "reactions": []}})
        return activity

    def message_submit(self, data: JSON, *,
                       conversation_id: str = "19:abc@thread.tacv2;messageid=1700000000000",
                       reply_to_id: str = "1700000000000", from_id: str = "29:1user",
                       from_name: str = "Ana", tenant_id: str = "tenant-1",
                       team_id: str = "19:team@thread.tacv2",
                       channel_id: str = "19:chan@thread.tacv2") -> JSON:
        """An Adaptive Card `Action.Submit`: a message with no text and the card data in `value`."""
        channel_data = _channel_data(tenant_id, team_id, channel_id)
        channel_data.update(source={"name": "message"}, legacy={"replyToId": reply_to_id})
        activity = self._activity("message", from_id, from_name, {
            "isGroup": True, "conversationType": "channel", "tenantId": tenant_id,
            "id": conversation_id}, channel_data)
        activity.update(replyToId=reply_to_id, value=data)
        return activity

    def _activity(self, kind: str, from_id: str, from_name: str, conversation: JSON,
                  channel_data: JSON) -> JSON:
        now = dt.datetime.now(dt.UTC)
        return {"type": kind, "id": self._new_id(),
                "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
                "localTimestamp": now.isoformat(timespec="milliseconds"),
                "serviceUrl": self.service_url, "channelId": "msteams",
                "from": {"id": from_id, "name": from_name,
                         "aadObjectId": str(uuid.uuid5(uuid.NAMESPACE_URL, from_id))},
                "conversation": conversation,
                "recipient": {"id": f"28:{self.app_id}", "name": self.bot_name},
                "entities": [{"type": "clientInfo", "locale": "en-US", "country": "US",
                              "platform": "Web", "timezone": "Europe/Lisbon"}],
                "channelData": channel_data, "locale": "en-US"}

    def _new_id(self) -> str:
        with self._lock:
            self._next_id += 1
            return str(self._next_id)

    # --- lifecycle ----------------------------------------------------------------------

    def start(self) -> FakeBotFramework:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self._cert, self._key)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # The handshake runs in the handler thread, on first read, not in the accept loop.
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True,
                                                  do_handshake_on_connect=False)
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,),
                                        name="fake-botframework", daemon=True)
        self._thread.start()
        # botbuilder caches OpenID metadata and keys per URL for a day, process-wide: a port
        # reused from an earlier fake would otherwise validate against that fake's keys.
        JwtTokenExtractor.metadataCache.pop(self.openid_metadata_url, None)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._tmp.cleanup()

    def __enter__(self) -> FakeBotFramework:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- serving (handler threads) ------------------------------------------------------

    def answer(self, http_method: str, target: str, headers: dict[str, str],
               raw: bytes) -> Answer:
        path = urlsplit(target).path
        tenants = {DEFAULT_TENANT, self.tenant_id or DEFAULT_TENANT}
        if http_method == "GET" and path == "/v1/.well-known/openidconfiguration":
            return 200, {}, self._openid_metadata()
        if http_method == "GET" and path == "/v1/.well-known/keys":
            return 200, {}, {"keys": [self._jwk(kid) for kid in _SIGNING_KEYS]}
        parts = path.strip("/").split("/", 1)
        if parts[0] in tenants and len(parts) == 2:
            if http_method == "GET" and parts[1] == "v2.0/.well-known/openid-configuration":
                return 200, {}, self._tenant_metadata(parts[0])
            if http_method == "POST" and parts[1] == "oauth2/v2.0/token":
                return self._token(parts[0], raw)
        if match := _CONNECTOR.match(path):
            return self._connector(http_method, path, match, headers, raw)
        if (match := _TEAM_CHANNELS.match(path)) and http_method == "GET":
            return self._channels(unquote(match.group(1)), headers)
        return 404, {}, {"message": f"No HTTP resource was found that matches {path}"}

    def _openid_metadata(self) -> JSON:
        return {"issuer": CHANNEL_ISSUER,
                "authorization_endpoint": "https://invalid.botframework.com",
                "jwks_uri": f"{self.base_url}/v1/.well-known/keys",
                "id_token_signing_alg_values_supported": ["RS256"],
                "token_endpoint_auth_methods_supported": ["private_key_jwt"]}

    def _jwk(self, kid: str) -> JSON:
        jwk: JSON = RSAAlgorithm.to_jwk(self._keys[kid].public_key(), as_dict=True)
        return {"kty": "RSA", "use": "sig", "kid": kid, "n": jwk["n"], "e": jwk["e"],
                "endorsements": list(_SIGNING_KEYS[kid])}

    def _tenant_metadata(self, tenant: str) -> JSON:
        base = f"{self.base_url}/{tenant}"
        return {"issuer": f"{base}/v2.0", "token_endpoint": f"{base}/oauth2/v2.0/token",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "jwks_uri": f"{base}/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "token"],
                "id_token_signing_alg_values_supported": ["RS256"], "tenant_region_scope": "EU"}

    def _token(self, tenant: str, raw: bytes) -> Answer:
        form = dict(parse_qsl(raw.decode(), keep_blank_values=True))
        status, body = self._grant(tenant, form)
        with self._lock:
            self.token_requests.append(TokenRequest(tenant, form, status))
        return status, {}, body

    def _grant(self, tenant: str, form: dict[str, str]) -> tuple[int, JSON]:
        if form.get("grant_type") != "client_credentials":
            return 400, _aad_error("unsupported_grant_type", 70003,
                                   "The app requested an unsupported grant type.")
        if form.get("client_id") != self.app_id:
            return 400, _aad_error("unauthorized_client", 700016,
                                   f"Application with identifier '{form.get('client_id')}' was "
                                   f"not found in the directory '{tenant}'.")
        if form.get("client_secret") != self.app_password:
            return 401, _aad_error("invalid_client", 7000215,
                                   "Invalid client secret provided. Ensure the secret being "
                                   "sent in the request is the client secret value, not the "
                                   f"client secret ID, for a secret added to app '{self.app_id}'.")
        if BOT_SCOPE not in form.get("scope", "").split():
            return 400, _aad_error("invalid_scope", 1002012,
                                   f"The provided value for scope {form.get('scope')} is not "
                                   "valid. Client credential flows must have a scope value with "
                                   "/.default suffixed to the resource identifier.")
        now = int(time.time())
        token = jwt.encode({"aud": CHANNEL_ISSUER, "iss": f"https://sts.windows.net/{tenant}/",
                            "appid": self.app_id, "idtyp": "app", "ver": "1.0",
                            "iat": now, "nbf": now, "exp": now + 3600,
                            "jti": secrets.token_hex(8)},
                           self._keys["bf-msteams-1"], algorithm="RS256",
                           headers={"kid": "bf-msteams-1"})
        with self._lock:
            self.issued_tokens.add(token)
        return 200, {"token_type": "Bearer", "expires_in": 3600, "ext_expires_in": 3600,
                     "access_token": token}

    def _connector(self, http_method: str, path: str, match: re.Match[str],
                   headers: dict[str, str], raw: bytes) -> Answer:
        conversation_id, activity_id = (unquote(g) if g else None for g in match.groups())
        body = json.loads(raw) if raw else None
        scheme, _, token = headers.get("authorization", "").partition(" ")
        response: JSON
        extra: dict[str, str]
        with self._lock:
            call = ConnectorCall(http_method, path, conversation_id, activity_id, body, headers,
                                 authorized=scheme == "Bearer" and token in self.issued_tokens)
            self.calls.append(call)
            if not call.authorized:
                status, extra, response = 401, {}, DENIED
            elif (conversation_id or "").partition(";messageid=")[0] in self.removed_from or (
                    call.kind == "create_conversation" and ((body or {}).get("channelData") or {})
                    .get("channel", {}).get("id") in self.removed_from):
                status, extra, response = 403, {}, NOT_IN_ROSTER
            elif self._throttle:
                retry_after = self._throttle.pop(0)
                status, extra = 429, {"Retry-After": str(retry_after)}
                response = {"error": {"code": "ThrottledRequest",
                                      "message": "Too many requests, retry later."}}
            elif self._failures:
                status, response = self._failures.pop(0)
                extra = {}
            else:
                status, extra, response = self._connector_ok(call)
            call.status, call.response = status, response
        return status, extra, response

    def _channels(self, team_id: str, headers: dict[str, str]) -> Answer:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme != "Bearer" or token not in self.issued_tokens:
            return 401, {}, DENIED
        if team_id in self.removed_from:
            return 403, {}, NOT_IN_ROSTER
        channels = self.team_channels.get(team_id, [{"id": team_id}])
        # Teams leaves the General channel (whose id is the team's) without a name.
        return 200, {}, {"conversations": [c if c["id"] != team_id else {"id": team_id}
                                           for c in channels]}

    def _connector_ok(self, call: ConnectorCall) -> Answer:
        kind = call.kind
        if kind in ("send", "reply") and call.http_method == "POST":
            return 201, {}, {"id": self._new_id()}
        if kind == "update":
            return 200, {}, {"id": call.activity_id or ""}
        if kind == "delete" and call.http_method == "DELETE":
            return 200, {}, {}
        if kind == "create_conversation" and call.http_method == "POST":
            params = call.body or {}
            activity_id = self._new_id()
            channel = ((params.get("channelData") or {}).get("channel") or {}).get("id")
            conversation = (f"{channel};messageid={activity_id}" if channel and params.get(
                "isGroup") else f"a:{secrets.token_hex(12)}")
            return 201, {}, {"id": conversation, "activityId": activity_id}
        return 405, {}, {"message": f"The requested resource does not support http method "
                                    f"'{call.http_method}'."}


@contextmanager
def running_botframework(*, app_id: str = "00000000-0000-0000-0000-00000000a11d",
                         app_password: str = "s3cret",
                         tenant_id: str | None = None) -> Iterator[FakeBotFramework]:
    """A started FakeBotFramework on a free loopback HTTPS port (a daemon thread), stopped on
    exit."""
    with FakeBotFramework(app_id=app_id, app_password=app_password, tenant_id=tenant_id) as fake:
        yield fake


def _handler_for(fake: FakeBotFramework) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True

        def setup(self) -> None:
            super().setup()
            try:
                self.request.do_handshake()
            except (ssl.SSLError, OSError):
                self.close_connection = True
                self.rfile = _Empty()  # type: ignore[assignment]  # handle() then reads no request line

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, body = fake.answer(self.command, self.path, headers, raw)
            data = json.dumps(body).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                pass  # the client gave up

        do_GET = do_POST = do_PUT = do_DELETE = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: `fake.calls` and `fake.token_requests` have the record

    return Handler


class _Empty:
    def readline(self, *args: Any) -> bytes:
        return b""

    def close(self) -> None:
        pass


def _channel_data(tenant_id: str, team_id: str, channel_id: str) -> JSON:
    return {"teamsChannelId": channel_id, "teamsTeamId": team_id, "channel": {"id": channel_id},
            "team": {"id": team_id}, "tenant": {"id": tenant_id}}


def _aad_error(error: str, code: int, description: str) -> JSON:
    now = dt.datetime.now(dt.UTC)
    trace, correlation = str(uuid.uuid4()), str(uuid.uuid4())
    return {"error": error,
            "error_description": f"AADSTS{code}: {description} Trace ID: {trace} "
                                 f"Correlation ID: {correlation} Timestamp: "
                                 f"{now:%Y-%m-%d %H:%M:%SZ}",
            "error_codes": [code], "timestamp": f"{now:%Y-%m-%d %H:%M:%SZ}",
            "trace_id": trace, "correlation_id": correlation,
            "error_uri": "https://login.microsoftonline.com/error?code=" + str(code)}


# --- certificates --------------------------------------------------------------------------


@functools.cache
def _rsa_key(role: str) -> rsa.RSAPrivateKey:
    """One 2048-bit key per role, per process: generating them costs ~60 ms each."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _write_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signs for 127.0.0.1/localhost, as PEM files:
    (CA bundle, server certificate chain, server key)."""
    now = dt.datetime.now(dt.UTC)
    ca_key, server_key = _rsa_key("ca"), _rsa_key("server")
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Fake Bot Framework Test CA")])
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - dt.timedelta(minutes=5))
          .not_valid_after(now + dt.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False,
                                       data_encipherment=False, key_agreement=False,
                                       encipher_only=False, decipher_only=False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
              .issuer_name(ca_name).public_key(server_key.public_key())
              .serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5))
              .not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.SubjectAlternativeName([
                  x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                  critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                             critical=False)
              .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(
                  ca_ski), critical=False)
              .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    bundle, chain, key = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    bundle.write_bytes(ca.public_bytes(pem))
    chain.write_bytes(server.public_bytes(pem) + ca.public_bytes(pem))
    key.write_bytes(server_key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption()))
    return bundle, chain, key
