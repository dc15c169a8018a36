"""Microsoft Teams Adaptive Cards (schema 1.5) for the copilot's domain objects — the Teams
counterpart of `bot.slack.blocks`: an answer and its hypotheses (Confirm / Reject), an incident
card (Acknowledge / Mitigated / Resolve), a timeline, a post-mortem summary, the updating progress
card and notices. Pure functions but for reading a chart's PNG; `split_cards` keeps every card
within Teams' message size.

Teams' TextBlock renders a Markdown subset (`**bold**`, `_italic_`, lists, `[t](u)` links) and
nothing else is escaped: text cannot ping anyone in Teams without `msteams.entities`. Headings
become bold lines, single line breaks become `\\n\\n` (Teams ignores a lone `\\n` outside lists),
and fenced code and tables become monospace TextBlocks with their indentation kept. Buttons are
`Action.Execute` (Universal Actions): the bot receives an `adaptiveCard/action` invoke with the
`verb` and `data`.
"""

from __future__ import annotations

import base64
import io
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from PIL import Image

from bot.agent.calls import evidence_line
from bot.agent.state import Answer
from bot.render.outline import HEADING, outline, shorten
from bot.render.terminal import KIND_ICON
from bot.slack.blocks import (
    HYPOTHESIS_CONFIRM,
    HYPOTHESIS_REJECT,
    INCIDENT_ACK,
    INCIDENT_MITIGATED,
    INCIDENT_RESOLVE,
    STATUS_EMOJI,
    STEP_ICON,
    clip,
    confidence_bar,
)
from knowledge.alerts import Alert
from knowledge.incidents import Incident, IncidentStatus, steps_ahead
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence, format_duration, utc

Element = dict[str, Any]
Unit = Element | tuple[Element, ...]  # a tuple is kept on one card when it fits on one

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Teams refuses a message over ~28 KB; a card's JSON stays under this many bytes, measured
# ASCII-escaped (`\ud83d\ude00`, as Python's and aiohttp's json.dumps send it: never less than
# its UTF-8).
CARD_BYTES_MAX = 25_000
CARD_ELEMENTS_MAX = 100  # body elements, counting those inside containers and columns
TEXT_MAX = 3_000  # characters a TextBlock (fewer when escaping would outgrow a card)
FACTS_MAX = 40  # facts a FactSet
SUMMARY_MAX = 1_000  # Card.text
IMAGE_URL_MAX = CARD_BYTES_MAX - 1_500  # an image's URL (data URI) and the card around it
DATA_URI_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class Card:
    """One Teams message: `text` the plain summary (notifications, screen readers), `content`
    the Adaptive Card."""

    text: str
    content: dict[str, Any]


def attachment(card: Card) -> dict[str, Any]:
    """The Bot Framework attachment carrying the card."""
    return {"contentType": CONTENT_TYPE, "content": card.content}


# ---- elements ------------------------------------------------------------------------------

def text_block(text: str, **props: Any) -> Element:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def subtle(text: str, **props: Any) -> Element:
    return text_block(text, **({"isSubtle": True, "size": "Small", "spacing": "None"} | props))


def execute(title: str, verb: str, data: dict[str, Any], *, style: str | None = None
            ) -> Element:
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
    return action | ({"style": style} if style else {})


def fact_set(facts: Sequence[tuple[str, str]]) -> Element:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}


# ---- Markdown → TextBlocks -----------------------------------------------------------------

_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+(?=\S)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^\s<>]+)>")
_UNDERSCORE_BOLD = re.compile(r"__(?=\S)(.+?)(?<=\S)__")
NBSP = "\u00a0"
_BLANK_EDGES = re.compile(f"^({NBSP}\n\n)+|(\n\n{NBSP})+$")


