"""The fake Slack against the real clients: slack_sdk's AsyncWebClient (messages, threads,
errors, auth, rate-limit retries, files_upload_v2) and slack-bolt's AsyncApp (signed events,
commands and actions dispatched to listeners that call the fake back)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.signature import SignatureVerifier
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.slack_api import (
    FakeSlack,
    app_mention,
    channel_created,
    member_joined_channel,
    message,
    reaction_added,
    running_slack,
    sign,
    url_verification,
)

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with running_slack() as fake:
        fake.add_user("alice", id="U0ALICE", email="alice@example.com", real_name="Alice Ng")
        fake.add_channel("incidents", id="C0INC", members=["U0ALICE"])
        yield fake


def client(fake: FakeSlack, token: str | None = None, **kwargs: Any) -> AsyncWebClient:
    return AsyncWebClient(token=token or fake.bot_token, base_url=fake.base_url + "/api/",
                          **kwargs)


def error_of(exc: pytest.ExceptionInfo[SlackApiError]) -> Any:
    return exc.value.response["error"]


# --- Web API -------------------------------------------------------------------------------


async def test_post_reply_update_and_read_back(fake: FakeSlack) -> None:
    web = client(fake)
    first = await web.chat_postMessage(channel="C0INC", text="Checkout 5xx above 5%")
    reply = await web.chat_postMessage(channel="C0INC", text="Looking", thread_ts=first["ts"])
    assert first["channel"] == "C0INC" and first["ts"] == "1700000000.000100"
    assert float(reply["ts"]) > float(first["ts"])
    assert reply["message"]["thread_ts"] == first["ts"]
    assert first["message"]["bot_id"] == fake.bot_id

    updated = await web.chat_update(channel="C0INC", ts=first["ts"], text="Resolved")
    assert updated["ts"] == first["ts"] and updated["text"] == "Resolved"
    assert [(m.text, m.thread_ts) for m in fake.messages["C0INC"]] == [
        ("Resolved", None), ("Looking", first["ts"])]

    history = await web.conversations_history(channel="C0INC")
    assert [m["text"] for m in history["messages"]] == ["Resolved"]  # replies stay in threads
    assert history["messages"][0]["reply_count"] == 1
    thread = await web.conversations_replies(channel="C0INC", ts=first["ts"])
    assert [m["text"] for m in thread["messages"]] == ["Resolved", "Looking"]
    one = await web.conversations_history(channel="C0INC", latest=first["ts"], inclusive=True,
                                          limit=1)
    assert [m["ts"] for m in one["messages"]] == [first["ts"]]
    link = await web.chat_getPermalink(channel="C0INC", message_ts=reply["ts"])
    assert link["permalink"].startswith("https://acme.slack.com/archives/C0INC/p")
    assert f"thread_ts={first['ts']}" in link["permalink"]

    with pytest.raises(SlackApiError) as missing:
        await web.chat_update(channel="C0INC", ts="1.000000", text="x")
    assert error_of(missing) == "message_not_found"


async def test_history_newest_first_and_paginated(fake: FakeSlack) -> None:
    for n in range(5):
        fake.add_message("incidents", f"m{n}", user="U0ALICE")
    web = client(fake)
    page = await web.conversations_history(channel="C0INC", limit=2)
    assert [m["text"] for m in page["messages"]] == ["m4", "m3"] and page["has_more"]
    rest = await web.conversations_history(
        channel="C0INC", limit=10, cursor=page["response_metadata"]["next_cursor"])
    assert [m["text"] for m in rest["messages"]] == ["m2", "m1", "m0"] and not rest["has_more"]


async def test_channel_errors_and_membership(fake: FakeSlack) -> None:
    web = client(fake)
    with pytest.raises(SlackApiError) as unknown:
        await web.chat_postMessage(channel="C0NOPE", text="hi")
    assert error_of(unknown) == "channel_not_found"
    assert unknown.value.response.status_code == 200

    fake.add_channel("ops", id="C0OPS", is_member=False)
    fake.add_channel("public", id="C0PUB", is_member=False, post_without_join=True)
    fake.add_channel("secret", id="C0SEC", is_member=False, is_private=True)
    with pytest.raises(SlackApiError) as outside:
        await web.chat_postMessage(channel="C0OPS", text="hi")
    assert error_of(outside) == "not_in_channel"
    await web.chat_postMessage(channel="C0PUB", text="allowed without joining")
    with pytest.raises(SlackApiError) as private:
        await web.conversations_info(channel="C0SEC")
    assert error_of(private) == "channel_not_found"

    joined = await web.conversations_join(channel="C0OPS")
    assert joined["channel"]["is_member"] is True
    await web.chat_postMessage(channel="#ops", text="now I can")
    assert [m.subtype for m in fake.messages["C0OPS"]] == ["channel_join", None]


async def test_auth_errors_are_http_200(fake: FakeSlack) -> None:
    with pytest.raises(SlackApiError) as wrong:
        await client(fake, token="xoxb-wrong").chat_postMessage(channel="C0INC", text="hi")
    assert error_of(wrong) == "invalid_auth" and wrong.value.response.status_code == 200
    no_token = AsyncWebClient(base_url=fake.base_url + "/api/")
    with pytest.raises(SlackApiError) as missing:
        await no_token.auth_test()
    assert error_of(missing) == "not_authed"
    # The token may also come as a form field; `blocks` arrive JSON-encoded and are decoded.
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "*hi*"}}]
    await no_token.api_call("chat.postMessage", data={
        "token": fake.bot_token, "channel": "C0INC", "blocks": json.dumps(blocks)})
    call = fake.calls_to("chat.postMessage")[-1]
    assert call.params["blocks"] == blocks and "token" not in call.params
    assert fake.messages["C0INC"][-1].blocks == blocks


async def test_rate_limit_retried_by_the_retry_handler(fake: FakeSlack) -> None:
    fake.rate_limit_next("chat.postMessage", retry_after=0)
    web = client(fake, retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)])
    started = time.monotonic()
    sent = await web.chat_postMessage(channel="C0INC", text="after a 429")
    assert sent["ok"] and time.monotonic() - started < 2  # waits int(Retry-After) + random()
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [429, 200]

    fake.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(SlackApiError) as limited:
        await client(fake).chat_postMessage(channel="C0INC", text="no retry handler")
    assert limited.value.response.status_code == 429
    assert limited.value.response.headers["Retry-After"] == "7"
    assert error_of(limited) == "ratelimited"


async def test_scripted_errors_and_unknown_method(fake: FakeSlack) -> None:
    web = client(fake)
    fake.fail_next("chat.postMessage", "missing_scope")
    with pytest.raises(SlackApiError) as scope:
        await web.chat_postMessage(channel="C0INC", text="hi")
    assert scope.value.response["needed"] == "chat:write"
    assert "channels:read" in scope.value.response["provided"]
    fake.fail_next("conversations.info", "channel_not_found")
    with pytest.raises(SlackApiError):
        await web.conversations_info(channel="C0INC")
    assert (await web.conversations_info(channel="C0INC"))["channel"]["name"] == "incidents"
    with pytest.raises(SlackApiError) as unknown:
        await web.api_call("chat.postMesage")
    assert error_of(unknown) == "unknown_method"


async def test_channels_users_reactions_ephemeral(fake: FakeSlack) -> None:
    web = client(fake)
    created = await web.conversations_create(name="inc-42-checkout")
    channel = created["channel"]["id"]
    assert channel.startswith("C") and created["channel"]["is_member"]
    with pytest.raises(SlackApiError) as taken:
        await web.conversations_create(name="inc-42-checkout")
    assert error_of(taken) == "name_taken"
    await web.conversations_invite(channel=channel, users=["U0ALICE"])
    await web.conversations_setTopic(channel=channel, topic="Checkout 5xx")
    info = await web.conversations_info(channel=channel, include_num_members=True)
    assert info["channel"]["topic"]["value"] == "Checkout 5xx"
    assert info["channel"]["num_members"] == 2

    user = await web.users_lookupByEmail(email="alice@example.com")
    assert user["user"]["id"] == "U0ALICE"
    assert (await web.users_info(user="U0ALICE"))["user"]["profile"]["real_name"] == "Alice Ng"
    with pytest.raises(SlackApiError) as nobody:
        await web.users_lookupByEmail(email="bob@example.com")
    assert error_of(nobody) == "users_not_found"

    posted = await web.chat_postMessage(channel=channel, text="Status?")
    await web.reactions_add(channel=channel, timestamp=posted["ts"], name="eyes")
    assert fake.message(channel, posted["ts"]).reactions == {"eyes": [fake.bot_user_id]}
    with pytest.raises(SlackApiError) as again:
        await web.reactions_add(channel=channel, timestamp=posted["ts"], name="eyes")
    assert error_of(again) == "already_reacted"
    ephemeral = await web.chat_postEphemeral(channel=channel, user="U0ALICE", text="psst")
    assert fake.ephemerals[-1].message.ts == ephemeral["message_ts"]


async def test_files_upload_v2_into_a_thread(fake: FakeSlack) -> None:
    web = client(fake)
    parent = await web.chat_postMessage(channel="C0INC", text="Latency chart below")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    done = await web.files_upload_v2(channel="C0INC", thread_ts=parent["ts"], file=png,
                                     filename="chart.png", initial_comment="p99 latency")
    file_id = done["file"]["id"]
    assert fake.files[file_id].data == png and fake.files[file_id].channels == ["C0INC"]
    shared = fake.messages["C0INC"][-1]
    assert shared.thread_ts == parent["ts"] and shared.text == "p99 latency"
    assert shared.files and shared.files[0]["name"] == "chart.png"
    assert [c.method for c in fake.calls] == ["chat.postMessage", "files.getUploadURLExternal",
                                              "files.completeUploadExternal"]


# --- Slack → app ---------------------------------------------------------------------------


def bolt_request(body: bytes, secret: str = SECRET, **headers: str) -> AsyncBoltRequest:
    kind = "application/json" if body.startswith(b"{") else "application/x-www-form-urlencoded"
    return AsyncBoltRequest(body=body.decode(), headers={
        "content-type": kind, **sign(body, secret), **headers})


def test_sign_matches_slack_sdk_verifier() -> None:
    body = url_verification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P")
    headers = sign(body, SECRET)
    verifier = SignatureVerifier(SECRET)
    assert verifier.is_valid_request(body, headers)
    assert not verifier.is_valid_request(body + b" ", headers)
    assert not SignatureVerifier("other").is_valid_request(body, headers)
    stale = sign(body, SECRET, timestamp=int(time.time()) - 600)
    assert not verifier.is_valid_request(body, stale)


def test_event_builders_have_slacks_shapes() -> None:
    mention = app_mention("<@U0BOT> status", "C0INC", "1700000001.000100", "U0ALICE",
                          thread_ts="1700000000.000100")
    assert mention["type"] == "app_mention" and mention["thread_ts"] == "1700000000.000100"
    assert message("hi", "D0DM", "1.0", "U0ALICE", channel_type="im")["channel_type"] == "im"
    assert reaction_added("eyes", "C0INC", "1.0", "U0ALICE")["item"]["channel"] == "C0INC"
    assert channel_created("C0NEW", "inc-1", "U0ALICE")["channel"]["name"] == "inc-1"
    assert member_joined_channel("U0ALICE", "C0INC")["channel_type"] == "C"


async def test_bolt_app_answers_a_signed_mention_through_the_fake(fake: FakeSlack) -> None:
    app = AsyncApp(signing_secret=SECRET, client=client(fake), process_before_response=True)

    @app.event("app_mention")
    async def on_mention(event: dict[str, Any], say: Any) -> None:
        await say(text="On it", thread_ts=event["ts"])

    asked = fake.add_message("incidents", "<@U0BOT> what is firing?", user="U0ALICE")
    body = fake.event_callback(app_mention(asked.text, "C0INC", asked.ts, "U0ALICE"))
    response = await app.async_dispatch(bolt_request(body))
    assert response.status == 200
    assert len(fake.calls_to("auth.test")) == 1  # Bolt authorizes on the first request
    assert (fake.messages["C0INC"][-1].text, fake.messages["C0INC"][-1].thread_ts) == (
        "On it", asked.ts)

    assert (await app.async_dispatch(bolt_request(body, secret="wrong"))).status == 401
    challenge = await app.async_dispatch(bolt_request(url_verification("abc")))
    assert json.loads(challenge.body) == {"challenge": "abc"}


async def test_bolt_command_action_and_modal(fake: FakeSlack) -> None:
    # The brief's form: a token as well as a client works (Bolt logs that it uses the client's).
    app = AsyncApp(token=fake.bot_token, signing_secret=SECRET, client=client(fake),
                   process_before_response=True)

    @app.command("/incident")
    async def on_command(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        await ack()
        await respond(text=f"Opening {command['text']}", response_type="in_channel")

    @app.action("ack_alert")
    async def on_action(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(trigger_id=body["trigger_id"], view={
            "type": "modal", "callback_id": "ack", "title": {"type": "plain_text", "text": "Ack"},
            "blocks": []})

    command = fake.slash_command("/incident", "checkout down", "C0INC", "U0ALICE")
    assert (await app.async_dispatch(bolt_request(command))).status == 200
    assert [r.body["text"] for r in fake.responses] == ["Opening checkout down"]

    posted = fake.add_message("incidents", "Alert", user=fake.bot_user_id)
    action = fake.block_actions("ack_alert", "a1", "U0ALICE", "C0INC", posted.ts)
    assert (await app.async_dispatch(bolt_request(action))).status == 200
    assert fake.views[-1]["callback_id"] == "ack"

    used = fake.calls_to("views.open")[-1].params["trigger_id"]
    with pytest.raises(SlackApiError) as reused:
        await client(fake).views_open(trigger_id=used, view={
            "type": "modal", "title": {"type": "plain_text", "text": "x"}})
    assert error_of(reused) == "exchanged_trigger_id"

    @app.shortcut("summarize")
    async def on_shortcut(ack: Any, shortcut: dict[str, Any], respond: Any) -> None:
        await ack()
        await respond(text=f"Summary of {shortcut['message']['ts']}")

    shortcut = fake.message_action("summarize", "C0INC", posted.ts, posted.text, "U0ALICE")
    assert (await app.async_dispatch(bolt_request(shortcut))).status == 200
    assert fake.responses[-1].body["text"] == f"Summary of {posted.ts}"
