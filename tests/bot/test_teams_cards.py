"""Teams Adaptive Card renderers: every card they make passes a validator of the schema's shape
and Teams' size limits; long text splits into cards in order, code kept monospace."""

from __future__ import annotations

import base64
import io
import json
import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from bot.agent.state import Answer, ToolRecord
from bot.conversation import vocabulary
from bot.teams import cards as tc
from bot.teams import layout, markdown
from bot.teams.layout import Card
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
ELEMENT_TYPES = {"TextBlock", "Container", "ColumnSet", "Column", "FactSet", "Image",
                 "ActionSet"}
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAC"
                       "hwGA60e6kgAAAABJRU5ErkJggg==")


# ---- the validator ---------------------------------------------------------------------------

def _action(action: dict[str, Any]) -> None:
    kind = action["type"]
    assert isinstance(action.get("title"), str) and action["title"], action
    if kind == "Action.Execute":
        assert isinstance(action["verb"], str) and action["verb"], action
        assert isinstance(action.get("data", {}), dict), action
    elif kind == "Action.OpenUrl":
        assert action["url"].startswith(("https://", "http://")), action
    else:
        assert kind == "Action.Submit", action
    assert action.get("style") in (None, "default", "positive", "destructive"), action


def _element(element: dict[str, Any]) -> int:
    """Checks one element and those inside it; returns how many there are."""
    kind = element["type"]
    assert kind in ELEMENT_TYPES, element
    count = 1
    if kind == "TextBlock":
        assert isinstance(element["text"], str) and element["text"].strip(), element
        assert len(element["text"]) <= layout.TEXT_MAX
        assert element.get("wrap") is True
    elif kind == "FactSet":
        assert 0 < len(element["facts"]) <= layout.FACTS_MAX
        for fact in element["facts"]:
            assert isinstance(fact["title"], str) and isinstance(fact["value"], str), fact
    elif kind == "Image":
        assert element["url"].startswith(("https://", "http://", "data:image/")), element
    elif kind == "ActionSet":
        assert element["actions"]
        for action in element["actions"]:
            _action(action)
    elif kind in ("Container", "Column"):
        assert element["items"]
        count += sum(_element(e) for e in element["items"])
    elif kind == "ColumnSet":
        for column in element["columns"]:
            assert column["type"] == "Column"
            count += _element(column)
    return count


def validate(card: Card) -> Card:
    assert isinstance(card.text, str) and card.text.strip()
    assert len(card.text) <= layout.SUMMARY_MAX
    content = json.loads(json.dumps(card.content))  # plain JSON all the way down
    assert content["type"] == "AdaptiveCard"
    assert content["version"] == "1.5"
    assert content["$schema"] == "http://adaptivecards.io/schemas/adaptive-card.json"
    assert content["msteams"] == {"width": "Full"}
    assert content["body"]
    assert sum(_element(e) for e in content["body"]) <= layout.CARD_ELEMENTS_MAX
    for action in content.get("actions", []):
        _action(action)
    assert len(json.dumps(card.content, ensure_ascii=False).encode()) < layout.CARD_BYTES_MAX
    assert len(json.dumps(card.content).encode()) < layout.CARD_BYTES_MAX  # ASCII-escaped too
    assert layout.attachment(card) == {"contentType": "application/vnd.microsoft.card.adaptive",
                                   "content": card.content}
    return card


def validate_all(cards: list[Card]) -> list[Card]:
    assert cards
    for card in cards:
        validate(card)
    return cards


def walk(cards: list[Card], kind: str) -> list[dict[str, Any]]:
    """Every element (or action) of `kind`, in order, inside containers and action sets too."""
    found: list[dict[str, Any]] = []

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == kind:
                found.append(node)
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    for card in cards:
        visit(card.content)
    return found


def texts(cards: list[Card]) -> list[str]:
    return [e["text"] for e in walk(cards, "TextBlock")]


def executes(cards: list[Card]) -> list[dict[str, Any]]:
    return walk(cards, "Action.Execute")


# ---- factories -----------------------------------------------------------------------------

def make_answer(text: str = "Checkout is failing.", **kw: Any) -> Answer:
    return Answer(text=text, route="question", brain="claude", **kw)


def make_incident(status: str = "triggered", **kw: Any) -> Incident:
    fields: dict[str, Any] = {
        "id": 12, "org_id": 1, "title": "CheckoutHighErrorRate", "service": "checkout",
        "severity": "critical", "status": status, "source": "alertmanager",
        "triggered_at": T0} | kw
    return Incident(**fields)


