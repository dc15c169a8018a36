"""Adaptive Cards as Teams shows them: rendered by Microsoft's `adaptivecards` JavaScript renderer
(with markdown-it for the Markdown subset) in headless Chromium at Teams' card width, saved as a
screenshot under `.artifacts/cards/` for people to look at, and the rendered page returned for
assertions (its text, and how many images really loaded).

The renderer comes from the npm registry into `~/.cache/sre-copilot/cardjs` (`.ci/run` installs
it, and Chromium, in CI); where neither can be had, `unavailable()` says why."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / ".artifacts" / "cards"
CARDJS = Path(os.environ.get("SRE_COPILOT_CARDJS",
                             Path.home() / ".cache" / "sre-copilot" / "cardjs"))
PACKAGES = ("adaptivecards@3.0.6", "markdown-it@14.1.0")
WIDTH = 540  # a Teams channel card's width in pixels
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# Teams' look, in the host config's terms: its font, sizes and colours (the subset that matters
# for reading the layout).
HOST_CONFIG: dict[str, Any] = {
    "fontFamily": "Segoe UI, Helvetica Neue, sans-serif",
    "spacing": {"small": 4, "default": 8, "medium": 16, "large": 20, "extraLarge": 24,
                "padding": 16},
    "fontSizes": {"small": 12, "default": 14, "medium": 14, "large": 18, "extraLarge": 24},
    "containerStyles": {
        "default": {"backgroundColor": "#FFFFFF",
                    "foregroundColors": {"default": {"default": "#242424", "subtle": "#616161"},
                                         "attention": {"default": "#C4314B"},
                                         "warning": {"default": "#835B00"},
                                         "good": {"default": "#237B4B"}}},
        "emphasis": {"backgroundColor": "#F5F5F5",
                     "foregroundColors": {"default": {"default": "#242424",
                                                      "subtle": "#616161"}}}},
    "actions": {"maxActions": 6, "buttonSpacing": 8, "actionsOrientation": "horizontal"},
    "imageSizes": {"small": 32, "medium": 52, "large": 160},
}


@dataclass(frozen=True)
class Rendered:
    screenshot: Path
    text: str  # the rendered page's visible text
    images_loaded: int
    errors: list[str]


def chromium() -> str | None:
    return next((found for name in CHROMIUM if (found := shutil.which(name))), None)


def unavailable() -> str | None:
    """Why cards cannot be rendered here, or None."""
    if chromium() is None:
        return "no Chromium (Debian package `chromium`)"
    if not (CARDJS / "node_modules" / "adaptivecards").is_dir():
        npm = shutil.which("npm")
        if npm is None:
            return "no `adaptivecards` renderer and no npm to install it"
        CARDJS.mkdir(parents=True, exist_ok=True)
        done = subprocess.run([npm, "install", "--silent", "--no-audit", "--no-fund",
                               "--prefix", str(CARDJS), *PACKAGES],
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            return f"npm could not install {' '.join(PACKAGES)}: {done.stderr[-500:]}"
    return None


def render(cards: list[dict[str, Any]], name: str) -> Rendered:
    """Render `cards` one under the other, screenshot them to `.artifacts/cards/<name>.png`."""
    browser = chromium()
    assert browser is not None, unavailable()
    modules = CARDJS / "node_modules"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>rendering</title>
<link rel="stylesheet" href="{(modules / 'adaptivecards/dist/adaptivecards.css').as_uri()}">
<script src="{(modules / 'markdown-it/dist/markdown-it.min.js').as_uri()}"></script>
<script src="{(modules / 'adaptivecards/dist/adaptivecards.min.js').as_uri()}"></script>
<style>body {{ margin: 8px; width: {WIDTH}px; background: #f5f5f5; }}
.card {{ background: #fff; border: 1px solid #e0e0e0; border-radius: 4px; margin-bottom: 12px;
         overflow: hidden; }}</style></head><body>
<div id="cards"></div><pre id="errors"></pre>
<script>
const md = window.markdownit({{linkify: false, breaks: false}});
AdaptiveCards.AdaptiveCard.onProcessMarkdown = (text, result) => {{
  result.outputHtml = md.render(text); result.didProcess = true; }};
const payloads = {json.dumps(cards)};
const errors = [];
for (const payload of payloads) {{
  const card = new AdaptiveCards.AdaptiveCard();
  card.hostConfig = new AdaptiveCards.HostConfig({json.dumps(HOST_CONFIG)});
  const context = new AdaptiveCards.SerializationContext();
  card.parse(payload, context);
  for (let i = 0; i < context.eventCount; i++) errors.push(context.getEventAt(i).message);
  const div = document.createElement("div"); div.className = "card";
  div.appendChild(card.render()); document.getElementById("cards").appendChild(div);
}}
document.getElementById("errors").textContent = errors.join("\\n");
function count() {{
  const imgs = [...document.images];
  document.title = "images:" + imgs.filter(i => i.complete && i.naturalWidth > 0).length;
}}
window.addEventListener("load", count); setTimeout(count, 1500);
</script></body></html>"""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    shot = ARTIFACTS / f"{name}.png"
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / f"{name}.html"
        source.write_text(page)
        common = [browser, "--headless", "--no-sandbox", "--disable-gpu",
                  "--hide-scrollbars", "--allow-file-access-from-files",
                  "--virtual-time-budget=4000", f"--user-data-dir={tmp}/profile"]
        dom = subprocess.run([*common, "--dump-dom", source.as_uri()], capture_output=True,
                             text=True, timeout=120, check=True).stdout
        height = 400 + 60 * len(re.findall(r'class="ac-textBlock"', dom)) + \
            sum(int(h) for h in re.findall(r'<img[^>]*height="(\d+)"', dom))
        subprocess.run([*common, f"--screenshot={shot}",
                        f"--window-size={WIDTH + 16},{min(max(height, 800), 6000)}",
                        source.as_uri()], capture_output=True, timeout=120, check=True)
    title = re.search(r"<title>images:(\d+)</title>", dom)
    errors = re.search(r'<pre id="errors">(.*?)</pre>', dom, re.S)
    cards_html = dom[dom.index('<div id="cards">'):dom.index('<pre id="errors">')]
    visible = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style)[^>]*>.*?</\1>",
                                                          " ", cards_html, flags=re.S)))
    return Rendered(screenshot=shot, text=re.sub(r"\s+", " ", visible).strip(),
                    images_loaded=int(title.group(1)) if title else 0,
                    errors=[e for e in (errors.group(1).strip() if errors else "").split("\n")
                            if e])
