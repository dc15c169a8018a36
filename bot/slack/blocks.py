"""Slack Block Kit for the copilot's domain objects: an answer and its hypotheses (Confirm /
Reject), an incident card (Acknowledge / Mitigated / Resolve), a timeline, a post-mortem summary,
the updating progress message and notices. Pure functions; `split` keeps every message within
Slack's limits.

Text from the model, alerts and people is untrusted: it is escaped (`&`, `<`, `>`), so it can
neither ping (`<!channel>`) nor forge links; only Markdown links `[t](http…)` become Slack links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.agent.calls import evidence_line
from bot.agent.state import Answer
from bot.render.outline import HEADING, outline, shorten
from bot.render.terminal import KIND_ICON
from knowledge.alerts import Alert
from knowledge.incidents import Incident, IncidentStatus, steps_ahead
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence, format_duration, utc

Block = dict[str, Any]

# Slack's documented limits (docs.slack.dev/reference/block-kit).
MAX_BLOCKS = 50
SECTION_TEXT_MAX = 3000
FIELD_TEXT_MAX = 2000
MAX_FIELDS = 10
HEADER_TEXT_MAX = 150
CONTEXT_ELEMENTS_MAX = 10
ACTIONS_ELEMENTS_MAX = 25
BUTTON_TEXT_MAX = 75
BUTTON_VALUE_MAX = 2000
ID_MAX = 255  # action_id, block_id
CONFIRM_MAX = {"title": 100, "text": 300, "confirm": 30, "deny": 30}
FALLBACK_TEXT_MAX = 40_000
# Undocumented: chat.postMessage answers `msg_blocks_too_long` from about 12,000 characters of
# text across a message's blocks (slackapi/bolt-js#2509, #2867), so a message's blocks are kept
# under this many characters of JSON.
MESSAGE_BLOCKS_MAX = 11_000

HYPOTHESIS_CONFIRM, HYPOTHESIS_REJECT = "hypothesis_confirm", "hypothesis_reject"
INCIDENT_ACK, INCIDENT_MITIGATED, INCIDENT_RESOLVE = (
    "incident_ack", "incident_mitigated", "incident_resolve")
STATUS_EMOJI = {"triggered": "🔴", "acknowledged": "🟡", "investigating": "🟣",
                "mitigated": "🔵", "resolved": "🟢"}  # the terminal's STATUS_STYLE colours
STEP_ICON = {"running": "⏳", "ok": "✅", "failed": "❌"}
FENCE = "```"


@dataclass(frozen=True)
class Message:
    """One chat.postMessage / chat.update: `text` is the plain fallback Slack shows in
    notifications and to screen readers, `blocks` the layout."""

    text: str
    blocks: list[Block]


# ---- text ----------------------------------------------------------------------------------

def escape(text: str) -> str:
    """The three characters Slack requires escaped in any text it should show as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([^)\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
                   r"|<((?:https?://|mailto:)[^\s<>]+)>")
_MENTION = re.compile(r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+(?:\|[\w-]*)?)>")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_KEPT = re.compile("\x00(\\d+)\x00")


def mrkdwn(markdown: str, *, mentions: bool = False) -> str:
    """Markdown → Slack mrkdwn: `**b**` → `*b*`, `[t](u)` → `<u|t>`, `# h` → `*h*`, `- item` →
    `• item`, fences without a language, tables fenced; everything else escaped. `*b*` stays
    (bold in Slack). `mentions` keeps user and channel mentions (`<@U…>`, `<#C…>`): only for text
    the copilot itself wrote, never the model's or an alert's."""
    out: list[str] = []
    fenced = table = False
    for line in markdown.replace("\x00", "").splitlines():
        if _FENCE_LINE.match(line) or fenced:
            if table:
                out.append(FENCE)
                table = False
            if _FENCE_LINE.match(line):
                fenced = not fenced
                out.append(FENCE)
            else:
                out.append(escape(line))
            continue
        if bool(_TABLE_ROW.match(line)) != table:
            table = not table
            out.append(FENCE)
        if table:
            out.append(escape(line))
        elif heading := HEADING.match(line):
            out.append(f"*{_inline(heading.group(1).replace('**', ''), mentions)}*")
        elif bullet := _BULLET.match(line):
            out.append(f"{bullet.group(1)}• {_inline(line[bullet.end():], mentions)}")
        else:
            out.append(_inline(line, mentions))
    if fenced or table:
        out.append(FENCE)
    return "\n".join(out)


