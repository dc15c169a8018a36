"""Bot Framework authentication for Teams, from the settings: botbuilder's own
`ConfigurationBotFrameworkAuthentication` validates every inbound activity's JWT (signature from
the OpenID metadata's keys with the channel's endorsement, issuer, audience = TEAMS_APP_ID,
expiry, the `serviceurl` claim) and builds the connector clients for outbound calls, whose
credentials come from `CachedCredentialsFactory`."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botframework.connector.auth import (
    MicrosoftAppCredentials,
    ServiceClientCredentialsFactory,
)
from msal import ConfidentialClientApplication
from msrest.authentication import Authentication

from bot.settings import Settings

MULTI_TENANT = "botframework.com"  # the token authority of a multi-tenant bot


class CachedCredentialsFactory(ServiceClientCredentialsFactory):  # type: ignore[misc]
    """The bot's app credentials, made once per scope and kept.

    botbuilder's `PasswordServiceClientCredentialFactory` makes new credentials (and so a new
    msal app with an empty token cache) for every connector client, which would ask the login
    URL for a token on every outbound call; kept, msal returns the cached token until it
    expires. Its msal app skips instance discovery: msal would otherwise ask
    login.microsoftonline.com to vouch for any other TEAMS_LOGIN_URL host (a proxy, a
    sovereign cloud's mirror), and botbuilder never passes its `validate_authority` on."""

    def __init__(self, app_id: str, password: str, tenant_id: str | None) -> None:
        self.app_id, self.password, self.tenant_id = app_id, password, tenant_id
        self._kept: dict[tuple[str, str], MicrosoftAppCredentials] = {}

    async def is_valid_app_id(self, app_id: str) -> bool:
        return app_id == self.app_id

    async def is_authentication_disabled(self) -> bool:
        return not self.app_id

    async def create_credentials(self, app_id: str, oauth_scope: str, login_endpoint: str,
                                 validate_authority: bool) -> Authentication:
        if not await self.is_valid_app_id(app_id):
            raise PermissionError(f"app id {app_id!r} is not TEAMS_APP_ID")
        key = (oauth_scope, login_endpoint)
        if key not in self._kept:
            credentials = MicrosoftAppCredentials(app_id, self.password, self.tenant_id,
                                                  oauth_scope)
            credentials.oauth_endpoint = login_endpoint
            credentials.app = ConfidentialClientApplication(
                client_id=app_id, client_credential=self.password, authority=login_endpoint,
                instance_discovery=False)
            self._kept[key] = credentials
        kept: Authentication = self._kept[key]
        return kept


def login_authority(settings: Settings) -> str:
    """`<TEAMS_LOGIN_URL>/<tenant>`: the bot's own tenant, or Bot Framework's for multi-tenant."""
    return f"{settings.teams_login_url.rstrip('/')}/{settings.teams_app_tenant_id or MULTI_TENANT}"


def bot_authentication(settings: Settings) -> ConfigurationBotFrameworkAuthentication:
    """Inbound validation and outbound credentials for the bot TEAMS_APP_ID."""
    metadata = settings.teams_openid_metadata_url
    configuration: Any = SimpleNamespace(
        APP_ID=settings.teams_app_id, APP_PASSWORD=settings.teams_app_password,
        APP_TYPE="SingleTenant" if settings.teams_app_tenant_id else "MultiTenant",
        APP_TENANTID=settings.teams_app_tenant_id,
        TO_BOT_FROM_CHANNEL_OPENID_METADATA_URL=metadata,
        TO_BOT_FROM_CHANNEL_TOKEN_ISSUER=settings.teams_token_issuer,
        # Tokens the Bot Framework Emulator would bring are not accepted: only the channel's.
        TO_BOT_FROM_EMULATOR_OPENID_METADATA_URL=metadata,
        TO_CHANNEL_FROM_BOT_LOGIN_URL=login_authority(settings),
        TO_CHANNEL_FROM_BOT_OAUTH_SCOPE=settings.teams_token_issuer,
        VALIDATE_AUTHORITY=False)
    return ConfigurationBotFrameworkAuthentication(
        configuration, credentials_factory=CachedCredentialsFactory(
            settings.teams_app_id or "", settings.teams_app_password or "",
            settings.teams_app_tenant_id))
