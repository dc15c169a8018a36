"""Slack Block Kit renderers: every message they make passes a validator of Slack's limits and
required fields; Markdown becomes mrkdwn with untrusted text escaped."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.agent.state import Answer, ToolRecord
from bot.conversation import vocabulary
from bot.slack import blocks as sb
from bot.slack import layout, limits
from bot.slack import mrkdwn as md
from bot.slack.layout import Message
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
TEXT_TYPES = {"mrkdwn", "plain_text"}


# ---- the validator ---------------------------------------------------------------------------

def _text_object(obj: Any, limit: int, *, plain: bool = False) -> None:
    assert isinstance(obj, dict) and obj.get("type") in (
        {"plain_text"} if plain else TEXT_TYPES), obj
    text = obj["text"]
    assert isinstance(text, str) and text.strip(), obj
    assert len(text) <= limit, (len(text), limit)
    if obj["type"] == "mrkdwn":
        _well_formed(text)


def _well_formed(text: str) -> None:
    """Escaped as Slack requires: `<` only opens a `<…>` link or token, `&` only an entity;
    code fences balanced."""
    bare = re.sub(r"<[^<>\n]+>", "", text)
    assert "<" not in bare and ">" not in bare, text
    assert "&" not in re.sub(r"&(amp|lt|gt);", "", bare), text
    assert text.count("```") % 2 == 0, text


def _button(element: dict[str, Any]) -> None:
    assert element["type"] == "button"
    _text_object(element["text"], limits.BUTTON_TEXT_MAX, plain=True)
    assert 0 < len(element["action_id"]) <= limits.ID_MAX
    assert len(element.get("value", "")) <= limits.BUTTON_VALUE_MAX
    assert element.get("style") in (None, "primary", "danger")
    if "confirm" in element:
        confirm = element["confirm"]
        for key, limit in limits.CONFIRM_MAX.items():
            _text_object(confirm[key], limit, plain=True)


def validate(message: Message) -> None:
    assert isinstance(message.text, str) and message.text.strip()
    assert len(message.text) <= limits.FALLBACK_TEXT_MAX
    _well_formed(message.text)  # Slack reads the fallback as mrkdwn too: no stray pings
    assert 0 < len(message.blocks) <= limits.MAX_BLOCKS
    assert len(json.dumps(message.blocks, ensure_ascii=False)) <= limits.MESSAGE_BLOCKS_MAX
    block_ids = [b["block_id"] for b in message.blocks if "block_id" in b]
    assert len(block_ids) == len(set(block_ids))
    assert all(0 < len(i) <= limits.ID_MAX for i in block_ids)
    for block in message.blocks:
        kind = block["type"]
        if kind == "section":
            assert "text" in block or "fields" in block, block
            if "text" in block:
                _text_object(block["text"], limits.SECTION_TEXT_MAX)
            fields = block.get("fields", [])
            assert len(fields) <= limits.MAX_FIELDS
            for f in fields:
                _text_object(f, limits.FIELD_TEXT_MAX)
            if "accessory" in block and block["accessory"]["type"] == "button":
                _button(block["accessory"])
        elif kind == "header":
            _text_object(block["text"], limits.HEADER_TEXT_MAX, plain=True)
        elif kind == "context":
            assert 0 < len(block["elements"]) <= limits.CONTEXT_ELEMENTS_MAX
            for element in block["elements"]:
                _text_object(element, limits.SECTION_TEXT_MAX)
        elif kind == "actions":
            assert 0 < len(block["elements"]) <= limits.ACTIONS_ELEMENTS_MAX
            for element in block["elements"]:
                _button(element)
            # Slack: an action_id is unique among the action_ids of its block.
            ids = [e["action_id"] for e in block["elements"]]
            assert len(ids) == len(set(ids)), ids
        else:
            assert kind == "divider", block


def validate_all(messages: list[Message]) -> list[Message]:
    assert messages
    for message in messages:
        validate(message)
    return messages


def texts(messages: list[Message], kind: str = "section") -> list[str]:
    """The text of each block of `kind` (a context block's elements joined by a space)."""
    found = []
    for b in (b for m in messages for b in m.blocks if b["type"] == kind):
        if kind == "context":
            found.append(" ".join(e["text"] for e in b["elements"]))
        elif "text" in b:
            found.append(b["text"]["text"])
    return found


def buttons(message: Message) -> list[dict[str, Any]]:
    return [e for b in message.blocks if b["type"] == "actions" for e in b["elements"]]


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
                 annotations={"summary": f"error ratio {n} > 5% <b> & more"})


