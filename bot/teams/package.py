"""The Teams app package an admin uploads: `manifest.json` (Teams app manifest schema v1.22)
with the bot — its scopes (team, group chat, personal) and command lists, the same commands
as Slack's `/sre` — the "Add to timeline" message action, and the app's two icons, drawn here
(a 192 × 192 colour icon and a 32 × 32 white outline on transparency, as Teams requires).
`sre-copilot teams package [--out FILE]`."""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from bot.conversation.standard import COMMANDS
from bot.teams.intake import ADD_TO_TIMELINE

MANIFEST_VERSION = "1.22"
SCHEMA = (f"https://developer.microsoft.com/json-schemas/teams/v{MANIFEST_VERSION}/"
          "MicrosoftTeams.schema.json")
ACCENT = "#1D3557"
GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

# What `@SRE Copilot <command>` understands, from the one command table (the same as Slack's
# `/sre`); Teams shows at most 10 commands per scope, so the list leaves out the rarest.
SHOWN_MAX = 10
LEFT_OUT = ("mitigated",)


def commands() -> list[dict[str, str]]:
    shown = [s for s in COMMANDS if s.word not in LEFT_OUT][:SHOWN_MAX]
    return [{"title": s.word, "description": s.about} for s in shown]


class PackageError(ValueError):
    """A setting the package needs is missing or malformed; the message says which."""


def manifest(app_id: str, *, version: str, domain: str | None = None) -> dict[str, Any]:
    if not GUID.match(app_id):
        raise PackageError(f"TEAMS_APP_ID {app_id!r} is not an app (client) id: expected a "
                           "GUID such as 00000000-0000-0000-0000-000000000000")
    scopes = ["team", "groupChat", "personal"]
    return {
        "$schema": SCHEMA,
        "manifestVersion": MANIFEST_VERSION,
        "version": version,
        "id": app_id,
        "developer": {"name": "SRE Copilot", "websiteUrl": "https://github.com/sre-copilot",
                      "privacyUrl": "https://github.com/sre-copilot/privacy",
                      "termsOfUseUrl": "https://github.com/sre-copilot/terms"},
        "name": {"short": "SRE Copilot", "full": "SRE Copilot — the on-call teammate"},
        "description": {
            "short": "Incident hypotheses, timelines and runbooks in your channel.",
            "full": ("SRE Copilot joins your incident channels: it pulls the alerts, metrics, "
                     "on-call data, runbooks and similar past incidents together, posts ranked "
                     "root-cause hypotheses with their evidence, keeps the timeline and drafts "
                     "the post-mortem. Mention it with a question or a command.")},
        "icons": {"color": "color.png", "outline": "outline.png"},
        "accentColor": ACCENT,
        "bots": [{
            "botId": app_id, "scopes": scopes, "supportsFiles": False,
            "isNotificationOnly": False,
            "commandLists": [{"scopes": scopes, "commands": commands()}],
        }],
        # The message action ("…" on a message → "Add to timeline"): Teams sends the message
        # as a `composeExtension/submitAction` invoke, and it goes on the incident's timeline.
        "composeExtensions": [{
            "botId": app_id,
            "commands": [{
                "id": ADD_TO_TIMELINE, "type": "action", "context": ["message"],
                "title": "Add to timeline",
                "description": "Put this message on the incident's timeline",
                "fetchTask": False,
                "parameters": [{"name": "note", "title": "Note",
                                "description": "What the timeline should say (optional)",
                                "inputType": "text"}]}],
        }],
        "permissions": ["identity", "messageTeamMembers"],
        # Resource-specific consent, granted by the team or chat owner at install: Teams then
        # sends the bot replies in threads it takes part in without an @mention (the bot
        # drops every other unmentioned message on arrival).
        "webApplicationInfo": {"id": app_id, "resource": f"api://botid-{app_id}"},
        "authorization": {"permissions": {"resourceSpecific": [
            {"name": "ChannelMessage.Read.Group", "type": "Application"},
            {"name": "ChatMessage.Read.Chat", "type": "Application"}]}},
        "validDomains": [domain] if domain else [],
    }


def _png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def color_icon() -> bytes:
    """192 × 192, full colour: a white pulse line on the accent colour."""
    image = Image.new("RGB", (192, 192), ACCENT)
    draw = ImageDraw.Draw(image)
    draw.line([(24, 104), (70, 104), (88, 56), (110, 142), (128, 88), (168, 88)],
              fill="white", width=12, joint="curve")
    return _png(image)


def outline_icon() -> bytes:
    """32 × 32, white on transparency (Teams' rule for the outline icon)."""
    image = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.line([(3, 17), (11, 17), (14, 9), (18, 24), (21, 14), (29, 14)],
              fill=(255, 255, 255, 255), width=2)
    return _png(image)


def write_package(out: Path, *, app_id: str | None, version: str = "1.0.0",
                  domain: str | None = None) -> Path:
    if not app_id:
        raise PackageError("set TEAMS_APP_ID to the Azure Bot's app (client) id first")
    text = json.dumps(manifest(app_id, version=version, domain=domain), indent=2)
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as package:
        package.writestr("manifest.json", text)
        package.writestr("color.png", color_icon())
        package.writestr("outline.png", outline_icon())
    return out