def _inline(text: str, mentions: bool = False) -> str:
    kept: list[str] = []

    def keep(markup: str) -> str:
        kept.append(markup)
        return f"\x00{len(kept) - 1}\x00"

    def restore(s: str) -> str:
        return _KEPT.sub(lambda m: kept[int(m.group(1))], s)

    def link(m: re.Match[str]) -> str:
        label, url = (m.group(1), m.group(2)) if m.group(2) else (None, m.group(3))
        if not url.startswith(("https://", "http://", "mailto:")):
            return m.group(0)  # escaped with the text around it
        target = url.replace("&", "&amp;").replace("|", "%7C")
        shown = restore(_emphasis(escape(label))) if label else None
        return keep(f"<{target}|{shown}>" if shown else f"<{target}>")

    text = _CODE_SPAN.sub(lambda m: keep(f"`{escape(m.group(2))}`"), text)
    if mentions:
        text = _MENTION.sub(lambda m: keep(m.group(0)), text)
    text = _LINK.sub(link, text)
    return restore(_emphasis(escape(text)))


def _emphasis(text: str) -> str:
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    return _STRIKE.sub(r"~\1~", text)


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, "…" marking a cut (for plain text and raw Markdown)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def clip_mrkdwn(text: str, limit: int) -> str:
    """`clip` for mrkdwn: the cut breaks no `<…>` link or `&…;` entity and closes an open code
    fence."""
    if len(text) <= limit:
        return text
    head = text[:_safe_cut(text, limit - 1)] + "…"
    if head.count(FENCE) % 2:
        head = text[:_safe_cut(text, limit - 2 - len(FENCE))] + "…\n" + FENCE
    return head


def _safe_cut(text: str, at: int) -> int:
    """`at`, moved back so the cut is not inside a `<…>` link or an `&…;` entity."""
    lt = text.rfind("<", 0, at)
    if lt > text.rfind(">", 0, at) and lt > 0:
        at = lt
    amp = text.rfind("&", max(0, at - 5), at)
    if amp >= 0 and ";" not in text[amp:at]:
        at = amp
    return at


def split_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, else a line, else a word, outside
    code fences and `<…>` links if at all possible; a fence that must be cut is closed at the end
    of one piece and reopened at the start of the next."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut, resume = _cut(rest, limit)
        head, rest = rest[:cut], rest[resume:]
        if head.count(FENCE) % 2:
            head, rest = head + "\n" + FENCE, FENCE + "\n" + rest
        else:
            head, rest = head.rstrip(), rest.lstrip("\n")
        if head.strip():
            pieces.append(head)
    if rest.strip():
        pieces.append(rest)
    return pieces


def _cut(s: str, limit: int) -> tuple[int, int]:
    """Where to cut `s` (the piece is `s[:cut]`) and where the rest resumes."""
    def fenced(j: int) -> bool:
        return s.count(FENCE, 0, j) % 2 == 1

    def in_link(j: int) -> bool:
        return s.rfind("<", 0, j) > s.rfind(">", 0, j)

    for sep in ("\n\n", "\n", " "):
        j = _last(s, sep, limit, 1, lambda j: not fenced(j) and not in_link(j))
        if j is not None:
            return j, j + len(sep)
    # Inside a fence (4 characters kept to close it), and far enough in to make progress.
    low, budget = limit // 4, limit - len(FENCE) - 1
    for sep in ("\n", " "):
        j = _last(s, sep, budget, low, lambda j: not in_link(j))
        if j is not None:
            return j, j + 1
    at = _safe_cut(s, budget)
    return (at, at) if at >= low else (budget, budget)