def markdown_body(markdown: str, **props: Any) -> list[Unit]:
    """Markdown as TextBlocks of at most TEXT_MAX characters: prose cut at line, else word
    boundaries; each fenced block or table one monospace unit (its pieces kept on one card
    when they fit, else continued, still monospace, on the next)."""
    units: list[Unit] = []
    for code, text in _segments(markdown):
        pieces = [text_block(p, **props, **({"fontType": "Monospace"} if code else {}))
                  for p in split_text(text)]
        units += [tuple(pieces)] if code and pieces else pieces
    return units


def _segments(markdown: str) -> list[tuple[bool, str]]:
    """The Markdown's prose and code (fences, tables) runs, in order, as Teams text."""
    runs: list[tuple[bool, list[str]]] = []

    def add(code: bool, line: str, sep: str = "\n\n") -> None:
        if not runs or runs[-1][0] != code:
            runs.append((code, []))
        lines = runs[-1][1]
        lines.append((sep if lines else "") + line)

    fenced, listed = False, ""  # listed: the list the previous line belongs to ("-", "1.")
    for line in markdown.replace("\x00", "").splitlines():
        if _FENCE_LINE.match(line):
            fenced, listed = not fenced, ""
            runs.append((True, []))  # a new block, even right after another one
            continue
        if fenced or _TABLE_ROW.match(line):
            add(True, _code_line(line))
            listed = ""
        elif not line.strip():
            continue
        elif heading := HEADING.match(line):
            add(False, f"**{heading.group(1).replace('**', '')}**")
            listed = ""
        else:
            line = _AUTOLINK.sub(r"[\1](\1)", _UNDERSCORE_BOLD.sub(r"**\1**", line))
            kind = listed if listed and line[:1].isspace() else ""  # a continuation
            if item := _LIST_ITEM.match(line):
                marker = "-" if item.group(2) in "-*+" else item.group(2)
                line = f"{item.group(1)}{marker} {line[item.end():]}"
                kind = kind or ("-" if marker == "-" else "1.")
            # Teams breaks a line on `\n` only between items of one list, else on `\n\n`.
            add(False, line if kind else line.strip(), "\n" if kind and kind == listed else "\n\n")
            listed = kind
    texts = [(code, "".join(lines)) for code, lines in runs]
    return [(code, _BLANK_EDGES.sub("", text) if code else text) for code, text in texts
            if text.strip(NBSP + " \n")]


def _code_line(line: str) -> str:
    """A code line whose indentation survives Markdown (non-breaking spaces); blank → NBSP."""
    line = line.expandtabs(4).rstrip()
    body = line.lstrip(" ")
    return NBSP * (len(line) - len(body)) + body if body else NBSP


