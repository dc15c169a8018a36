"""The Slack app manifest asks for exactly what the bot uses: every event it listens to, the
/sre command, the shortcut, interactivity at the same Request URL, and the scopes it installs
with."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.intake import BOT_SCOPES, EVENTS, SHORTCUT

MANIFEST = Path(__file__).resolve().parents[2] / "bot" / "slack" / "manifest.yaml"
# Slack's event names in a manifest: `message` arrives through message.channels / .groups.
SUBSCRIBED_AS = {"message": {"message.channels", "message.groups"}}


def test_manifest_matches_what_the_bot_uses() -> None:
    manifest = yaml.safe_load(MANIFEST.read_text())
    settings = manifest["settings"]
    bot_events = set(settings["event_subscriptions"]["bot_events"])
    for event in EVENTS:
        assert SUBSCRIBED_AS.get(event, {event}) <= bot_events, event
    assert set(manifest["oauth_config"]["scopes"]["bot"]) == set(BOT_SCOPES)
    [command] = manifest["features"]["slash_commands"]
    assert command["command"] == "/sre"
    assert [s["callback_id"] for s in manifest["features"]["shortcuts"]] == [SHORTCUT]
    url = settings["event_subscriptions"]["request_url"]
    assert url.endswith("/slack/events")
    assert settings["interactivity"]["request_url"] == url == command["url"]
    assert manifest["features"]["bot_user"]["display_name"]