def _last(s: str, sep: str, budget: int, low: int, ok: Callable[[int], bool]) -> int | None:
    j = s.rfind(sep, low, budget + len(sep))
    while j >= max(low, 1):
        if ok(j):
            return j
        j = s.rfind(sep, low, j + len(sep) - 1)
    return None


def slack_date(at: datetime, token: str = "{date_short_pretty} {time}") -> str:
    """A time every reader sees in their own time zone, with a UTC fallback."""
    at = utc(at)
    return f"<!date^{int(at.timestamp())}^{token}|{at:%Y-%m-%d %H:%M} UTC>"


def confidence_bar(confidence: float) -> str:
    filled = round(confidence * 10)
    return "▰" * filled + "▱" * (10 - filled) + f" {confidence:.0%}"


# ---- blocks --------------------------------------------------------------------------------

def _text(text: str, kind: str = "mrkdwn") -> Block:
    return {"type": kind, "text": text} | ({"emoji": True} if kind == "plain_text" else {})


def section(text: str) -> Block:
    return {"type": "section", "text": _text(text)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [_text(t) for t in texts]}


def header(text: str) -> Block:
    return {"type": "header", "text": _text(text, "plain_text")}


def button(text: str, action_id: str, value: str, *, style: str | None = None,
           confirm: Block | None = None) -> Block:
    element: Block = {"type": "button", "text": _text(text, "plain_text"),
                      "action_id": action_id, "value": value}
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element


# ---- renderers -----------------------------------------------------------------------------

def answer_message(answer: Answer, *, incident_id: int | None = None) -> list[Message]:
    """The answer, then each hypothesis with its confidence, the evidence it cites, what to
    check next and Confirm / Reject buttons (their value: `{"i": incident, "n": number,
    "s": statement[:150]}`), the notes, and how the answer was made."""
    blocks = [section(mrkdwn(answer.text))] if answer.text.strip() else []
    by_id = {e.id: e for e in answer.evidence}
    if answer.claims:
        blocks.append({"type": "divider"})
    for n, claim in enumerate(answer.claims, start=1):
        blocks += _hypothesis(claim, n, by_id, incident_id)
    if answer.notes:
        blocks.append(context(*(f"⚠ {mrkdwn(clip(note, 500))}" for note in answer.notes)))
    footer = [f"🧠 {answer.brain}"]
    if answer.tools:
        counts: dict[str, list[int]] = {}
        for tool in answer.tools:
            counts.setdefault(tool.name, [0, 0])[0 if tool.ok else 1] += 1
        footer.append("🔧 " + ", ".join(
            f"`{escape(name)}`" + (f" ×{ok + failed}" if ok + failed > 1 else "")
            + (f" ({failed} failed)" if failed else "") for name, (ok, failed) in counts.items()))
    if answer.images:
        footer.append(f"📈 {len(answer.images)} chart(s) attached")
    blocks.append(context(clip_mrkdwn(" · ".join(footer), 1000)))
    return split(blocks, mrkdwn(answer.text).strip() or f"Answer ({answer.brain})")