def make_alert(n: int, status: str = "firing") -> Alert:
    return Alert(org_id=1, fingerprint=f"f{n}", alertname=f"Alert{n}", status=status,
                 severity="critical", starts_at=T0 + timedelta(seconds=n),
                 annotations={"summary": f"error ratio {n} > 5%"})


def long_markdown(size: int = 60_000) -> str:
    parts, n = [], 0
    while sum(map(len, parts)) < size:
        n += 1
        parts.append(f"Paragraph {n}: the **error ratio** for checkout rose to {n}% because "
                     "the pool was exhausted; see [dash](https://g.io/d?x=1&y=2). " * 4)
        if n % 3 == 0:
            parts.append("- first point\n- second point\n  continued")
        if n % 4 == 0:
            parts.append("```python\n" + "\n".join(
                f"    line_{n}_{i} = query('rate(http_requests_total[5m])') < {i}"
                for i in range(30)) + "\n```")
    return "\n\n".join(parts)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text)


def _without_fences(markdown: str) -> str:
    return "\n".join(line for line in markdown.splitlines() if not line.startswith("```"))


# ---- Markdown ------------------------------------------------------------------------------

def test_markdown_keeps_teams_subset_and_makes_code_monospace() -> None:
    body = markdown.markdown_body("# Root **cause**\n**Deploy** broke it: a < b & c, see "
                            "[dash](https://g.io/d?a=1&b=2) or <https://x.io>.\nsecond line\n"
                            "* one\n* two\n\n1. first\n2. second\n"
                            "```python\ndef f():\n    return a**2\n\n```\n| a | b |\n|---|---|")
    [prose, code, table] = body
    # A table is a list (Teams has none; a monospace grid wraps into pipes).
    assert isinstance(prose, dict) and isinstance(code, tuple) and isinstance(table, dict)
    assert prose["text"] == (
        "**Root cause**\n\n**Deploy** broke it: a < b & c, see [dash](https://g.io/d?a=1&b=2) "
        "or [https://x.io](https://x.io).\n\nsecond line\n\n- one\n- two\n\n1. first\n2. second")
    assert "fontType" not in prose
    [code_block] = code
    assert code_block["fontType"] == "Monospace"
    assert code_block["text"] == "def f():\n\n\u00a0\u00a0\u00a0\u00a0return a**2"
    assert table["text"] == "- a · b"


def test_split_text_cuts_at_paragraphs_lines_then_words() -> None:
    text = "\n\n".join(f"para {i} " + "word " * 100 for i in range(30))
    pieces = layout.split_text(text, 1000)
    assert all(len(p) <= 1000 for p in pieces)
    assert all(p.startswith("para ") for p in pieces)
    assert _normalise("".join(pieces)) == _normalise(text)
    hard = layout.split_text("x" * 2500, 1000)
    assert [len(p) for p in hard] == [1000, 1000, 500]


def test_a_long_answer_splits_into_cards_in_order() -> None:
    markdown = long_markdown()
    assert len(markdown) >= 60_000
    cards = validate_all(tc.answer_cards(make_answer(markdown)))
    assert len(cards) >= 3
    shown = texts(cards)[:-1]  # the footer last
    assert _normalise("".join(shown)) == _normalise(_without_fences(markdown))
    assert cards[0].text == vocabulary.clip(markdown, layout.SUMMARY_MAX)
    assert all(c.text.strip() for c in cards[1:])
    # Each code block (30 lines) sits whole on one card, monospace.
    for card in cards:
        for block in walk([card], "TextBlock"):
            if block.get("fontType") == "Monospace":
                lines = block["text"].split("\n\n")
                assert lines[0].lstrip("\u00a0").startswith("line_") and lines[0].endswith("< 0")
                assert lines[-1].endswith("< 29") and len(lines) == 30
            else:
                assert "```" not in block["text"]


def test_a_code_block_longer_than_a_card_continues_monospace() -> None:
    code = "\n".join(f"{i:05d} " + "x" * 60 for i in range(1200))
    cards = validate_all(tc.answer_cards(make_answer(f"intro\n```\n{code}\n```\noutro")))
    assert len(cards) >= 3
    blocks = walk(cards, "TextBlock")
    assert blocks[0]["text"] == "intro" and blocks[-2]["text"] == "outro"
    mono = [b for b in blocks if b.get("fontType") == "Monospace"]
    assert len(mono) >= 25 and mono[0]["text"].startswith("00000 ")
    assert _normalise("".join(b["text"] for b in mono)) == _normalise(code)


