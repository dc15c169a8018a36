"""Microsoft Teams Adaptive Cards (schema 1.5) for the copilot's domain objects: an answer and
its hypotheses (Confirm / Reject), an incident card (Acknowledge / Mitigated / Resolve), a
timeline, a post-mortem summary, a catch-up, the updating progress card, notices and the weekly
digest — and `RENDERER`, the conversation layer's `Renderer` made of them. Pure functions
but for reading a chart's PNG; `split_cards` keeps every card within Teams' message size.

Buttons are `Action.Execute` (Universal Actions): the bot receives an `adaptiveCard/action`
invoke with the `verb` and `data`. Markdown becomes TextBlocks in `bot.teams.markdown`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.agent.state import Answer
from bot.conversation import briefing
from bot.conversation import vocabulary as words
from bot.conversation.ports import Renderer
from bot.render.digest import digest_sections
from bot.render.terminal import KIND_ICON
from bot.teams.images import chart_image
from bot.teams.layout import (
    Card,
    Element,
    Unit,
    execute,
    fact_set,
    split_cards,
    subtle,
    text_block,
)
from bot.teams.markdown import markdown_body
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.digest.report import Digest
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence, utc


def answer_cards(answer: Answer, *, incident_id: int | None = None,
                 image_url: Callable[[Path], str] | None = None) -> list[Card]:
    """The verdict first (cause, how sure, next step and runbook: three lines), then what else
    was found, its charts, each hypothesis worth a look with its confidence, its evidence as
    readable lines linking to their queries, what to check next and Confirm / Reject (`data`:
    `{"i": incident, "n": number, "s": statement[:150]}`), the rest folded into one line, the
    notes, and how the answer was made. `image_url` turns a chart PNG into a URL (default: a
    data URI); a chart too big for a card is left out with a note, and not counted."""
    told = briefing.brief(answer)
    body: list[Unit] = [_verdict(told.verdict)] if told.verdict else []
    body += markdown_body(told.context)
    notes, charts = list(answer.notes), 0
    for path in answer.images:
        image, problem = chart_image(path, image_url)
        if image is None:
            notes.append(f"Chart {path.name} not shown: {problem}.")
        else:
            body.append(image)
            charts += 1
    by_id = {e.id: e for e in answer.evidence}
    body += [_hypothesis(c, n, by_id, incident_id) for n, c in told.shown]
    if told.folded:
        body.append(subtle(briefing.folded_line(told.folded)))
    body += [text_block(f"⚠ {words.clip(note, 500)}", color="Warning", size="Small")
             for note in notes]
    body.append(subtle(words.clip(words.answer_footer(answer, charts_shown=charts), 1000),
                       spacing="Medium", separator=True))
    fallback = told.verdict.headline if told.verdict else answer.text.strip()
    return split_cards(body, fallback or f"Answer ({answer.brain})")


def _verdict(verdict: briefing.Verdict) -> Element:
    lines = verdict.lines(bold=lambda t: f"**{t}**", text=str, link=_md_link)
    return {"type": "Container", "style": "emphasis", "bleed": False,
            "items": [text_block(line, spacing="None" if i else "Default")
                      for i, line in enumerate(lines)]}


def _label(text: str) -> str:
    """Link text that cannot end a Markdown link early."""
    return text.replace("[", "(").replace("]", ")")


def _md_link(url: str, label: str) -> str:
    return f"[{_label(label)}]({_url(url)})"


def _step(step: briefing.Step) -> str:
    return briefing.step_text(step, text=str, link=_md_link)


def _hypothesis(claim: Claim, n: int, by_id: dict[str, Evidence],
                incident_id: int | None) -> Element:
    items = [text_block(f"**{n}.** {words.clip(briefing.utc_labelled(claim.statement), 1500)}")]
    if claim.confidence is not None:
        items.append(text_block(words.confidence_bar(claim.confidence), spacing="Small"))
    for ev_id in claim.evidence_ids[:8]:
        ev = by_id.get(ev_id)
        if ev is None:
            continue  # cited in an earlier answer of this thread
        link = briefing.link_of(ev)
        items.append(subtle(f"• {briefing.readable(ev)}" + (
            f" · [{'graph' if ev.query else 'open'}]({_url(link)})"
            if link and len(link) <= 1500 else "")))
    if len(claim.evidence_ids) > 8:
        items.append(subtle(f"… and {len(claim.evidence_ids) - 8} more"))
    if claim.next_check:
        items.append(text_block(f"🔎 **Next check:** {_step(briefing.next_step(claim, 1000))}",
                                size="Small"))
    data = {"i": incident_id, "n": n, "s": claim.statement[:150]}
    items.append({"type": "ActionSet", "actions": [
        execute("Confirm", words.HYPOTHESIS_CONFIRM, data, style="positive"),
        execute("Reject", words.HYPOTHESIS_REJECT, dict(data))]})
    return {"type": "Container", "items": items, "separator": True, "spacing": "Medium"}


def incident_card(incident: Incident, alerts: Sequence[Alert], *,
                  hypotheses: Sequence[Claim] = (), runbook: str | None = None,
                  now: datetime | None = None) -> Card:
    """The incident card: status, severity, service, when it triggered and for how long, the
    firing alerts, the top hypotheses, the runbook, and buttons for the steps still ahead
    (`data`: `{"incident": id}`). Bounded: always one card."""
    facts = words.incident_facts(incident, when=_local)
    if incident.pagerduty_url and incident.pagerduty_url.startswith(("https://", "http://")):
        facts.append(("PagerDuty", f"[open incident]({_url(incident.pagerduty_url)})"))
    body: list[Unit] = [text_block(words.incident_heading(incident), size="Large", weight="Bolder"),
                        fact_set(facts)]
    firing = [a for a in alerts if a.status == "firing"]
    if firing:
        lines = [_alert_line(a) for a in firing[:10]]
        if len(firing) > 10:
            lines.append(f"- … and {len(firing) - 10} more")
        body += [text_block(f"**Firing alerts ({len(firing)})**", separator=True),
                 text_block(words.clip("\n".join(lines), 2500), spacing="Small")]
    if hypotheses:
        lines = [f"{n}. {words.clip(c.statement, 250)}"
                 + (f" — {c.confidence:.0%}" if c.confidence is not None else "")
                 for n, c in enumerate(hypotheses[:3], start=1)]
        body += [text_block("💡 **Top hypotheses**", separator=True),
                 text_block("\n".join(lines), spacing="Small")]
    if runbook and (text := runbook.strip()):
        if re.fullmatch(r"https?://\S+", text) and len(text) <= 2000:
            body.append(text_block(f"📘 **Runbook:** [open]({_url(text)})", separator=True))
        else:
            body.append(text_block("📘 **Runbook**", separator=True))
            body += markdown_body(words.clip(text, 800), spacing="Small")
    actions = [execute(s.label, s.action, {"incident": incident.id},
                       style="positive" if s.primary else None)
               for s in words.incident_steps(incident)]
    return split_cards(body, words.incident_fallback(incident), actions=actions)[0]


def catchup_card(incident: Incident, alerts: Sequence[Alert], *,
                 hypotheses: Sequence[Claim], responders: Sequence[str],
                 tried: Sequence[TimelineEntry], now: datetime | None = None) -> Card:
    """What a late joiner needs: the incident card (state, impact, top hypotheses, the steps
    ahead), who is on it, and what has been tried so far (newest last)."""
    card = incident_card(incident, alerts, hypotheses=hypotheses, now=now)
    who = words.who_is_on_it(responders)
    more: list[Unit] = [text_block(f"👥 **Who is on it:** {words.clip(who, 1000)}", separator=True)]
    if tried:
        lines = [f"- {{{{TIME({utc(e.at):%Y-%m-%dT%H:%M:%SZ})}}}} {KIND_ICON.get(e.kind, '•')} "
                 f"{words.clip(e.summary, 300)}" for e in tried[-15:]]
        more += [text_block("🛠 **What has been tried**"),
                 text_block("\n".join(lines), spacing="Small")]
    else:
        more.append(text_block("🛠 **What has been tried:** nothing recorded yet — react 📌 "
                               "to a message to put it on the timeline."))
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
                                                  f"{words.clip(by, 200)}", size="Small",
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


def _local(at: datetime) -> str:
    """A time each reader sees in their own zone: Teams' DATE()/TIME() (RFC 3339, UTC here)."""
    iso = f"{utc(at):%Y-%m-%dT%H:%M:%SZ}"
    return f"{{{{DATE({iso}, SHORT)}}}} {{{{TIME({iso})}}}}"