def _hypothesis(claim: Claim, n: int, by_id: dict[str, Evidence],
                incident_id: int | None) -> list[Block]:
    head = f"*{n}.* {mrkdwn(clip(claim.statement, 1500))}"
    if claim.confidence is not None:
        head += f"\n{confidence_bar(claim.confidence)}"
    blocks = [section(head)]
    cites = []
    for ev_id in claim.evidence_ids[:8]:
        ev = by_id.get(ev_id)
        line = escape(clip(evidence_line(ev), 280)) if ev else f"[{escape(ev_id)}] (cited earlier)"
        if ev and ev.link and ev.link.startswith(("https://", "http://")):
            line += f" · {_link(ev.link, 'open')}"
        cites.append(f"• {line}")
    if len(claim.evidence_ids) > 8:
        cites.append(f"… and {len(claim.evidence_ids) - 8} more")
    if cites:
        blocks.append(context("\n".join(cites)))
    if claim.next_check:
        blocks.append(context(f"🔎 *Next check:* {mrkdwn(clip(claim.next_check, 1000))}"))
    value = json.dumps({"i": incident_id, "n": n, "s": claim.statement[:150]},
                       separators=(",", ":"), ensure_ascii=False)
    blocks.append({"type": "actions", "elements": [
        button("Confirm", HYPOTHESIS_CONFIRM, value, style="primary"),
        button("Reject", HYPOTHESIS_REJECT, value, style="danger")]})
    return blocks


def incident_message(incident: Incident, alerts: Sequence[Alert], *,
                     hypotheses: Sequence[Claim] = (), runbook: str | None = None,
                     now: datetime | None = None) -> Message:
    """The incident card: status, severity, service, when it triggered and for how long, the
    firing alerts, the top hypotheses, the runbook, and buttons for the steps still ahead."""
    start = utc(incident.triggered_at)
    icon = "✅" if incident.status == IncidentStatus.RESOLVED else "🔥"
    fields = [f"*Status*\n{STATUS_EMOJI.get(incident.status, '⚪')} {escape(incident.status)}",
              f"*Severity*\n{escape(incident.severity or '—')}",
              f"*Service*\n{escape(incident.service or '—')}",
              f"*Triggered*\n{slack_date(start)}"]
    if incident.resolved_at is not None:
        fields.append(f"*Resolved after*\n{format_duration(utc(incident.resolved_at) - start)}")
    else:
        since = max(utc(now or datetime.now(UTC)) - start, timedelta(0))
        fields.append(f"*Open for*\n{format_duration(since)}")
    if incident.pagerduty_url:
        fields.append(f"*PagerDuty*\n{_link(incident.pagerduty_url, 'open incident')}")
    blocks = [header(f"{icon} {incident.ref} · {incident.title}"),
              {"type": "section", "fields": [_text(f) for f in fields]}]
    firing = [a for a in alerts if a.status == "firing"]
    if firing:
        lines = [_alert_line(a) for a in firing[:10]]
        if len(firing) > 10:
            lines.append(f"… and {len(firing) - 10} more")
        blocks.append(section(f"*Firing alerts ({len(firing)})*\n" + "\n".join(lines)))
    if hypotheses:
        lines = [f"{n}. {mrkdwn(clip(c.statement, 300))}"
                 + (f" — {c.confidence:.0%}" if c.confidence is not None else "")
                 for n, c in enumerate(hypotheses[:3], start=1)]
        blocks.append(section("💡 *Top hypotheses*\n" + "\n".join(lines)))
    if runbook:
        text = runbook.strip()
        shown = _link(text, "open") if re.fullmatch(r"https?://\S+", text) else mrkdwn(text)
        blocks.append(section(f"📘 *Runbook:* {clip_mrkdwn(shown, 1000)}"))
    if buttons := _incident_buttons(incident):
        blocks.append({"type": "actions", "elements": buttons})
    fallback = escape(f"{incident.ref} ({incident.status}): {incident.title}" + (
        f" — {incident.service}" if incident.service else ""))
    return split(blocks, fallback)[0]  # bounded above: always one message


def _link(url: str, label: str) -> str:
    target = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{target}|{label}>"


def _alert_line(alert: Alert) -> str:
    line = f"🔥 *{escape(clip(alert.alertname, 200))}*"
    if alert.severity:
        line += f" · {escape(alert.severity)}"
    line += f" · since {slack_date(alert.starts_at, '{time}')}"
    summary = alert.annotations.get("summary")
    return line + (f" — {escape(clip(str(summary), 200))}" if summary else "")