# ---- answers -------------------------------------------------------------------------------

def test_twelve_hypotheses_carry_parseable_data() -> None:
    evidence = [Evidence(id=f"ev-{i}", source="prometheus", summary=f"5xx ratio {i}%",
                         query='sum(rate(x{code="500"}[5m]))', start=T0, end=T0,
                         values={"max": i / 10}, link="https://prom.io/g?a=1&b=(2)")
                for i in range(1, 30)]
    claims = [Claim(statement=f"Hypothesis {n}: " + "the pool is exhausted & " * 60,
                    confidence=n / 12, evidence_ids=[f"ev-{i}" for i in range(n, n + 12)],
                    next_check=f"check **pool** metric {n}") for n in range(1, 13)]
    answer = make_answer(claims=claims, evidence=evidence, notes=["model unavailable"],
                         tools=[ToolRecord(name="query", args={}, ok=True, elapsed_ms=1,
                                           summary="ok")] * 2
                         + [ToolRecord(name="logs", args={}, ok=False, elapsed_ms=1,
                                       summary="x")])
    cards = validate_all(tc.answer_cards(answer, incident_id=12))
    actions = executes(cards)
    # 8 % and 17 % are below the fold: no buttons, one line; Reject is not painted red.
    assert [a["verb"] for a in actions] == ["hypothesis_confirm", "hypothesis_reject"] * 10
    assert [a.get("style") for a in actions[:2]] == ["positive", None]
    data = [json.loads(json.dumps(a["data"])) for a in actions]
    assert [d["n"] for d in data] == [n for n in range(3, 13) for _ in (0, 1)]
    assert all(d["i"] == 12 and len(d["s"]) <= 150 for d in data)
    assert data[0]["s"] == claims[2].statement[:150]
    containers = [c for c in walk(cards, "Container") if c.get("style") != "emphasis"]
    assert len(containers) == 10
    for n, container in enumerate(containers, start=3):  # a hypothesis never splits
        items = container["items"]
        assert items[0]["text"].startswith(f"**{n}.** Hypothesis {n}")
        assert items[-1]["type"] == "ActionSet"
    first = containers[0]["items"]
    assert first[1]["text"] == "▰▰▱▱▱▱▱▱▱▱ 25%"
    cited = [i for i in first if i.get("isSubtle")]
    # Evidence reads as a finding with its query one click away: no ids, no PromQL.
    assert cited[0]["text"] == "• 5xx ratio 3% · [graph](https://prom.io/g?a=1&b=%282%29)"
    assert cited[0]["size"] == "Small" and len(cited) == 9
    assert cited[-1]["text"] == "… and 4 more"
    assert first[-2]["text"] == "🔎 **Next check:** check **pool** metric 3"
    body = texts(cards)
    assert body[0].startswith("🎯 **Likely cause:** Hypothesis 1")  # the verdict, first
    assert any(t.startswith("2 more below 20%: ") for t in body)
    assert not any("ev-" in t or "rate(" in t for t in body)
    assert "⚠ model unavailable" in body
    assert body[-1] == "🧠 claude · 🔧 query ×2, logs (1 failed)"


def test_without_an_incident_the_data_says_so() -> None:
    answer = make_answer(claims=[Claim(statement="Pool exhausted", evidence_ids=["ev-9"])])
    [card] = validate_all(tc.answer_cards(answer))
    assert [a["data"]["i"] for a in executes([card])] == [None, None]
    assert not any("ev-9" in t for t in texts([card]))  # an id is no reading matter