def _alert_line(alert: Alert) -> str:
    return "- " + words.alert_line(alert, bold=lambda t: f"**{t}**", text=str, limit=150,
                                   when=lambda at: f"{{{{TIME({utc(at):%Y-%m-%dT%H:%M:%SZ})}}}}")


def timeline_cards(view: TimelineView) -> list[Card]:
    """The timeline: a fact per event (time UTC → icon, kind, summary), grouped by day, and how
    long each step took from the trigger."""
    start = utc(view.triggered_at)
    facts = words.timeline_facts(view, bold=lambda t: f"**{t}**")
    facts.insert(2 if view.service else 1, f"triggered {start:%Y-%m-%d %H:%M}")
    body: list[Unit] = [
        text_block(f"🕒 {view.ref} · {words.clip(view.title, 200)}", size="Large", weight="Bolder"),
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
                       f"{KIND_ICON.get(e.kind, '•')} **{words.EVENT_NAME.get(e.kind, e.kind)}** — "
                       f"{words.clip(e.summary, 300)}"))
    if events:
        body.append(fact_set(events))
    if not view.events:
        body.append(text_block("_No events recorded yet._"))
    return split_cards(body, f"Timeline of {view.ref} “{view.title}”: "
                             f"{len(view.events)} event(s)")


def postmortem_card(markdown: str, *, ref: str) -> Card:
    """A post-mortem draft in short: its title and the first paragraph of its Summary, Root
    cause and Action items (else its opening); the whole draft follows in the thread."""
    title, parts = words.postmortem_parts(markdown)
    body: list[Unit] = [text_block(f"📝 Post-mortem draft · {ref}", size="Large",
                                   weight="Bolder")]
    if title:
        body.append(text_block(f"**{words.clip(title, 300)}**"))
    for label, part in parts:
        body += ([text_block(f"**{label}**", spacing="Medium")] if label else []) + \
            markdown_body(part, spacing="Small" if label else None)
    body.append(subtle("The full draft follows in this thread.", spacing="Medium"))
    return split_cards(body, f"Post-mortem draft for {ref}" + (f": {title}" if title else ""))[0]


