"""Slack Block Kit for the copilot's domain objects: an answer and its hypotheses (Confirm /
Reject), an incident card (Acknowledge / Mitigated / Resolve), a timeline, a post-mortem summary,
a catch-up, the updating progress message, notices and the weekly digest — and `RENDERER`, the
conversation layer's `Renderer` made of them. Pure functions; `split` keeps every message within
Slack's limits.

Text from the model, alerts and people is untrusted: it is escaped (`&`, `<`, `>`), so it can
neither ping (`<!channel>`) nor forge links; only Markdown links `[t](http…)` become Slack links.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from datetime import datetime

from bot.agent.state import Answer
from bot.conversation.briefing import (
    Step,
    Verdict,
    brief,
    folded_line,
    link_of,
    next_step,
    readable,
    step_text,
    utc_labelled,
)
from bot.conversation.ports import Renderer
from bot.conversation.vocabulary import (
    EVENT_NAME,
    HYPOTHESIS_CONFIRM,
    HYPOTHESIS_REJECT,
    STEP_ICON,
    alert_line,
    answer_footer,
    clip,
    confidence_bar,
    incident_facts,
    incident_fallback,
    incident_heading,
    incident_steps,
    postmortem_parts,
    progress_title,
    timeline_facts,
    who_is_on_it,
)
from bot.render.digest import digest_sections
from bot.render.terminal import KIND_ICON
from bot.slack.layout import (
    Block,
    Message,
    button,
    context,
    header,
    section,
    split,
    text_object,
)
from bot.slack.mrkdwn import clip_mrkdwn, escape, inline, mrkdwn, slack_date
from knowledge.alerts import Alert
from knowledge.incidents import Incident
from skills.digest.report import Digest
from skills.timeline import TimelineEntry, TimelineView
from skills.types import Claim, Evidence, utc


def answer_message(answer: Answer, *, incident_id: int | None = None) -> list[Message]:
    """The verdict first (cause, how sure, next step and runbook: three lines), then what else
    was found, each hypothesis worth a look with its confidence, its evidence as readable lines
    linking to their queries, what to check next and Confirm / Reject buttons (their value:
    `{"i": incident, "n": number, "s": statement[:150]}`), the rest folded into one line, the
    notes, and how the answer was made."""
    told = brief(answer)
    blocks = [section(_verdict(told.verdict))] if told.verdict else []
    if told.context.strip():
        blocks.append(section(mrkdwn(told.context)))
    by_id = {e.id: e for e in answer.evidence}
    if told.shown:
        blocks.append({"type": "divider"})
    for n, claim in told.shown:
        blocks += _hypothesis(claim, n, by_id, incident_id)
    if told.folded:
        blocks.append(context(escape(folded_line(told.folded))))
    if answer.notes:
        blocks.append(context(*(f"⚠ {mrkdwn(clip(note, 500))}" for note in answer.notes)))
    footer = answer_footer(answer, tool=lambda name: f"`{escape(name)}`",
                           charts="chart(s) attached", charts_shown=len(answer.images))
    blocks.append(context(clip_mrkdwn(footer, 1000)))
    fallback = (escape(told.verdict.headline) if told.verdict
                else mrkdwn(answer.text).strip())
    return split(blocks, fallback or f"Answer ({answer.brain})")


def _verdict(verdict: Verdict) -> str:
    return "\n".join(verdict.lines(bold=lambda t: f"*{t}*", text=escape, link=_link))


def _step(step: Step) -> str:
    return step_text(step, text=escape, link=_link)


def _hypothesis(claim: Claim, n: int, by_id: dict[str, Evidence],
                incident_id: int | None) -> list[Block]:
    head = f"*{n}.* {escape(clip(utc_labelled(claim.statement), 1500))}"
    if claim.confidence is not None:
        head += f"\n{confidence_bar(claim.confidence)}"
    blocks = [section(head)]
    cites = []
    for ev_id in claim.evidence_ids[:8]:
        ev = by_id.get(ev_id)
        if ev is None:
            continue  # cited in an earlier answer of this thread
        link = link_of(ev)
        label = "graph" if ev.query else "open"  # a query's graph, or the page it cites
        cites.append(f"• {escape(readable(ev))}" + (f" · {_link(link, label)}" if link else ""))
    if len(claim.evidence_ids) > 8:
        cites.append(f"… and {len(claim.evidence_ids) - 8} more")
    if cites:
        blocks.append(context("\n".join(cites)))
    if claim.next_check:
        blocks.append(context(f"🔎 *Next check:* {_step(next_step(claim, 1000))}"))
    value = json.dumps({"i": incident_id, "n": n, "s": claim.statement[:150]},
                       separators=(",", ":"), ensure_ascii=False)
    blocks.append({"type": "actions", "elements": [
        button("Confirm", HYPOTHESIS_CONFIRM, value, style="primary"),
        button("Reject", HYPOTHESIS_REJECT, value)]})
    return blocks


def incident_message(incident: Incident, alerts: Sequence[Alert], *,
                     hypotheses: Sequence[Claim] = (), runbook: str | None = None,
                     now: datetime | None = None) -> Message:
    """The incident card: status, severity, service, when it triggered and for how long, the
    firing alerts, the top hypotheses, the runbook, and buttons for the steps still ahead."""
    fields = [f"*{name}*\n{value if name == 'Triggered' else escape(value)}"
              for name, value in incident_facts(incident, when=slack_date)]
    if incident.pagerduty_url:
        fields.append(f"*PagerDuty*\n{_link(incident.pagerduty_url, 'open incident')}")
    blocks = [header(incident_heading(incident)),
              {"type": "section", "fields": [text_object(f) for f in fields]}]
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
        shown = runbook.strip()
        shown = _link(shown, "open") if re.fullmatch(r"https?://\S+", shown) else mrkdwn(shown)
        blocks.append(section(f"📘 *Runbook:* {clip_mrkdwn(shown, 1000)}"))
    if buttons := _incident_buttons(incident):
        blocks.append({"type": "actions", "elements": buttons})
    return split(blocks, escape(incident_fallback(incident)))[0]  # bounded: one message


def _link(url: str, label: str) -> str:
    target = url.replace("&", "&amp;").replace("<", "%3C").replace(">", "%3E").replace("|", "%7C")
    return f"<{target}|{label}>"


def _alert_line(alert: Alert) -> str:
    return alert_line(alert, bold=lambda t: f"*{t}*", text=escape, limit=200,
                      when=lambda at: slack_date(at, "{time}"))


def _incident_buttons(incident: Incident) -> list[Block]:
    buttons = []
    for step in incident_steps(incident):
        confirm = {
            "title": text_object(f"Resolve {incident.ref}?", "plain_text"),
            "text": text_object(clip(f"Mark {incident.ref} “{incident.title}” resolved for "
                                     "everyone in this channel?", 300), "plain_text"),
            "confirm": text_object("Resolve", "plain_text"),
            "deny": text_object("Cancel", "plain_text")} if step.confirm else None
        buttons.append(button(step.label, step.action, str(incident.id),
                              style="primary" if step.primary else None, confirm=confirm))
    return buttons


def timeline_message(view: TimelineView) -> list[Message]:
    """The timeline: one line per event (UTC), and how long each step took from the trigger."""
    start = utc(view.triggered_at)
    facts = [escape(f) for f in timeline_facts(view, bold=lambda t: f"\x00{t}\x00")]
    facts.insert(2 if view.service else 1, f"triggered {slack_date(start)}")
    lines, day = [], start.date()
    for e in view.events:
        at = utc(e.at)
        if at.date() != day:
            day = at.date()
            lines.append(f"*{day:%a %d %b %Y}*")
        lines.append(f"`{at:%H:%M:%S}` {KIND_ICON.get(e.kind, '•')} "
                     f"*{escape(EVENT_NAME.get(e.kind, e.kind))}* — "
                     f"{escape(clip(e.summary, 300))}")
    blocks = [header(f"🕒 {view.ref} · {view.title}"),
              context(" · ".join(facts).replace("\x00", "*") + " · times in UTC"),
              section("\n".join(lines) if lines else "_No events recorded yet._")]
    return split(blocks, escape(f"Timeline of {view.ref} “{view.title}”: "
                                f"{len(view.events)} event(s)"))


def postmortem_summary(markdown: str, *, ref: str) -> Message:
    """A post-mortem draft in short: its title and the first paragraph of its Summary, Root
    cause and Action items (else its opening); the full draft goes up as a file."""
    title, parts = postmortem_parts(markdown)
    blocks = [header(f"📝 Post-mortem draft · {ref}")]
    if title:
        blocks.append(section(f"*{inline(title)}*"))
    blocks += [section((f"*{label}*\n" if label else "") + mrkdwn(part)) for label, part in parts]
    blocks.append(context("The full draft is in the attached file."))
    return split(blocks, escape(f"Post-mortem draft for {ref}"
                                + (f": {title}" if title else "")))[0]


def progress_message(steps: Sequence[tuple[str, str]]) -> Message:
    """The one message updated while tools run: each with ⏳ running, ✅ ok or ❌ failed."""
    title, shown, text = progress_title(steps)
    lines = [f"{STEP_ICON[state]} `{escape(clip(name, 100))}`" if state in STEP_ICON
             else (f"• `{escape(clip(name, 100))}`" if state else name) for name, state in shown]
    return split([section("\n".join([f"*{title}*", *lines]))], escape(clip(text, 3000)))[0]


def notice_message(text: str) -> Message:
    """A short notice in a thread ("INC-12 is now **acknowledged** (by <@U1>)"): Markdown or
    mrkdwn, user and channel mentions kept."""
    shown = mrkdwn(clip(text, 2500), mentions=True)
    return split([section(shown)], shown)[0]


def error_message(text: str) -> Message:
    """A user-facing error ("I can't post in #x: the app is missing the `chat:write` scope")."""
    shown = f"⚠️ {mrkdwn(clip(text, 2500), mentions=True)}"
    return split([section(shown)], shown)[0]


def catchup_message(incident: Incident, alerts: Sequence[Alert], *,
                    hypotheses: Sequence[Claim], responders: Sequence[str],
                    tried: Sequence[TimelineEntry], now: datetime | None = None) -> list[Message]:
    """What a late joiner needs: the card (state, impact, top hypotheses), who is on it, and
    what has been tried so far (pinned messages, notes and status changes, newest last)."""
    card = incident_message(incident, alerts, hypotheses=hypotheses, now=now)
    who = who_is_on_it(responders)
    more = [section(f"👥 *Who is on it:* {mrkdwn(clip(who, 1000), mentions=True)}")]
    if tried:
        lines = [f"{slack_date(e.at, '{time}')} {KIND_ICON.get(e.kind, '•')} "
                 f"{mrkdwn(clip(e.summary, 300), mentions=True)}" for e in tried[-15:]]
        more.append(section("🛠 *What has been tried*\n" + "\n".join(lines)))
    else:
        more.append(section("🛠 *What has been tried:* nothing recorded yet — react 📌 to a "
                            "message to put it on the timeline."))
    return [Message(card.text, card.blocks + split(more, card.text)[0].blocks)]


def digest_messages(d: Digest) -> list[Message]:
    """The weekly digest: a header, then a section per part."""
    sections = digest_sections(d)
    out: list[Block] = [header(clip(sections[0][0], 150)), section(mrkdwn(sections[0][1]))]
    for title, body in sections[1:]:
        out.append(section(clip_mrkdwn(mrkdwn(f"**{title}**\n{body}"), 2900)))
    return split(out, f"{sections[0][0]}: {sections[0][1]}")


RENDERER = Renderer(
    inline_images=False,  # charts go up as files beside the answer; Slack shows them there
    answer=answer_message, incident=incident_message, timeline=timeline_message,
    catchup=catchup_message, progress=progress_message, notice=notice_message,
    error=error_message, digest=digest_messages,
    postmortem=lambda markdown, *, ref: [postmortem_summary(markdown, ref=ref)])