def _incident_buttons(incident: Incident) -> list[Block]:
    if incident.id is None or incident.status not in STATUS_EMOJI:
        return []
    value, ahead = str(incident.id), steps_ahead(incident)
    buttons = []
    if IncidentStatus.ACKNOWLEDGED in ahead:
        buttons.append(button("Acknowledge", INCIDENT_ACK, value, style="primary"))
    if IncidentStatus.MITIGATED in ahead:
        buttons.append(button("Mitigated", INCIDENT_MITIGATED, value))
    if IncidentStatus.RESOLVED in ahead:
        buttons.append(button("Resolve", INCIDENT_RESOLVE, value, confirm={
            "title": _text(f"Resolve {incident.ref}?", "plain_text"),
            "text": _text(clip(f"Mark {incident.ref} “{incident.title}” resolved for "
                               "everyone in this channel?", 300), "plain_text"),
            "confirm": _text("Resolve", "plain_text"), "deny": _text("Cancel", "plain_text")}))
    return buttons


def timeline_message(view: TimelineView) -> list[Message]:
    """The timeline: one line per event (UTC), and how long each step took from the trigger."""
    start = utc(view.triggered_at)
    facts = [f"{STATUS_EMOJI.get(view.status, '⚪')} {escape(view.status)}"]
    if view.service:
        facts.append(escape(view.service))
    facts.append(f"triggered {slack_date(start)}")
    facts += [f"{label} *{format_duration(td)}*" for label, td in (
        ("acknowledged after", view.time_to_acknowledge),
        ("mitigated after", view.time_to_mitigate),
        ("resolved after", view.time_to_resolve)) if td is not None]
    lines, day = [], start.date()
    for e in view.events:
        at = utc(e.at)
        if at.date() != day:
            day = at.date()
            lines.append(f"*{day:%a %d %b %Y}*")
        lines.append(f"`{at:%H:%M:%S}` {KIND_ICON.get(e.kind, '•')} *{escape(e.kind)}* — "
                     f"{escape(clip(e.summary, 300))}")
    blocks = [header(f"🕒 {view.ref} · {view.title}"),
              context(" · ".join(facts) + " · times in UTC"),
              section("\n".join(lines) if lines else "_No events recorded yet._")]
    return split(blocks, escape(f"Timeline of {view.ref} “{view.title}”: "
                                f"{len(view.events)} event(s)"))


_SUMMARY_SECTIONS = (("Summary", ("summary",)), ("Root cause", ("root cause",)),
                     ("Action items", ("action item", "follow-up", "follow up")))


def postmortem_summary(markdown: str, *, ref: str) -> Message:
    """A post-mortem draft in short: its title and the first paragraph of its Summary, Root
    cause and Action items (else its opening); the full draft goes up as a file."""
    title, sections = outline(markdown)
    parts = []
    for label, names in _SUMMARY_SECTIONS:
        first = next((p for name, p in sections if name.startswith(names) and p), None)
        if first:
            parts.append(f"*{label}*\n{mrkdwn(shorten(first, 700))}")
    if not parts:
        body = "\n".join(line for line in markdown.splitlines()
                         if not re.match(r"^\s{0,3}#\s", line)).strip()
        parts = [mrkdwn(shorten(body, 600))] if body else []
    blocks = [header(f"📝 Post-mortem draft · {ref}")]
    if title:
        blocks.append(section(f"*{_inline(title.replace('**', ''))}*"))
    blocks += [section(p) for p in parts]
    blocks.append(context("The full draft is in the attached file."))
    return split(blocks, escape(f"Post-mortem draft for {ref}"
                                + (f": {title}" if title else "")))[0]