def progress_card(steps: Sequence[tuple[str, str]]) -> Card:
    """The one card updated while tools run: each with ⏳ running, ✅ ok or ❌ failed."""
    title, shown, text = words.progress_title(steps)
    lines = [f"{words.STEP_ICON.get(state, '•')} {words.clip(name, 100)}" if state else name
             for name, state in shown]
    body: list[Unit] = [text_block(f"**{title}**")]
    if lines:
        body.append(text_block("\n\n".join(lines), spacing="Small"))
    return split_cards(body, text)[0]


def notice_card(text: str) -> Card:
    """A short notice in a thread ("INC-12 is now **acknowledged** (by Ana)"), Markdown."""
    shown = words.clip(text, 2500)
    return split_cards(markdown_body(shown), shown)[0]


def error_card(text: str) -> Card:
    """A user-facing error ("I can't post here: the app is not installed in this team")."""
    shown = f"⚠️ {words.clip(text, 2500)}"
    return split_cards(markdown_body(shown, color="Attention"), shown)[0]


def digest_cards(d: Digest) -> list[Card]:
    """The weekly digest: the sections, with the capacity charts inline after Capacity (Teams
    shows a data-URI image; a chart too big for a card is named instead)."""
    sections = digest_sections(d)
    body: list[Unit] = [text_block(sections[0][0], size="Large", weight="Bolder"),
                        text_block(sections[0][1])]
    for title, text in sections[1:]:
        body += [text_block(f"**{title}**", separator=True),
                 *markdown_body(text, spacing="Small")]
        if title == "Capacity":
            for chart in d.charts:
                image, problem = chart_image(Path(chart))
                body.append(image if image is not None else subtle(
                    f"Chart {Path(chart).name} not shown: {problem}."))
    return split_cards(body, f"{sections[0][0]}: {sections[0][1]}")


RENDERER = Renderer(
    inline_images=True,  # a bot cannot attach a file to a channel without Graph
    answer=answer_cards, incident=incident_card, timeline=timeline_cards,
    progress=progress_card, notice=notice_card, error=error_card, digest=digest_cards,
    catchup=lambda *args, **kw: [catchup_card(*args, **kw)],
    postmortem=lambda markdown, *, ref: [postmortem_card(markdown, ref=ref)])