def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, else a line, else a word
    boundary (a hard cut only for a word longer than a quarter of `limit`)."""
    pieces: list[str] = []
    rest = text.strip("\n ")
    while len(rest) > limit:
        for sep in ("\n\n", "\n", " "):
            j = rest.rfind(sep, limit // 4, limit + len(sep))
            if 0 < j <= limit:
                cut, resume = j, j + len(sep)
                break
        else:
            cut = resume = limit
        pieces.append(rest[:cut].rstrip("\n "))
        rest = rest[resume:].lstrip("\n ")
    if rest.strip(NBSP + " \n"):
        pieces.append(rest)
    return [p for p in pieces if p.strip(NBSP + " \n")]


# ---- renderers -----------------------------------------------------------------------------

def answer_cards(answer: Answer, *, incident_id: int | None = None,
                 image_url: Callable[[Path], str] | None = None) -> list[Card]:
    """The answer, its charts, then each hypothesis with its confidence, the evidence it cites,
    what to check next and Confirm / Reject (`data`: `{"i": incident, "n": number,
    "s": statement[:150]}`), the notes, and how the answer was made. `image_url` turns a chart
    PNG into a URL (default: a data URI); a chart too big for a card is left out with a note."""
    body: list[Unit] = list(markdown_body(answer.text))
    notes = list(answer.notes)
    for path in answer.images:
        image, problem = chart_image(path, image_url)
        if image is None:
            notes.append(f"Chart {path.name} not shown: {problem}.")
        else:
            body.append(image)
    by_id = {e.id: e for e in answer.evidence}
    body += [_hypothesis(c, n, by_id, incident_id) for n, c in enumerate(answer.claims, 1)]
    body += [text_block(f"⚠ {clip(note, 500)}", color="Warning", size="Small")
             for note in notes]
    footer = [f"🧠 {answer.brain}"]
    if answer.tools:
        counts: dict[str, list[int]] = {}
        for tool in answer.tools:
            counts.setdefault(tool.name, [0, 0])[0 if tool.ok else 1] += 1
        footer.append("🔧 " + ", ".join(
            name + (f" ×{ok + failed}" if ok + failed > 1 else "")
            + (f" ({failed} failed)" if failed else "") for name, (ok, failed) in counts.items()))
    if answer.images:
        footer.append(f"📈 {len(answer.images)} chart(s)")
    body.append(subtle(clip(" · ".join(footer), 1000), spacing="Medium", separator=True))
    return split_cards(body, answer.text.strip() or f"Answer ({answer.brain})")


def chart_image(path: Path, image_url: Callable[[Path], str] | None = None
                ) -> tuple[Element | None, str]:
    """An Image element showing the chart PNG (a data URI by default), or None and why not."""
    url, problem = _image_url(path, image_url)
    if url is None:
        return None, problem
    return {"type": "Image", "url": url, "altText": f"Chart: {path.stem}", "size": "Stretch",
            "msTeams": {"allowExpand": True}}, ""


def _image_url(path: Path, image_url: Callable[[Path], str] | None
               ) -> tuple[str | None, str]:
    """The chart's URL, or None and why not."""
    try:
        if image_url is None:
            raw = path.read_bytes()
            png = fit_png(raw, 3 * (IMAGE_URL_MAX - len(DATA_URI_PREFIX)) // 4)
            if png is None:
                return None, f"{len(raw) / 1024:.0f} KB is too large for a Teams card"
            url = DATA_URI_PREFIX + base64.b64encode(png).decode("ascii")
        else:
            url = image_url(path)
    except OSError as exc:
        return None, f"it could not be read ({exc.strerror or exc})"
    if len(url.encode()) > IMAGE_URL_MAX:
        return None, "its URL is too large for a Teams card"
    return url, ""


def fit_png(data: bytes, limit: int) -> bytes | None:
    """The PNG within `limit` bytes: as it is, else re-encoded with a small palette (a chart
    has few colours, so this costs nothing visible) and, if still too big, scaled down; None
    if even that does not fit or it is not an image."""
    if len(data) <= limit:
        return data
    try:
        image = Image.open(io.BytesIO(data)).convert("RGB")
    except (OSError, ValueError):
        return None
    for scale, colors in ((1.0, 64), (1.0, 24), (0.8, 24), (0.65, 16), (0.5, 16)):
        shown = image if scale == 1.0 else image.resize(
            (int(image.width * scale), int(image.height * scale)), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        shown.quantize(colors=colors).save(out, format="PNG", optimize=True)
        if out.tell() <= limit:
            return out.getvalue()
    return None


def _hypothesis(claim: Claim, n: int, by_id: dict[str, Evidence],
                incident_id: int | None) -> Element:
    items = [text_block(f"**{n}.** {clip(claim.statement, 1500)}")]
    if claim.confidence is not None:
        items.append(text_block(confidence_bar(claim.confidence), spacing="Small"))
    for ev_id in claim.evidence_ids[:8]:
        ev = by_id.get(ev_id)
        line = clip(evidence_line(ev), 280) if ev else f"[{ev_id}] (cited earlier)"
        if ev and ev.link and ev.link.startswith(("https://", "http://")) \
                and len(ev.link) <= 1000:
            line += f" · [open]({_url(ev.link)})"
        items.append(subtle(f"• {line}"))
    if len(claim.evidence_ids) > 8:
        items.append(subtle(f"… and {len(claim.evidence_ids) - 8} more"))
    if claim.next_check:
        items.append(text_block(f"🔎 **Next check:** {clip(claim.next_check, 1000)}",
                                size="Small"))
    data = {"i": incident_id, "n": n, "s": claim.statement[:150]}
    items.append({"type": "ActionSet", "actions": [
        execute("Confirm", HYPOTHESIS_CONFIRM, data, style="positive"),
        execute("Reject", HYPOTHESIS_REJECT, dict(data), style="destructive")]})
    return {"type": "Container", "items": items, "separator": True, "spacing": "Medium"}


def incident_card(incident: Incident, alerts: Sequence[Alert], *,
                  hypotheses: Sequence[Claim] = (), runbook: str | None = None,
                  now: datetime | None = None) -> Card:
    """The incident card: status, severity, service, when it triggered and for how long, the
    firing alerts, the top hypotheses, the runbook, and buttons for the steps still ahead
    (`data`: `{"incident": id}`). Bounded: always one card."""
    start = utc(incident.triggered_at)
    icon = "✅" if incident.status == IncidentStatus.RESOLVED else "🔥"
    facts = [("Status", f"{STATUS_EMOJI.get(incident.status, '⚪')} {incident.status}"),
             ("Severity", clip(incident.severity or "—", 100)),
             ("Service", clip(incident.service or "—", 200)),
             ("Triggered", f"{start:%Y-%m-%d %H:%M} UTC")]
    if incident.resolved_at is not None:
        facts.append(("Resolved after", format_duration(utc(incident.resolved_at) - start)))
    else:
        since = max(utc(now or datetime.now(UTC)) - start, timedelta(0))
        facts.append(("Open for", format_duration(since)))
    if incident.pagerduty_url and incident.pagerduty_url.startswith(("https://", "http://")):
        facts.append(("PagerDuty", f"[open incident]({_url(incident.pagerduty_url)})"))
    body: list[Unit] = [
        text_block(f"{icon} {incident.ref} · {clip(incident.title, 200)}", size="Large",
                   weight="Bolder"),
        fact_set(facts)]
    firing = [a for a in alerts if a.status == "firing"]
    if firing:
        lines = [_alert_line(a) for a in firing[:10]]
        if len(firing) > 10:
            lines.append(f"- … and {len(firing) - 10} more")
        body += [text_block(f"**Firing alerts ({len(firing)})**", separator=True),
                 text_block(clip("\n".join(lines), 2500), spacing="Small")]
    if hypotheses:
        lines = [f"{n}. {clip(c.statement, 250)}"
                 + (f" — {c.confidence:.0%}" if c.confidence is not None else "")
                 for n, c in enumerate(hypotheses[:3], start=1)]
        body += [text_block("💡 **Top hypotheses**", separator=True),
                 text_block("\n".join(lines), spacing="Small")]
    if runbook and (text := runbook.strip()):
        if re.fullmatch(r"https?://\S+", text) and len(text) <= 2000:
            body.append(text_block(f"📘 **Runbook:** [open]({_url(text)})", separator=True))
        else:
            body.append(text_block("📘 **Runbook**", separator=True))
            body += markdown_body(clip(text, 800), spacing="Small")
    fallback = f"{incident.ref} ({incident.status}): {incident.title}" + (
        f" — {incident.service}" if incident.service else "")
    return split_cards(body, fallback, actions=_incident_actions(incident))[0]


def catchup_card(incident: Incident, alerts: Sequence[Alert], *,
                 hypotheses: Sequence[Claim], responders: Sequence[str],
                 tried: Sequence[TimelineEntry], now: datetime | None = None) -> Card:
    """What a late joiner needs: the incident card (state, impact, top hypotheses, the steps
    ahead), who is on it, and what has been tried so far (newest last)."""
    card = incident_card(incident, alerts, hypotheses=hypotheses, now=now)
    who = ", ".join(dict.fromkeys(responders)) or "nobody has acknowledged or acted yet"
    more: list[Unit] = [text_block(f"👥 **Who is on it:** {clip(who, 1000)}", separator=True)]
    if tried:
        lines = [f"- {{{{TIME({utc(e.at):%Y-%m-%dT%H:%M:%SZ})}}}} {KIND_ICON.get(e.kind, '•')} "
                 f"{clip(e.summary, 300)}" for e in tried[-15:]]
        more += [text_block("🛠 **What has been tried**"),
                 text_block("\n".join(lines), spacing="Small")]
    else:
        more.append(text_block("🛠 **What has been tried:** nothing recorded yet."))
    body = [*card.content["body"], *more]
    return split_cards(body, card.text, actions=card.content.get("actions", []))[0]


def mark_hypothesis(content: dict[str, Any], number: int, verdict: str, by: str
                    ) -> dict[str, Any] | None:
    """The answer card with hypothesis `number`'s Confirm / Reject replaced by its verdict
    (✅ confirmed / ❌ rejected by whom), or None if the card has no such buttons."""
    changed = json.loads(json.dumps(content))
    icon = "✅" if verdict == "confirmed" else "❌"

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            for key in ("body", "items"):
                items = node.get(key)
                if isinstance(items, list):
                    for i, item in enumerate(items):
                        data = [a.get("data") or {} for a in item.get("actions", [])] \
                            if isinstance(item, dict) and item.get("type") == "ActionSet" else []
                        if any(d.get("n") == number and "s" in d for d in data):
                            items[i] = text_block(f"{icon} **{verdict.capitalize()}** by "
                                                  f"{clip(by, 200)}", size="Small",
                                                  color="Good" if verdict == "confirmed"
                                                  else "Attention")
                            return True
                        if walk(item):
                            return True
        return False

    return changed if walk(changed) else None


def _url(url: str) -> str:
    """A URL that cannot end a Markdown link early."""
    return url.replace(" ", "%20").replace("(", "%28").replace(")", "%29")


def _alert_line(alert: Alert) -> str:
    line = f"- 🔥 **{clip(alert.alertname, 150)}**"
    if alert.severity:
        line += f" · {clip(alert.severity, 32)}"
    # Teams shows DATE()/TIME() in each reader's time zone (RFC 3339, in UTC here).
    line += f" · since {{{{TIME({utc(alert.starts_at):%Y-%m-%dT%H:%M:%SZ})}}}}"
    summary = alert.annotations.get("summary")
    return line + (f" — {clip(str(summary), 150)}" if summary else "")


def _incident_actions(incident: Incident) -> list[Element]:
    if incident.id is None or incident.status not in STATUS_EMOJI:
        return []
    data, ahead = {"incident": incident.id}, steps_ahead(incident)
    actions = []
    if IncidentStatus.ACKNOWLEDGED in ahead:
        actions.append(execute("Acknowledge", INCIDENT_ACK, dict(data), style="positive"))
    if IncidentStatus.MITIGATED in ahead:
        actions.append(execute("Mitigated", INCIDENT_MITIGATED, dict(data)))
    if IncidentStatus.RESOLVED in ahead:
        actions.append(execute("Resolve", INCIDENT_RESOLVE, dict(data)))
    return actions


def timeline_cards(view: TimelineView) -> list[Card]:
    """The timeline: a fact per event (time UTC → icon, kind, summary), grouped by day, and how
    long each step took from the trigger."""
    start = utc(view.triggered_at)
    facts = [f"{STATUS_EMOJI.get(view.status, '⚪')} {view.status}"]
    if view.service:
        facts.append(clip(view.service, 200))
    facts.append(f"triggered {start:%Y-%m-%d %H:%M}")
    facts += [f"{label} **{format_duration(td)}**" for label, td in (
        ("acknowledged after", view.time_to_acknowledge),
        ("mitigated after", view.time_to_mitigate),
        ("resolved after", view.time_to_resolve)) if td is not None]
    body: list[Unit] = [
        text_block(f"🕒 {view.ref} · {clip(view.title, 200)}", size="Large", weight="Bolder"),
        subtle(" · ".join(facts) + " · times in UTC")]
    day, events = start.date(), list[tuple[str, str]]()
    for e in view.events:
        at = utc(e.at)
        if at.date() != day:
            if events:
                body.append(fact_set(events))
            day, events = at.date(), []
            body.append(text_block(f"**{day:%a %d %b %Y}**", spacing="Medium"))
        events.append((f"{at:%H:%M:%S}",
                       f"{KIND_ICON.get(e.kind, '•')} **{e.kind}** — {clip(e.summary, 300)}"))
    if events:
        body.append(fact_set(events))
    if not view.events:
        body.append(text_block("_No events recorded yet._"))
    return split_cards(body, f"Timeline of {view.ref} “{view.title}”: "
                             f"{len(view.events)} event(s)")


_SUMMARY_SECTIONS = (("Summary", ("summary",)), ("Root cause", ("root cause",)),
                     ("Action items", ("action item", "follow-up", "follow up")))


def postmortem_card(markdown: str, *, ref: str) -> Card:
    """A post-mortem draft in short: its title and the first paragraph of its Summary, Root
    cause and Action items (else its opening); the full draft goes up as a file."""
    title, sections = outline(markdown)
    body: list[Unit] = [text_block(f"📝 Post-mortem draft · {ref}", size="Large",
                                   weight="Bolder")]
    if title:
        body.append(text_block(f"**{clip(title.replace('**', ''), 300)}**"))
    shown = False
    for label, names in _SUMMARY_SECTIONS:
        first = next((p for name, p in sections if name.startswith(names) and p), None)
        if first:
            body += [text_block(f"**{label}**", spacing="Medium"),
                     *markdown_body(shorten(first, 700), spacing="Small")]
            shown = True
    if not shown:
        opening = "\n".join(line for line in markdown.splitlines()
                            if not re.match(r"^\s{0,3}#\s", line)).strip()
        body += markdown_body(shorten(opening, 600)) if opening else []
    body.append(subtle("The full draft follows in this thread.", spacing="Medium"))
    return split_cards(body, f"Post-mortem draft for {ref}" + (f": {title}" if title else ""))[0]


def progress_card(steps: Sequence[tuple[str, str]]) -> Card:
    """The one card updated while tools run: each with ⏳ running, ✅ ok or ❌ failed."""
    running = any(state == "running" for _, state in steps)
    failed = sum(state == "failed" for _, state in steps)
    title = ("🔎 Investigating…" if running or not steps else
             f"🔎 Investigated with {len(steps)} tool(s)"
             + (f", {failed} failed" if failed else ""))
    shown = list(steps[-40:])
    lines = [f"… {len(steps) - len(shown)} earlier"] if len(steps) > len(shown) else []
    lines += [f"{STEP_ICON.get(state, '•')} {clip(name, 100)}" for name, state in shown]
    body: list[Unit] = [text_block(f"**{title}**")]
    if lines:
        body.append(text_block("\n\n".join(lines), spacing="Small"))
    text = title + (": " + ", ".join(f"{name} {state}" for name, state in steps) if steps else "")
    return split_cards(body, text)[0]


def notice_card(text: str) -> Card:
    """A short notice in a thread ("INC-12 is now **acknowledged** (by Ana)"), Markdown."""
    shown = clip(text, 2500)
    return split_cards(markdown_body(shown), shown)[0]


def error_card(text: str) -> Card:
    """A user-facing error ("I can't post here: the app is not installed in this team")."""
    shown = f"⚠️ {clip(text, 2500)}"
    return split_cards(markdown_body(shown, color="Attention"), shown)[0]


# ---- limits --------------------------------------------------------------------------------

def split_cards(body: Sequence[Unit], text: str, *, actions: Sequence[Element] = ()
                ) -> list[Card]:
    """The body as cards, in order, each under CARD_BYTES_MAX bytes of JSON and
    CARD_ELEMENTS_MAX elements: over-long TextBlocks cut (see `split_text`), FactSets divided,
    anything still too big for a card clipped. A unit (a tuple of elements: a code block, a
    TextBlock that had to be cut) that does not fit on the current card starts the next one if
    it fits there whole. The first card carries `actions` and `text` as its summary; the others
    their own text."""
    skeleton = _size(_content([], list(actions)))
    room = CARD_BYTES_MAX - skeleton - 2
    cards: list[list[Element]] = [[]]
    used = count = 0
    for unit in body:
        elements = [piece for element in (unit if isinstance(unit, tuple) else (unit,))
                    for piece in _fit(element, room)]
        sizes = [_size(e) + 2 for e in elements]
        counts = [_count(e) for e in elements]
        whole, many = sum(sizes), sum(counts)
        if cards[-1] and (used + whole > room or count + many > CARD_ELEMENTS_MAX) \
                and whole <= room and many <= CARD_ELEMENTS_MAX:
            cards.append([])
            used = count = 0
        for element, size, n in zip(elements, sizes, counts, strict=True):
            if cards[-1] and (used + size > room or count + n > CARD_ELEMENTS_MAX):
                cards.append([])
                used = count = 0
            cards[-1].append(element)
            used, count = used + size, count + n
    if not cards[-1]:
        cards[-1].append(text_block(clip(text, TEXT_MAX) or "…"))
    return [Card(clip((text if i == 0 else "") or _plain(elements) or "…", SUMMARY_MAX),
                 _content(elements, list(actions) if i == 0 else []))
            for i, elements in enumerate(cards)]


def _content(body: list[Element], actions: list[Element]) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body,
            "actions": actions, "msteams": {"width": "Full"}}


def _fit(element: Element, room: int) -> list[Element]:
    kind = element.get("type")
    if kind == "TextBlock" and (len(element["text"]) > TEXT_MAX or _size(element) > room):
        text = element["text"]
        limit = min(TEXT_MAX, max(len(text) // 2, 1))
        return [fitted for piece in split_text(text, limit)
                for fitted in _fit(element | {"text": piece}, room)]
    if kind == "FactSet" and (len(element["facts"]) > FACTS_MAX or _size(element) > room):
        batches: list[list[Any]] = [[]]
        for fact in element["facts"]:
            if batches[-1] and (len(batches[-1]) == FACTS_MAX
                                or _size(batches[-1]) + _size(fact) > room // 2):
                batches.append([])
            batches[-1].append(fact)
        return [_shrink(element | {"facts": b}, room) for b in batches]
    return [_shrink(element, room)]


def _shrink(element: Element, room: int) -> Element:
    """The element with its texts clipped shorter until it fits on a card."""
    limit = TEXT_MAX
    while _size(element) > room and limit > 20:
        limit //= 2
        element = _clip_texts(element, limit)
    return element if _size(element) <= room else subtle("(too large to show here)")


def _clip_texts(node: Any, limit: int) -> Any:
    if isinstance(node, list):
        return [_clip_texts(n, limit) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _clip_texts(v, limit) for k, v in node.items()}
    for key in ("text", "value", "title"):
        if isinstance(out.get(key), str) and node.get("type") != "Action.Execute":
            out[key] = clip(out[key], limit)
    return out


def _count(element: Element) -> int:
    return 1 + sum(_count(e) for key in ("items", "columns") for e in element.get(key, ()))


def _size(node: Any) -> int:
    return len(json.dumps(node))


def _plain(body: list[Element]) -> str:
    """The text of a card's TextBlocks and facts, for its summary."""
    texts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "TextBlock":
                texts.append(node["text"].replace(NBSP, " "))
            elif "value" in node and "title" in node and "type" not in node:
                texts.append(f"{node['title']} {node['value']}")
            else:
                for key, value in node.items():
                    if key != "actions":
                        walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(body)
    return "\n".join(texts)