def progress_message(steps: Sequence[tuple[str, str]]) -> Message:
    """The one message updated while tools run: each with ⏳ running, ✅ ok or ❌ failed."""
    running = any(state == "running" for _, state in steps)
    failed = sum(state == "failed" for _, state in steps)
    title = ("🔎 Investigating…" if running or not steps else
             f"🔎 Investigated with {len(steps)} tool(s)"
             + (f", {failed} failed" if failed else ""))
    shown = list(steps[-40:])
    lines = [f"… {len(steps) - len(shown)} earlier"] if len(steps) > len(shown) else []
    lines += [f"{STEP_ICON.get(state, '•')} `{escape(clip(name, 100))}`" for name, state in shown]
    text = title + (": " + ", ".join(f"{name} {state}" for name, state in steps) if steps else "")
    return split([section("\n".join([f"*{title}*", *lines]))], escape(clip(text, 3000)))[0]


def notice_message(text: str) -> Message:
    """A short notice in a thread ("INC-12 is now *acknowledged* (by <@U1>)"): Markdown or
    mrkdwn, user and channel mentions kept."""
    shown = mrkdwn(clip(text, 2500), mentions=True)
    return split([section(shown)], shown)[0]


def error_message(text: str) -> Message:
    """A user-facing error ("I can't post in #x: the app is missing the `chat:write` scope")."""
    shown = f"⚠️ {mrkdwn(clip(text, 2500), mentions=True)}"
    return split([section(shown)], shown)[0]


# ---- limits --------------------------------------------------------------------------------

def split(blocks: list[Block], text: str) -> list[Message]:
    """The blocks as messages within Slack's limits: long section text cut into several sections
    (see `split_text`), over-long texts clipped, over-full context and actions blocks divided, and
    at most 50 blocks (and ~11k characters) a message, never separating a section from the
    context and actions under it when that can be helped. The first message carries `text` as
    its fallback (mrkdwn: Slack reads it for mentions too, so escape what is not yours); the
    others their own blocks' text."""
    groups = _pack([piece for block in blocks for piece in _fit(block)])
    if not groups:
        return [Message(clip_mrkdwn(text, FALLBACK_TEXT_MAX) or "…", [])]
    return [Message(clip_mrkdwn((text if i == 0 else "") or _plain(group) or "…",
                                FALLBACK_TEXT_MAX), group) for i, group in enumerate(groups)]


def _fit(block: Block) -> list[Block]:
    kind = block.get("type")
    if kind == "header":
        return [{**block, "text": _text(clip(block["text"]["text"], HEADER_TEXT_MAX) or "…",
                                        "plain_text")}]
    if kind == "context":
        elements = [_fit_text(e, SECTION_TEXT_MAX) for e in block["elements"]]
        return _divide(block, "elements", elements, CONTEXT_ELEMENTS_MAX)
    if kind == "actions":
        return _divide(block, "elements", [_fit_element(e) for e in block["elements"]],
                       ACTIONS_ELEMENTS_MAX)
    if kind != "section":
        return [block]
    rest = {k: v for k, v in block.items() if k not in ("text", "fields", "accessory")}
    out: list[Block] = []
    if "text" in block:
        t = block["text"]
        pieces = (split_text(t["text"]) if t["type"] == "mrkdwn"
                  else [clip(t["text"], SECTION_TEXT_MAX)]) or ["…"]
        out = [{**rest, "text": {**t, "text": p}} for p in pieces]
        if "accessory" in block:
            out[0]["accessory"] = _fit_element(block["accessory"])
    fields = [_fit_text(f, FIELD_TEXT_MAX) for f in block.get("fields", [])]
    for batch in _batches(fields, MAX_FIELDS):
        if out and "fields" not in out[-1]:
            out[-1]["fields"] = batch
        else:
            out.append({**rest, "type": "section", "fields": batch})
    return _renumber(out)


def _fit_text(obj: Block, limit: int) -> Block:
    if obj.get("type") not in ("mrkdwn", "plain_text"):
        return obj
    cut = clip_mrkdwn if obj["type"] == "mrkdwn" else clip
    return {**obj, "text": cut(obj["text"], limit) or "…"}


