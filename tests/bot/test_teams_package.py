"""`sre-copilot teams package`: the zip an admin uploads — a manifest with the bot, its scopes
and commands, and icons of the sizes Teams requires."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
APP_ID = "5f0d2a8e-3c1b-4e7a-9f6d-2b8c4a1e7d90"


def _cli(args: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("TEAMS_", "SRE_COPILOT"))}
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd, text=True,
                          capture_output=True, env={**clean, "PYTHONPATH": str(ROOT), **env},
                          timeout=60, check=False)


def test_package_has_the_manifest_and_icons(tmp_path: Path) -> None:
    out = tmp_path / "app.zip"
    done = _cli(["teams", "package", "--out", str(out), "--domain", "copilot.example.com"],
                tmp_path, TEAMS_APP_ID=APP_ID)
    assert done.returncode == 0, done.stderr
    with zipfile.ZipFile(out) as package:
        assert sorted(package.namelist()) == ["color.png", "manifest.json", "outline.png"]
        manifest = json.loads(package.read("manifest.json"))
        color = Image.open(io.BytesIO(package.read("color.png")))
        outline = Image.open(io.BytesIO(package.read("outline.png")))
    assert manifest["manifestVersion"] == "1.22" and "v1.22" in manifest["$schema"]
    assert manifest["id"] == APP_ID
    [bot] = manifest["bots"]
    assert bot["botId"] == APP_ID
    assert set(bot["scopes"]) == {"team", "groupChat", "personal"}
    titles = [c["title"] for c in bot["commandLists"][0]["commands"]]
    assert {"help", "status", "catchup", "hypotheses", "timeline", "postmortem", "runbook",
            "ask", "ack", "resolve"} <= set(titles) and len(titles) <= 10
    assert len(titles) <= 10  # Teams shows no more per scope
    [pin] = manifest["composeExtensions"][0]["commands"]
    assert pin["id"] == "addToTimeline" and pin["context"] == ["message"]
    assert manifest["validDomains"] == ["copilot.example.com"]
    # Replies in a thread the bot answered in reach it without a mention (RSC).
    rsc = {p["name"] for p in manifest["authorization"]["permissions"]["resourceSpecific"]}
    assert rsc == {"ChannelMessage.Read.Group", "ChatMessage.Read.Chat"}
    assert manifest["webApplicationInfo"]["id"] == APP_ID
    assert len(manifest["name"]["short"]) <= 30 and len(manifest["description"]["short"]) <= 80
    assert color.size == (192, 192)
    assert outline.size == (32, 32) and outline.mode == "RGBA"
    # The outline icon is white on transparency, nothing else.
    raw = outline.tobytes()
    pixels = {raw[i:i + 3] for i in range(0, len(raw), 4) if raw[i + 3]}
    assert pixels == {b"\xff\xff\xff"}


def test_without_an_app_id_it_says_what_to_set(tmp_path: Path) -> None:
    done = _cli(["teams", "package", "--out", str(tmp_path / "x.zip")], tmp_path)
    assert done.returncode == 2 and "TEAMS_APP_ID" in done.stderr
    bad = _cli(["teams", "package", "--out", str(tmp_path / "x.zip")], tmp_path,
               TEAMS_APP_ID="my-bot")
    assert bad.returncode == 2 and "GUID" in bad.stderr
    assert not (tmp_path / "x.zip").exists()