def test_a_chart_becomes_a_data_uri_image(tmp_path: Path) -> None:
    chart = tmp_path / "error_ratio.png"
    chart.write_bytes(PNG)
    [card] = validate_all(tc.answer_cards(make_answer(images=[chart])))
    [image] = walk([card], "Image")
    assert image["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert image["altText"] == "Chart: error_ratio"
    assert texts([card])[-1] == "🧠 claude · 📈 1 chart(s)"
    [hosted] = validate_all(tc.answer_cards(
        make_answer(images=[chart]), image_url=lambda p: f"https://files.io/{p.name}"))
    assert walk([hosted], "Image")[0]["url"] == "https://files.io/error_ratio.png"


def _noise_png(width: int, height: int) -> bytes:
    """An image no palette or scaling brings under a card's limit."""
    out = io.BytesIO()
    Image.frombytes("RGB", (width, height), os.urandom(width * height * 3)).save(out, "PNG")
    return out.getvalue()


def test_a_real_chart_over_the_limit_is_re_encoded_to_fit(tmp_path: Path) -> None:
    from matplotlib.figure import Figure  # no pyplot: it would stay in sys.modules

    fig = Figure(figsize=(12, 5), dpi=110)
    ax = fig.add_subplot()
    t = np.arange(2000)
    for k in range(4):
        ax.plot(t, np.sin(t / (40 + 9 * k)) + 0.3 * np.random.default_rng(k).normal(size=2000))
    ax.set_title("checkout errors")
    chart = tmp_path / "signals.png"
    fig.savefig(chart)
    assert chart.stat().st_size > layout.IMAGE_URL_MAX  # as made, a data URI would not fit
    [card] = validate_all(tc.answer_cards(make_answer(images=[chart])))
    [image] = walk([card], "Image")
    png = base64.b64decode(image["url"].removeprefix(layout.DATA_URI_PREFIX))
    assert len(image["url"]) <= layout.IMAGE_URL_MAX
    shown = Image.open(io.BytesIO(png))
    assert shown.format == "PNG" and shown.width >= 600  # still a readable chart


def test_a_chart_too_big_for_a_card_is_left_out_with_a_note(tmp_path: Path) -> None:
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    small.write_bytes(PNG)
    big.write_bytes(_noise_png(1000, 800))
    cards = validate_all(tc.answer_cards(make_answer(images=[big, small, tmp_path / "gone.png"])))
    assert len(walk(cards, "Image")) == 1
    notes = [t for t in texts(cards) if t.startswith("⚠")]
    assert re.match(r"⚠ Chart big.png not shown: \d+ KB is too large", notes[0])
    assert notes[1].startswith("⚠ Chart gone.png not shown: it could not be read")


def test_an_image_url_that_is_too_long_is_skipped(tmp_path: Path) -> None:
    cards = validate_all(tc.answer_cards(make_answer(images=[tmp_path / "a.png"]),
                                         image_url=lambda p: "https://x.io/" + "a" * 30_000))
    assert not walk(cards, "Image")
    assert any("its URL is too large" in t for t in texts(cards))


# ---- incidents -----------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "expected"), [
    ("triggered", ["incident_ack", "incident_mitigated", "incident_resolve"]),
    ("acknowledged", ["incident_mitigated", "incident_resolve"]),
    ("investigating", ["incident_mitigated", "incident_resolve"]),
    ("mitigated", ["incident_resolve"]),
    ("resolved", []),
])
def test_incident_buttons_follow_the_status(status: str, expected: list[str]) -> None:
    resolved = {"resolved_at": T0 + timedelta(hours=1)} if status == "resolved" else {}
    card = validate(tc.incident_card(make_incident(status, **resolved), []))
    actions = card.content["actions"]
    assert [a["verb"] for a in actions] == expected
    assert all(a["type"] == "Action.Execute" and a["data"] == {"incident": 12} for a in actions)
    head = card.content["body"][0]["text"]
    assert head.startswith("✅ INC-12 · " if status == "resolved" else "🔥 INC-12 · ")


def test_incident_card_facts_alerts_hypotheses_and_runbook() -> None:
    incident = make_incident(pagerduty_url="https://pd.io/incidents/P1?a=1&b=2",
                             title="T" * 300)
    alerts = [make_alert(n) for n in range(14)] + [make_alert(99, "resolved")]
    card = validate(tc.incident_card(
        incident, alerts, now=T0 + timedelta(minutes=4),
        hypotheses=[Claim(statement=f"cause {n}", confidence=0.5) for n in range(5)],
        runbook="https://runbooks.io/checkout"))
    body = card.content["body"]
    assert body[0]["text"].startswith("🔥 INC-12 · TTT") and body[0]["text"].endswith("…")
    facts = {f["title"]: f["value"] for f in body[1]["facts"]}
    assert facts == {"Status": "🔴 triggered", "Severity": "critical", "Service": "checkout",
                     # The reader's own zone, as the alert lines below; no frozen duration.
                     "Triggered": "{{DATE(2024-05-01T12:00:00Z, SHORT)}} "
                                  "{{TIME(2024-05-01T12:00:00Z)}}",
                     "PagerDuty": "[open incident](https://pd.io/incidents/P1?a=1&b=2)"}
    shown = "\n".join(texts([card]))
    assert "**Firing alerts (14)**" in shown and "Alert99" not in shown
    assert "- 🔥 **Alert0** · critical · since {{TIME(2024-05-01T12:00:00Z)}} — error ratio 0" \
        in shown
    assert "Alert9**" in shown and "Alert10**" not in shown and "- … and 4 more" in shown
    assert "1. cause 0 — 50%\n2. cause 1 — 50%\n3. cause 2 — 50%" in shown
    assert "📘 **Runbook:** [open](https://runbooks.io/checkout)" in shown
    assert card.text == f"INC-12 (triggered): {'T' * 300} — checkout"[:layout.SUMMARY_MAX]
    resolved = validate(tc.incident_card(make_incident(
        "resolved", resolved_at=T0 + timedelta(hours=1, minutes=5)), [],
        runbook="# Checkout\n1. restart the pool\n2. check the DB"))
    facts = {f["title"]: f["value"] for f in resolved.content["body"][1]["facts"]}
    assert facts["Resolved after"] == "1h 05m" and "PagerDuty" not in facts
    assert "**Checkout**\n\n1. restart the pool\n2. check the DB" in texts([resolved])