# ---- Markdown → mrkdwn ---------------------------------------------------------------------

def test_markdown_becomes_mrkdwn_with_escaping() -> None:
    text = md.mrkdwn("# Root **cause**\n**Deploy** broke it: a < b & c, see "
                     "[the dashboard](https://grafana.example/d?a=1&b=2) or <https://x.io>.\n"
                     "- `p99 < 1s` held\n~~old~~ <!channel> <@U123>")
    lines = text.splitlines()
    assert lines[0] == "*Root cause*"
    assert lines[1] == ("*Deploy* broke it: a &lt; b &amp; c, see "
                        "<https://grafana.example/d?a=1&amp;b=2|the dashboard> or <https://x.io>.")
    assert lines[2] == "• `p99 &lt; 1s` held"
    assert lines[3] == "~old~ &lt;!channel&gt; &lt;@U123&gt;"  # no pings from untrusted text
    assert md.mrkdwn("a < b & c") == "a &lt; b &amp; c"
    _well_formed(text)


def test_code_fences_lose_their_language_and_are_not_converted() -> None:
    text = md.mrkdwn("run:\n```python\nx = a**2 if a < b else [c](d)\n```\nok")
    assert text == "run:\n```\nx = a**2 if a &lt; b else [c](d)\n```\nok"
    assert md.mrkdwn("```\nnever closed").endswith("\n```")


def test_links_only_for_web_urls_and_tables_are_fenced() -> None:
    assert md.mrkdwn("[x](javascript:alert(1))") == "[x](javascript:alert(1))"
    assert md.mrkdwn("[a|b](https://x.io/p|q)") == "<https://x.io/p%7Cq|a|b>"
    table = md.mrkdwn("before\n| a | b |\n|---|---|\n| 1 | 2 |\nafter")
    assert table == "before\n```\n| a | b |\n|---|---|\n| 1 | 2 |\n```\nafter"


def test_mentions_kept_only_when_asked() -> None:
    assert md.mrkdwn("by <@U123> in <#C42|ops>", mentions=True) == "by <@U123> in <#C42|ops>"
    assert md.mrkdwn("<!here>", mentions=True) == "&lt;!here&gt;"


# ---- split ---------------------------------------------------------------------------------

def _long_markdown() -> str:
    parts, n = [], 0
    while sum(map(len, parts)) < 20_000:
        n += 1
        parts.append(f"Paragraph {n}: the error ratio for checkout rose to {n}% because "
                     "a < b & the pool was exhausted; see [dash](https://g.io/d?x=1&y=2). " * 4)
        if n % 3 == 0:
            parts.append("```python\n" + "\n".join(
                f"line_{n}_{i} = query('rate(http_requests_total[5m])') < {i}"
                for i in range(60 if n % 2 else 8)) + "\n```")
    return "\n\n".join(parts)


def _normalise(text: str) -> str:
    return re.sub(r"\s+", "", text.replace("```", ""))


def test_a_long_answer_splits_into_valid_messages_in_order() -> None:
    markdown = _long_markdown()
    assert len(markdown) >= 20_000
    messages = validate_all(sb.answer_message(make_answer(markdown)))
    assert len(messages) >= 2
    sections = texts(messages)
    assert all(len(t) <= limits.SECTION_TEXT_MAX for t in sections)
    assert _normalise("".join(sections)) == _normalise(md.mrkdwn(markdown))
    assert messages[0].text == md.mrkdwn(markdown)
    assert all(m.text for m in messages[1:])
    # Cuts fall between paragraphs, lines or words, never inside a link.
    for t in sections:
        assert not re.search(r"<[^>]*$", t) and not re.match(r"^[^<]*>", t)


