"""The fake Bot Framework (tests/fakes/botframework.py) against the real botbuilder SDK: its
JWT validation, msal client credentials and the async `ConnectorClient`, all over HTTPS."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import certifi
import jwt
import pytest
import requests
from botbuilder.core import TurnContext
from botbuilder.core.teams import teams_get_channel_id, teams_get_team_info
from botbuilder.integration.aiohttp import ConfigurationBotFrameworkAuthentication
from botbuilder.schema import Activity, ConversationParameters, ErrorResponseException
from botframework.connector.aio import ConnectorClient

from tests.fakes.botframework import CHANNEL_ISSUER, FakeBotFramework, running_botframework

OTHER_APP = "00000000-0000-0000-0000-0000000000bb"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeBotFramework]:
    with running_botframework() as running:
        for name, value in running.trust_environ().items():
            monkeypatch.setenv(name, value)
        yield running


def _auth(fake: FakeBotFramework) -> ConfigurationBotFrameworkAuthentication:
    return ConfigurationBotFrameworkAuthentication(
        SimpleNamespace(**fake.auth_settings()), credentials_factory=fake.credentials_factory())


def _activity(payload: dict[str, Any]) -> Activity:
    return Activity().deserialize(payload)


# --- TLS and metadata ----------------------------------------------------------------------


def test_metadata_and_endorsed_keys_are_served_over_trusted_https(fake: FakeBotFramework) -> None:
    metadata = requests.get(fake.openid_metadata_url, timeout=5).json()
    assert metadata["issuer"] == CHANNEL_ISSUER
    assert metadata["id_token_signing_alg_values_supported"] == ["RS256"]
    keys = requests.get(metadata["jwks_uri"], timeout=5).json()["keys"]
    assert any("msteams" in key["endorsements"] for key in keys)
    assert all(key["kty"] == "RSA" and key["kid"] for key in keys)


def test_a_client_without_the_test_ca_refuses_the_fake(fake: FakeBotFramework) -> None:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(fake.openid_metadata_url, verify=certifi.where(), timeout=5)


# --- inbound: Bot Framework → bot ----------------------------------------------------------


async def test_a_signed_activity_authenticates(fake: FakeBotFramework) -> None:
    payload = fake.message("what is failing?")
    result = await _auth(fake).authenticate_request(
        _activity(payload), fake.sign_activity(payload)["Authorization"])
    claims = result.claims_identity.claims
    assert result.claims_identity.is_authenticated
    assert claims["aud"] == fake.app_id and claims["iss"] == CHANNEL_ISSUER
    assert claims["serviceurl"] == fake.service_url


@pytest.mark.parametrize(("how", "error", "match"), [
    ({"forged": True}, jwt.InvalidSignatureError, "Signature verification failed"),
    ({"expired": True}, jwt.ExpiredSignatureError, "expired"),  # beyond the 5 min leeway
    ({"audience": OTHER_APP}, PermissionError, "Invalid AppId"),
    ({"service_url": "https://evil.example/amer/"}, PermissionError, "serviceurl"),
    # signed with a key the JWKS endorses for directline/webchat only, not msteams
    ({"endorsement": "directline"}, Exception, "Could not validate endorsement key"),
])
async def test_a_badly_signed_activity_is_rejected(fake: FakeBotFramework, how: dict[str, Any],
                                                   error: type[Exception], match: str) -> None:
    payload = fake.message("hi")
    header = fake.sign_activity(payload, **how)["Authorization"]
    with pytest.raises(error, match=match):
        await _auth(fake).authenticate_request(_activity(payload), header)


async def test_an_unsigned_activity_is_rejected(fake: FakeBotFramework) -> None:
    with pytest.raises(PermissionError, match="Unauthorized"):
        await _auth(fake).authenticate_request(_activity(fake.message("hi")), None)


async def test_another_issuer_is_rejected(fake: FakeBotFramework) -> None:
    payload = fake.message("hi")
    token = fake.sign_activity(payload)["Authorization"].split()[1]
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "iss": "https://evil.example"}, "k" * 32, algorithm="HS256")
    with pytest.raises(PermissionError):
        await _auth(fake).authenticate_request(_activity(payload), f"Bearer {forged}")


# --- outbound: bot → Bot Framework ---------------------------------------------------------


def test_app_credentials_get_a_token_from_the_fake(fake: FakeBotFramework) -> None:
    token = fake.app_credentials().get_access_token()
    assert token in fake.issued_tokens
    request = fake.token_requests[-1]
    assert request.tenant == "botframework.com" and request.status == 200
    assert request.form["grant_type"] == "client_credentials"
    assert request.form["scope"] == "https://api.botframework.com/.default"


def test_a_wrong_secret_gets_an_aad_error(fake: FakeBotFramework) -> None:
    with pytest.raises(PermissionError, match=r"invalid_client.*AADSTS7000215"):
        fake.app_credentials(password="wrong").get_access_token()
    assert fake.token_requests[-1].status == 401


def test_a_single_tenant_bot_gets_its_token_from_its_tenant(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with running_botframework(tenant_id="tenant-1") as fake:
        for name, value in fake.trust_environ().items():
            monkeypatch.setenv(name, value)
        assert fake.app_credentials().get_access_token() in fake.issued_tokens
        assert fake.token_requests[-1].tenant == "tenant-1"


async def test_a_reply_through_the_authenticated_connector_is_recorded(
        fake: FakeBotFramework) -> None:
    payload = fake.message("status?")
    activity = _activity(payload)
    result = await _auth(fake).authenticate_request(
        activity, fake.sign_activity(payload)["Authorization"])
    client = await result.connector_factory.create(activity.service_url, result.audience)
    async with client:
        sent = await client.conversations.reply_to_activity(
            activity.conversation.id, activity.id,
            Activity(type="message", text="checkout is failing", reply_to_id=activity.id))
    call = fake.calls[-1]
    assert call.kind == "reply" and call.authorized and call.status == 201
    assert call.conversation_id == payload["conversation"]["id"]
    assert call.activity_id == payload["id"]
    assert call.body["text"] == "checkout is failing"
    assert sent.id == call.response["id"]


async def test_send_update_and_create_a_thread(fake: FakeBotFramework) -> None:
    async with ConnectorClient(fake.app_credentials(), base_url=fake.service_url) as client:
        sent = await client.conversations.send_to_conversation(
            "19:chan@thread.tacv2", Activity(type="message", text="incident opened"))
        await client.conversations.update_activity(
            "19:chan@thread.tacv2", sent.id,
            Activity(type="message", id=sent.id, text="incident resolved"))
        thread = await client.conversations.create_conversation(ConversationParameters(
            is_group=True, tenant_id="tenant-1", channel_data={"channel": {
                "id": "19:chan@thread.tacv2"}}, activity=Activity(type="message", text="INC-7")))
    assert [c.kind for c in fake.calls] == ["send", "update", "create_conversation"]
    assert fake.calls[1].activity_id == sent.id
    assert thread.id == f"19:chan@thread.tacv2;messageid={thread.activity_id}"
    assert fake.calls[2].body["activity"]["text"] == "INC-7"


def test_the_connector_refuses_tokens_it_did_not_issue(fake: FakeBotFramework) -> None:
    url = fake.service_url + "v3/conversations/a%3A1/activities"
    response = requests.post(url, json={"type": "message"}, timeout=5,
                             headers={"Authorization": "Bearer not-a-token"})
    assert response.status_code == 401
    assert response.json() == {"message": "Authorization has been denied for this request."}
    assert not fake.calls[-1].authorized


async def test_throttling_answers_429_with_retry_after(fake: FakeBotFramework) -> None:
    fake.throttle_next(1, retry_after=1)
    async with ConnectorClient(fake.app_credentials(), base_url=fake.service_url) as client:
        with pytest.raises(ErrorResponseException) as caught:
            await client.conversations.send_to_conversation(
                "a:1", Activity(type="message", text="first"))
        again = await client.conversations.send_to_conversation(
            "a:1", Activity(type="message", text="second"))
    assert caught.value.response.status_code == 429
    assert caught.value.response.headers["Retry-After"] == "1"
    assert [c.status for c in fake.calls] == [429, 201]
    assert again.id == fake.calls[-1].response["id"]


# --- activity shapes -----------------------------------------------------------------------


def test_a_channel_message_mentions_the_bot_like_teams(fake: FakeBotFramework) -> None:
    activity = _activity(fake.message("why is checkout slow?", reply_to_id="1700000000000"))
    assert activity.text == "<at>SRE Copilot</at> why is checkout slow?"
    # botbuilder strips the <at> tag, not the space after it
    assert TurnContext.remove_recipient_mention(activity).strip() == "why is checkout slow?"
    assert teams_get_channel_id(activity) == "19:chan@thread.tacv2"
    assert teams_get_team_info(activity).id == "19:team@thread.tacv2"
    assert activity.channel_data["tenant"]["id"] == "tenant-1" and activity.reply_to_id
    # Teams sends conversation.tenantId; botbuilder-python's model reads "tenantID"
    assert activity.conversation.tenant_id is None


def test_personal_install_invoke_and_submit_shapes(fake: FakeBotFramework) -> None:
    personal = _activity(fake.personal_message("hello"))
    assert personal.conversation.conversation_type == "personal"
    assert not personal.get_mentions() and personal.text == "hello"
    installed = _activity(fake.conversation_update_installed("19:team@thread.tacv2",
                                                             "19:general@thread.tacv2"))
    assert installed.type == "conversationUpdate"
    assert installed.members_added[0].id == installed.recipient.id == f"28:{fake.app_id}"
    invoke = _activity(fake.invoke_action({"incident": "INC-7"}, verb="ack"))
    assert invoke.type == "invoke" and invoke.name == "adaptiveCard/action"
    assert invoke.value["action"] == {"type": "Action.Execute", "verb": "ack",
                                      "data": {"incident": "INC-7"}}
    submit = _activity(fake.message_submit({"choice": "rollback"}))
    assert submit.type == "message" and submit.value == {"choice": "rollback"}
    assert submit.text is None