def _fit_element(element: Block) -> Block:
    if element.get("type") != "button":
        return element
    out = {**element, "text": {**element["text"], "text": clip(element["text"]["text"],
                                                                 BUTTON_TEXT_MAX)}}
    for key, limit in (("value", BUTTON_VALUE_MAX), ("action_id", ID_MAX)):
        if key in out:
            out[key] = out[key][:limit]
    if "confirm" in out:
        out["confirm"] = {k: (_fit_text(v, CONFIRM_MAX[k]) if k in CONFIRM_MAX else v)
                          for k, v in out["confirm"].items()}
    return out


def _divide(block: Block, key: str, items: list[Block], most: int) -> list[Block]:
    return _renumber([{**block, key: batch} for batch in _batches(items, most)])


def _batches(items: list[Block], most: int, size: int = MESSAGE_BLOCKS_MAX // 2
             ) -> Iterable[list[Block]]:
    batch: list[Block] = []
    for item in items:
        if batch and (len(batch) == most or _size(batch) + _size(item) > size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _renumber(blocks: list[Block]) -> list[Block]:
    """Blocks made from one keep its `block_id` unique: `id`, `id-2`, …"""
    for k, b in enumerate(blocks[1:], start=2):
        if "block_id" in b:
            b["block_id"] = f"{b['block_id'][:ID_MAX - 4]}-{k}"
    return blocks


_GROUP_START = ("section", "header", "divider")


def _pack(blocks: list[Block]) -> list[list[Block]]:
    """Blocks into messages of at most MAX_BLOCKS blocks and MESSAGE_BLOCKS_MAX characters; a
    section with the context and actions that follow it moves to the next message whole."""
    messages: list[list[Block]] = []
    current: list[Block] = []
    used = 0
    for block in blocks:
        size = _size(block) + 1
        if current and (len(current) == MAX_BLOCKS or used + size > MESSAGE_BLOCKS_MAX):
            starts = [k for k, b in enumerate(current) if b.get("type") in _GROUP_START]
            k = starts[-1] if starts else 0
            tail = current[k:]
            carry = (0 < k and len(tail) <= 5 and (k < len(current) - 1 or
                                                   current[k]["type"] == "header")
                     and len(tail) < MAX_BLOCKS
                     and _size(tail) + _size(block) <= MESSAGE_BLOCKS_MAX)
            messages.append(current[:k] if carry else current)
            current = tail if carry else []
            used = _size(current)
        current.append(block)
        used += size
    if current:
        messages.append(current)
    return messages


def _size(blocks: Block | list[Block]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


def _plain(blocks: list[Block]) -> str:
    """The text of a message's blocks, for its fallback."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") in ("mrkdwn", "plain_text") and isinstance(node.get("text"), str):
                texts.append(node["text"])
            elif node.get("type") != "actions":
                for value in node.values():
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(blocks)
    return "\n".join(texts)


def catchup_message(incident: Incident, alerts: Sequence[Alert], *,
                    hypotheses: Sequence[Claim], responders: Sequence[str],
                    tried: Sequence[TimelineEntry], now: datetime | None = None) -> list[Message]:
    """What a late joiner needs: the card (state, impact, top hypotheses), who is on it, and
    what has been tried so far (pinned messages, notes and status changes, newest last)."""
    card = incident_message(incident, alerts, hypotheses=hypotheses, now=now)
    more: list[Block] = []
    who = ", ".join(dict.fromkeys(responders)) or "nobody has acknowledged or acted yet"
    more.append(section(f"👥 *Who is on it:* {mrkdwn(clip(who, 1000), mentions=True)}"))
    if tried:
        lines = [f"`{utc(e.at):%H:%M}` {KIND_ICON.get(e.kind, '•')} "
                 f"{mrkdwn(clip(e.summary, 300), mentions=True)}" for e in tried[-15:]]
        more.append(section("🛠 *What has been tried*\n" + "\n".join(lines)))
    else:
        more.append(section("🛠 *What has been tried:* nothing recorded yet — react 📌 to a "
                            "message to put it on the timeline."))
    return [Message(card.text, card.blocks + split(more, card.text)[0].blocks)]