def test_a_fence_longer_than_a_section_is_closed_and_reopened() -> None:
    code = "\n".join(f"{i:05d} " + "x" * 60 for i in range(200))
    pieces = md.split_text(md.mrkdwn(f"intro\n```\n{code}\n```\noutro"))
    assert len(pieces) >= 4
    for piece in pieces:
        assert len(piece) <= limits.SECTION_TEXT_MAX and piece.count("```") % 2 == 0
    assert pieces[1].startswith("```\n00")  # the fence reopened where a piece was cut
    assert _normalise("".join(pieces)) == _normalise(f"intro{code}outro")


def test_text_without_any_boundary_is_cut_hard_but_not_inside_a_link_or_entity() -> None:
    word = "&amp;" * 700 + "<https://x.io/" + "a" * 50 + "|x>" + "b" * 3000
    pieces = md.split_text(word)
    assert all(len(p) <= limits.SECTION_TEXT_MAX for p in pieces)
    assert "".join(pieces) == word
    for p in pieces:
        _well_formed(p)


def test_split_fits_headers_contexts_buttons_and_the_fallback() -> None:
    blocks = [layout.header("H" * 400), layout.context(*(f"e{i}" for i in range(23))),
              {"type": "actions", "elements": [layout.button("B" * 100, f"a{i}", "v")
                                               for i in range(30)]},
              *(layout.section(f"s{i}") for i in range(60))]
    messages = validate_all(layout.split(blocks, "x" * 50_000))
    assert len(messages) == 2
    first = messages[0]
    assert first.text.endswith("…") and len(first.text) == limits.FALLBACK_TEXT_MAX
    assert first.blocks[0]["text"]["text"].endswith("…")
    assert [len(b["elements"]) for b in first.blocks if b["type"] == "context"] == [10, 10, 3]
    assert [len(b["elements"]) for b in first.blocks if b["type"] == "actions"] == [25, 5]
    assert all(len(e["text"]["text"]) <= limits.BUTTON_TEXT_MAX for e in buttons(first))
    assert texts(messages) == [f"s{i}" for i in range(60)]
    assert messages[1].text.startswith("s")  # a continuation's fallback is its own text


def test_split_keeps_a_section_with_its_context_and_actions() -> None:
    blocks: list[dict[str, Any]] = []
    for i in range(20):
        blocks += [layout.section(f"h{i}"), layout.context("c"),
                   {"type": "actions", "elements": [layout.button("ok", "a", "v")]}]
    messages = validate_all(layout.split(blocks, "t"))
    for m in messages:
        assert m.blocks[0]["type"] == "section" and m.blocks[-1]["type"] == "actions"


# ---- answers -------------------------------------------------------------------------------

def test_twelve_hypotheses_carry_parseable_button_values() -> None:
    evidence = [Evidence(id=f"ev-{i}", source="prometheus", summary=f"5xx ratio {i}% <high>",
                         query='sum(rate(x{code="500"}[5m]))', start=T0, end=T0,
                         values={"max": i / 10}, link="https://prom.io/g?a=1&b=2")
                for i in range(1, 30)]
    claims = [Claim(statement=f"Hypothesis {n}: " + "the pool is exhausted & " * 60,
                    confidence=n / 12, evidence_ids=[f"ev-{i}" for i in range(n, n + 12)],
                    next_check=f"check **pool** metric {n}") for n in range(1, 13)]
    answer = make_answer(claims=claims, evidence=evidence, notes=["model unavailable"],
                         tools=[ToolRecord(name="query", args={}, ok=True, elapsed_ms=1,
                                           summary="ok")] * 2)
    messages = validate_all(sb.answer_message(answer, incident_id=12))
    assert len(messages) >= 2
    values = []
    for m in messages:
        for b in buttons(m):
            assert b["action_id"] in (vocabulary.HYPOTHESIS_CONFIRM, vocabulary.HYPOTHESIS_REJECT)
            # Confirm is the primary action; Reject is not painted red.
            assert b.get("style") == ("primary" if b["action_id"] == vocabulary.HYPOTHESIS_CONFIRM
                                      else None)
            assert len(b["value"]) < 2000
            values.append(json.loads(b["value"]))
    # 8 % and 17 % are below the fold: no buttons, one line.
    assert [v["n"] for v in values] == [n for n in range(3, 13) for _ in (0, 1)]
    assert all(v["i"] == 12 for v in values)
    assert values[0]["s"] == claims[2].statement[:150]
    sections = texts(messages)
    assert sections[0].startswith("🎯 *Likely cause:* Hypothesis 1")  # the verdict, first
    assert any(s.startswith("*3.* Hypothesis 3") and "▰▰▱▱▱▱▱▱▱▱ 25%" in s for s in sections)
    contexts = " ".join(texts(messages, "context"))
    assert "2 more below 20%: " in contexts
    # Evidence reads as a finding with its query one click away: no ids, no PromQL.
    assert "• 5xx ratio 3% &lt;high&gt; · <https://prom.io/g?a=1&amp;b=2|graph>" in contexts
    assert "ev-" not in contexts and "rate(" not in contexts
    assert "… and 4 more" in contexts and "*Next check:* check **pool** metric 3" in contexts
    assert "⚠ model unavailable" in contexts and "🧠 claude" in contexts
    assert "`query` ×2" in contexts


