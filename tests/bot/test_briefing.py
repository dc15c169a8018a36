"""The briefing a person reads at 3 a.m., on the bundled demo incident (`sre-copilot demo`
writes it as Slack and Teams get it): the verdict first — the cause, how sure, the next step
with its runbook link — evidence as readable lines with their queries behind links, only the
hypotheses worth a look with buttons, and the chart shown on both platforms. The Teams cards are
rendered with Microsoft's renderer in headless Chromium (screenshots in `.artifacts/cards/`);
the live-Prometheus incident is checked the same way in test_slack_scenario.py and
test_teams_scenario.py."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.bot.card_screens import render, unavailable
from tests.bot.test_cli import _run

pytestmark = pytest.mark.slow
LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    where = tmp_path_factory.mktemp("demo")
    done = _run(["demo"], where, timeout=300)
    assert done.returncode == 0, done.stderr
    return where / ".sre-copilot" / "demo"


def visible(mrkdwn: str) -> str:
    """What Slack shows of mrkdwn: a link's label, not its address."""
    return LINK.sub(lambda m: m.group(2), mrkdwn)


def slack_texts(messages: list[dict[str, Any]]) -> list[str]:
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "mrkdwn":
                out.append(node["text"])
            elif node.get("type") != "actions":
                for value in node.values():
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk([m["blocks"] for m in messages])
    return out


def test_the_demo_briefing_in_slack_leads_with_the_verdict(demo: Path) -> None:
    messages = json.loads((demo / "INC-1-slack.json").read_text())
    first = messages[0]["blocks"][0]["text"]["text"].split("\n")
    cause, sure, step = first  # three lines, nothing before them
    assert cause.startswith("🎯 *Likely cause:* checkout deploy") and "v2.14.0" in cause
    assert re.search(r"\d\d:\d\d UTC", cause)  # since when, with its zone
    assert sure.startswith("📊 *How sure:* 99%")
    assert step.startswith("👉 *Next step:*") and "roll back" in step
    assert "<https://runbooks.shop.internal/CheckoutHighErrorRate|" in step
    assert messages[0]["text"].startswith("Likely cause: checkout deploy")  # the notification
    shown = " ".join(visible(t) for t in slack_texts(messages))
    for raw in ("rate(", "build_info", "ev-", "change_unix", "baseline=", "robust z",
                "not available here", "PAGERDUTY_API_TOKEN"):
        assert raw not in shown, raw
    buttons = [e for m in messages for b in m["blocks"] if b["type"] == "actions"
               for e in b["elements"]]
    assert [json.loads(b["value"])["n"] for b in buttons] == [1, 1]  # only the 99 % one
    assert "1 more below 20%: frontend latency 1%" in shown
    links = [m.group(1) for t in slack_texts(messages) for m in LINK.finditer(t)]
    assert any("/graph?g0.expr=" in u and "prometheus.shop.internal" in u for u in links)


def test_the_demo_briefing_in_teams_shows_verdict_and_chart(demo: Path) -> None:
    why = unavailable()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot render Adaptive Cards: {why}")
        pytest.skip(why)
    cards = json.loads((demo / "INC-1-teams.json").read_text())
    shown = render(cards, "demo-briefing-teams")
    assert shown.errors == []
    assert shown.text.startswith("🎯 Likely cause: checkout deploy: version v2.13.2 → v2.14.0")
    _cause, rest = shown.text.split("📊 How sure:", 1)
    sure, step = rest.split("👉 Next step:", 1)
    assert sure.strip().startswith("99%")
    assert "roll back" in step and "CheckoutHighErrorRate § Mitigation" in step
    assert shown.images_loaded == 1  # the chart, inline
    for raw in ("rate(", "build_info", "ev-", "robust z", "not available here"):
        assert raw not in shown.text, raw
    assert "not shown" not in shown.text and "1 more below 20%" in shown.text
    assert shown.screenshot.stat().st_size > 10_000