def test_an_incident_card_of_huge_texts_is_still_one_card() -> None:
    alerts = [Alert(org_id=1, fingerprint=f"f{n}", alertname="🔥" * 200, status="firing",
                    starts_at=T0, annotations={"summary": "😀" * 500}) for n in range(30)]
    validate(tc.incident_card(make_incident(title="😀" * 500, service="s" * 200), alerts,
                              hypotheses=[Claim(statement="😀" * 2000)] * 3,
                              runbook="😀" * 5000))


# ---- timeline, post-mortem, progress, notices ----------------------------------------------

def test_a_300_event_timeline_splits_into_cards_in_order() -> None:
    events = [TimelineEntry(at=T0 + timedelta(minutes=10 * i), kind="note", source="slack",
                            summary=f"event {i} " + "details " * 30) for i in range(300)]
    view = TimelineView(incident_id=12, ref="INC-12", title="Checkout errors", status="mitigated",
                        service="checkout", triggered_at=T0, events=events,
                        time_to_acknowledge=timedelta(minutes=4),
                        time_to_mitigate=timedelta(hours=1), mitigated=True)
    cards = validate_all(tc.timeline_cards(view))
    assert len(cards) >= 2
    assert cards[0].text == "Timeline of INC-12 “Checkout errors”: 300 event(s)"
    body = texts(cards)
    assert body[0] == "🕒 INC-12 · Checkout errors"
    assert body[1] == ("🔵 mitigated · checkout · triggered 2024-05-01 12:00 · acknowledged "
                       "after **4m 00s** · mitigated after **1h 00m** · times in UTC")
    facts = [f for fs in walk(cards, "FactSet") for f in fs["facts"]]
    assert [f["value"].split(" — ")[1].split()[1] for f in facts] == [str(i) for i in range(300)]
    assert facts[0] == {"title": "12:00:00", "value": f"📝 **note** — {events[0].summary}"}
    days = [t for t in body if re.fullmatch(r"\*\*\w{3} \d\d \w{3} 2024\*\*", t)]
    assert days == ["**Thu 02 May 2024**", "**Fri 03 May 2024**"]


def test_an_empty_timeline() -> None:
    view = TimelineView(incident_id=1, ref="INC-1", title="t", status="triggered",
                        triggered_at=T0)
    [card] = validate_all(tc.timeline_cards(view))
    assert texts([card])[-1] == "_No events recorded yet._"


def test_postmortem_card_summarises_the_sections() -> None:
    markdown = ("# Checkout outage\n\n## Summary\nCheckout failed for 20 minutes.\n\nMore.\n\n"
                "## Root cause\nThe **pool** was exhausted " + "really " * 200 + "\n\n"
                "## Action items\n- raise the pool size\n- alert on saturation\n")
    card = validate(tc.postmortem_card(markdown, ref="INC-12"))
    shown = texts([card])
    assert shown[:4] == ["📝 Post-mortem draft · INC-12", "**Checkout outage**", "**Summary**",
                         "Checkout failed for 20 minutes."]
    assert shown[5].startswith("The **pool** was exhausted") and shown[5].endswith("…")
    assert shown[7] == "- raise the pool size\n- alert on saturation"
    assert shown[-1] == "The full draft follows in this thread."
    assert card.text == "Post-mortem draft for INC-12: Checkout outage"
    bare = validate(tc.postmortem_card("just text\nand more", ref="INC-1"))
    assert texts([bare])[1] == "just text\n\nand more"