def test_without_an_incident_the_buttons_say_so() -> None:
    answer = make_answer(claims=[Claim(statement="Pool exhausted", evidence_ids=["ev-9"])])
    [message] = validate_all(sb.answer_message(answer))
    assert [json.loads(b["value"])["i"] for b in buttons(message)] == [None, None]
    assert "ev-9" not in json.dumps(message.blocks)  # an id is no reading matter


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
    message = sb.incident_message(make_incident(status, **resolved), [])
    validate(message)
    found = buttons(message)
    assert [b["action_id"] for b in found] == expected
    assert all(b["value"] == "12" for b in found)
    assert ["confirm" in b for b in found] == [a == "incident_resolve" for a in expected]


def test_incident_card_fields_alerts_hypotheses_and_runbook() -> None:
    incident = make_incident(pagerduty_url="https://pd.io/incidents/P1?a=1&b=2",
                             title="T" * 300)
    alerts = [make_alert(n) for n in range(14)] + [make_alert(99, "resolved")]
    message = sb.incident_message(
        incident, alerts, now=T0 + timedelta(minutes=4),
        hypotheses=[Claim(statement=f"cause {n} <x>", confidence=0.5) for n in range(5)],
        runbook="https://runbooks.io/checkout")
    validate(message)
    head = message.blocks[0]["text"]["text"]
    assert head.startswith("🔥 INC-12 · TTT") and len(head) <= 150
    fields = [f["text"] for f in message.blocks[1]["fields"]]
    assert fields[0] == "*Status*\n🔴 triggered"
    assert f"<!date^{int(T0.timestamp())}^{{date_short_pretty}} {{time}}|2024-05-01 12:00 UTC>" \
        in fields[3]
    # No frozen "open for 4m": a posted card does not tick.
    assert fields[4] == "*PagerDuty*\n<https://pd.io/incidents/P1?a=1&amp;b=2|open incident>"
    assert not any("Open for" in f for f in fields)
    body = "\n".join(texts([message]))
    assert "*Firing alerts (14)*" in body and "… and 4 more" in body and "Alert99" not in body
    assert "&lt;b&gt; &amp; more" in body
    assert "3. cause 2 &lt;x&gt; — 50%" in body and "cause 3" not in body
    assert "📘 *Runbook:* <https://runbooks.io/checkout|open>" in body
    assert message.text.startswith("INC-12 (triggered): TTT")


def test_a_resolved_incident_shows_how_long_it_took() -> None:
    message = sb.incident_message(
        make_incident("resolved", resolved_at=T0 + timedelta(hours=1, minutes=5)), [],
        runbook="See **the** [runbook](https://r.io)")
    validate(message)
    assert message.blocks[0]["text"]["text"].startswith("✅ INC-12")
    assert "*Resolved after*\n1h 05m" in [f["text"] for f in message.blocks[1]["fields"]]
    assert "See *the* <https://r.io|runbook>" in texts([message])[-1]


# ---- timeline, post-mortem, progress, errors -----------------------------------------------