def test_progress_card_shows_each_tool() -> None:
    card = validate(tc.progress_card([("prometheus_query", "ok"), ("logs", "failed"),
                                      ("changes", "running")]))
    assert texts([card]) == ["**🔎 Investigating…**",
                             "✅ prometheus_query\n\n❌ logs\n\n⏳ changes"]
    done = validate(tc.progress_card([(f"t{i}", "ok") for i in range(50)] + [("x", "failed")]))
    assert texts([done])[0] == "**🔎 Investigated with 51 tool(s), 1 failed**"
    assert texts([done])[1].startswith("… 11 earlier\n\n✅ t11")
    assert texts([validate(tc.progress_card([]))]) == ["**🔎 Investigating…**"]


def test_notice_and_error_cards() -> None:
    notice = validate(tc.notice_card("INC-12 is now **acknowledged** (by Ana)"))
    assert texts([notice]) == ["INC-12 is now **acknowledged** (by Ana)"]
    error = validate(tc.error_card("I can't post here:\nthe app is not installed" + "!" * 5000))
    [block] = walk([error], "TextBlock")
    assert block["text"].startswith("⚠️ I can't post here:\n\nthe app") and block["color"] == \
        "Attention"
    assert len(error.text) <= layout.SUMMARY_MAX
    assert texts([validate(tc.notice_card(""))]) == ["…"]


# ---- split_cards ---------------------------------------------------------------------------

def test_split_cards_bounds_elements_and_keeps_actions_on_the_first() -> None:
    body = [layout.text_block(f"line {i}") for i in range(250)]
    action = layout.execute("Go", "go", {"x": 1})
    cards = validate_all(layout.split_cards(body, "summary", actions=[action]))
    assert [len(c.content["body"]) for c in cards] == [100, 100, 50]
    assert cards[0].content["actions"] == [action]
    assert all(c.content["actions"] == [] for c in cards[1:])
    assert texts(cards) == [f"line {i}" for i in range(250)]
    assert cards[0].text == "summary" and cards[1].text.startswith("line 100\nline 101")


def test_split_cards_moves_a_unit_whole_and_clips_what_never_fits() -> None:
    unit = tuple(layout.text_block("c" * 2900, fontType="Monospace") for _ in range(8))
    body = [layout.text_block("a" * 2900), layout.text_block("b" * 2900), unit,
            layout.fact_set([(f"t{i}", "v" * 200) for i in range(100)]),
            {"type": "Container", "items": [layout.text_block("😀" * 3000) for _ in range(3)]}]
    cards = validate_all(layout.split_cards(body, "s"))
    assert [b["text"][0] for b in cards[0].content["body"]] == ["a", "b"]
    assert [b["text"][0] for b in cards[1].content["body"][:8]] == ["c"] * 8
    assert [len(f["facts"]) for f in walk(cards, "FactSet")] == [40, 40, 20]
    [container] = walk(cards, "Container")
    assert all(len(i["text"]) < 3000 for i in container["items"])


def test_a_table_becomes_a_list_and_a_task_a_box() -> None:
    """Teams has no tables, and a monospace grid wraps into pipes at card width."""
    body = markdown.markdown_body("| Time | Event |\n|---|---|\n| 04:26 | deploy |\n"
                                  "| 04:30 | alert fired |\n\n- [ ] Roll back — owner:\n"
                                  "- [x] Page the owner")
    shown = [b["text"] for b in body if isinstance(b, dict)]
    assert shown == ["- Time · Event\n- 04:26 · deploy\n- 04:30 · alert fired\n"
                     "- ☐ Roll back — owner:\n- ☑ Page the owner"]
    assert not any(isinstance(b, tuple) or "|" in str(b) for b in body)


def test_the_postmortem_summary_says_the_root_cause_once_and_lists_actions() -> None:
    draft = ("# Postmortem: INC-1\n\n## Summary\n\nINC-1 affected checkout.\nRoot cause "
             "(unconfirmed): the v2.14.0 deploy broke tax rules.\n\n## Root cause\n\n"
             "**Unconfirmed:** the v2.14.0 deploy broke tax rules.\n\n## Action items\n\n"
             "- [ ] Gate deploys on error ratio. — owner:\n- [ ] Add a test. — owner: Bo\n")
    shown = texts([validate(tc.postmortem_card(draft, ref="INC-1"))])
    joined = "\n".join(shown)
    assert joined.count("broke tax rules") == 1
    assert "- Gate deploys on error ratio.\n- Add a test. — owner: Bo" in joined
    assert "[ ]" not in joined and "owner:\n" not in joined + "\n"