def test_a_timeline_of_200_events_splits_within_the_limits() -> None:
    kinds = ["alert_fired", "status_changed", "note", "deploy", "mystery"]
    view = TimelineView(
        incident_id=12, ref="INC-12", title="Checkout down", status="resolved",
        service="checkout", triggered_at=T0,
        events=[TimelineEntry(at=T0 + timedelta(minutes=10 * i), kind=kinds[i % 5],
                              source="x", summary=f"event {i} <tag> & " + "y" * 60)
                for i in range(200)],
        time_to_acknowledge=timedelta(minutes=4), time_to_mitigate=timedelta(minutes=30),
        mitigated=True,
        time_to_resolve=timedelta(hours=1, minutes=5))
    messages = validate_all(sb.timeline_message(view))
    assert len(messages) >= 2
    assert messages[0].blocks[0]["text"]["text"] == "🕒 INC-12 · Checkout down"
    facts = texts(messages, "context")[0]
    assert "acknowledged after *4m 00s*" in facts and "resolved after *1h 05m*" in facts
    lines = [line for t in texts(messages) for line in t.splitlines() if line.startswith("`")]
    assert len(lines) == 200
    assert lines[0] == "`12:00:00` 🔥 *alert fired* — event 0 &lt;tag&gt; &amp; " + "y" * 60
    assert lines[4].startswith("`12:40:00` • *mystery*")
    assert [int(n) for x in lines for n in re.findall(r"event (\d+)", x)] == list(range(200))
    assert "*Thu 02 May 2024*" in "\n".join(texts(messages))


def test_an_empty_timeline() -> None:
    view = TimelineView(incident_id=1, ref="INC-1", title="t", status="triggered",
                        triggered_at=T0)
    [message] = validate_all(sb.timeline_message(view))
    assert texts([message])[0] == "_No events recorded yet._"


def test_postmortem_summary_takes_the_first_paragraph_of_each_section() -> None:
    draft = ("# INC-12: Checkout outage\n\n## Summary\nCheckout failed for **40 minutes**.\n\n"
             "More detail.\n\n## Timeline\n- 12:00 fired\n\n## Root Cause\nThe pool < 10.\n\n"
             "## Action items\n- [ ] Raise the pool\n- [ ] Alert on saturation\n\nLater.\n")
    message = sb.postmortem_summary(draft, ref="INC-12")
    validate(message)
    body = texts([message])
    assert body[0] == "*INC-12: Checkout outage*"
    assert body[1] == "*Summary*\nCheckout failed for *40 minutes*."
    assert body[2] == "*Root cause*\nThe pool &lt; 10."
    assert body[3] == "*Action items*\n• Raise the pool\n• Alert on saturation"  # a real list
    assert "More detail" not in message.blocks.__repr__()
    assert message.blocks[0]["text"]["text"] == "📝 Post-mortem draft · INC-12"


def test_postmortem_summary_without_sections_takes_the_opening() -> None:
    message = sb.postmortem_summary("word " * 1000, ref="INC-3")
    validate(message)
    [opening] = texts([message])
    assert len(opening) <= 601 and opening.endswith("…")


def test_progress_message() -> None:
    message = sb.progress_message([("query_prometheus", "ok"), ("recent_changes", "failed"),
                                   ("runbooks", "running")])
    validate(message)
    assert texts([message])[0] == ("*🔎 Investigating…*\n✅ `query_prometheus`\n"
                                   "❌ `recent_changes`\n⏳ `runbooks`")
    done = sb.progress_message([("a", "ok"), ("b", "failed")])
    assert texts([done])[0].startswith("*🔎 Investigated with 2 tool(s), 1 failed*")
    many = sb.progress_message([(f"t{i}", "ok") for i in range(100)])
    validate(many)
    assert "… 60 earlier" in texts([many])[0]
    validate(sb.progress_message([]))


def test_error_and_notice_messages() -> None:
    error = sb.error_message("I can't post in #x: the app is missing the `chat:write` scope")
    validate(error)
    assert texts([error]) == ["⚠️ I can't post in #x: the app is missing the `chat:write` scope"]
    assert error.text == texts([error])[0]
    notice = sb.notice_message("INC-12 is now *acknowledged* (by <@U1>) & <!channel>")
    validate(notice)
    assert texts([notice]) == ["INC-12 is now *acknowledged* (by <@U1>) &amp; &lt;!channel&gt;"]
    validate(sb.error_message("x" * 10_000))
