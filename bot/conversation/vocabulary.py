"""The words and signs every chat platform shares: button action ids, the command words that
move an incident, status and step icons, the confidence bar — and the platform-neutral content
of the copilot's messages (an incident's facts and the steps still ahead, an answer's footer, a
progress title, a post-mortem's summary), which Block Kit and Adaptive Cards only lay out."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.agent.state import Answer
from bot.render.outline import outline, shorten
from knowledge.alerts import Alert
from knowledge.incidents import Incident, IncidentStatus, steps_ahead
from skills.timeline import TimelineView
from skills.types import format_duration, utc

HYPOTHESIS_CONFIRM, HYPOTHESIS_REJECT = "hypothesis_confirm", "hypothesis_reject"
INCIDENT_ACK, INCIDENT_MITIGATED, INCIDENT_RESOLVE = (
    "incident_ack", "incident_mitigated", "incident_resolve")
INCIDENT_MERGE = "incident_merge"  # into the incident the correlation suggested
# A command word, and the button that does the same, move an incident to one status.
STATUS_OF = {"ack": IncidentStatus.ACKNOWLEDGED, "mitigated": IncidentStatus.MITIGATED,
             "resolve": IncidentStatus.RESOLVED}
ACTION_STATUS = {INCIDENT_ACK: IncidentStatus.ACKNOWLEDGED,
                 INCIDENT_MITIGATED: IncidentStatus.MITIGATED,
                 INCIDENT_RESOLVE: IncidentStatus.RESOLVED}
INCIDENT_ACTIONS = frozenset(ACTION_STATUS) | {INCIDENT_MERGE}  # their value: the incident id
STATUS_EMOJI = {"triggered": "🔴", "acknowledged": "🟡", "investigating": "🟣",
                "mitigated": "🔵", "resolved": "🟢"}  # the terminal's STATUS_STYLE colours
STEP_ICON = {"running": "⏳", "ok": "✅", "failed": "❌"}
NOBODY_YET = "nobody has acknowledged or acted yet"
# The timeline's event kinds as people say them.
EVENT_NAME = {"alert_fired": "alert fired", "alert_resolved": "alert resolved",
              "status_changed": "status", "pagerduty": "PagerDuty", "note": "note",
              "deploy": "deploy", "change": "change", "hypothesis_posted": "hypothesis",
              "hypothesis_feedback": "verdict", "message_pinned": "pinned"}
_SUMMARY_SECTIONS = (("Summary", ("summary",)), ("Root cause", ("root cause",)),
                     ("Action items", ("action item", "follow-up", "follow up")))
_TITLE_LINE = re.compile(r"^\s{0,3}#\s")


def clip(text: str, limit: int) -> str:
    """At most `limit` characters, "…" marking a cut (for plain text and raw Markdown)."""
    return text if len(text) <= limit else text[:limit - 1] + "…"


def confidence_bar(confidence: float) -> str:
    filled = round(confidence * 10)
    return "▰" * filled + "▱" * (10 - filled) + f" {confidence:.0%}"


@dataclass(frozen=True)
class Step:
    """A button that moves an incident: its label, action id, whether it is the main one, and
    whether it asks "are you sure?" first (resolving is for everyone in the channel)."""

    label: str
    action: str
    primary: bool = False
    confirm: bool = False


def incident_steps(incident: Incident) -> list[Step]:
    """The buttons for the steps still ahead of the incident (none once it is resolved)."""
    if incident.id is None or incident.status not in STATUS_EMOJI:
        return []
    ahead = steps_ahead(incident)
    steps = [Step("Acknowledge", INCIDENT_ACK, primary=True),
             Step("Mitigated", INCIDENT_MITIGATED), Step("Resolve", INCIDENT_RESOLVE, confirm=True)]
    shown = [s for s in steps if ACTION_STATUS[s.action] in ahead]
    target = (incident.related or {}).get("maybe_same")
    if shown and target and incident.merged_into_id is None:
        shown.append(Step(f"Merge into INC-{target}", INCIDENT_MERGE))
    return shown


def incident_facts(incident: Incident, *, when: Callable[[datetime], str]
                   ) -> list[tuple[str, str]]:
    """Status, severity, service, when it triggered (`when` writes a time in the reader's zone)
    and, once resolved, how long it lasted."""
    start = utc(incident.triggered_at)
    facts = [("Status", f"{STATUS_EMOJI.get(incident.status, '⚪')} {incident.status}"),
             ("Severity", clip(incident.severity or "—", 100)),
             ("Service", clip(incident.service or "—", 200)), ("Triggered", when(start))]
    # No "open for N minutes": a posted card does not tick, and a frozen duration misleads.
    if incident.resolved_at is not None:
        facts.append(("Resolved after", format_duration(
            max(utc(incident.resolved_at) - start, timedelta(0)))))
    if incident.merged_into_id is not None:
        facts.append(("Merged into", f"INC-{incident.merged_into_id} — follow it there"))
    elif incident.reason:
        facts.append(("Why together", clip(incident.reason, 300)))
    if (incident.related or {}).get("maybe_why") and incident.merged_into_id is None:
        facts.append(("Maybe the same as", clip(str(incident.related["maybe_why"]), 200)))
    return facts


def alert_line(alert: Alert, *, bold: Callable[[str], str], text: Callable[[str], str],
               when: Callable[[datetime], str], limit: int) -> str:
    """"🔥 Name · severity · since 04:26 — summary": a firing alert on an incident card, in a
    platform's bold, escaping (`text`) and time of day (`when`)."""
    summary = alert.annotations.get("summary")
    return "".join((f"🔥 {bold(text(clip(alert.alertname, limit)))}",
                    f" · {text(clip(alert.severity, 32))}" if alert.severity else "",
                    f" · since {when(alert.starts_at)}",
                    f" — {text(clip(str(summary), limit))}" if summary else ""))


def incident_heading(incident: Incident) -> str:
    icon = "✅" if incident.status == IncidentStatus.RESOLVED else "🔥"
    return f"{icon} {incident.ref} · {clip(incident.title, 200)}"


def incident_fallback(incident: Incident) -> str:
    return f"{incident.ref} ({incident.status}): {incident.title}" + (
        f" — {incident.service}" if incident.service else "")


def answer_footer(answer: Answer, *, tool: Callable[[str], str] = str,
                  charts: str = "chart(s)", charts_shown: int = 0) -> str:
    """"🧠 brain · 🔧 tools ×n (k failed) · 📈 charts": how the answer was made (the charts
    counted are only those the message really shows or carries)."""
    footer = [f"🧠 {answer.brain}"]
    counts: dict[str, list[int]] = {}
    for used in answer.tools:
        if not used.unavailable:  # a setup problem is the operator's, in the logs
            counts.setdefault(used.name, [0, 0])[0 if used.ok else 1] += 1
    if counts:
        footer.append("🔧 " + ", ".join(
            tool(name) + (f" ×{ok + failed}" if ok + failed > 1 else "")
            + (f" ({failed} failed)" if failed else "") for name, (ok, failed) in counts.items()))
    if charts_shown:
        footer.append(f"📈 {charts_shown} {charts}")
    return " · ".join(footer)


def progress_title(steps: Sequence[tuple[str, str]]) -> tuple[str, list[tuple[str, str]], str]:
    """The progress message's title, the steps it lists (the last 40, with a count of the
    earlier ones as a first "…" step), and its plain text."""
    running = any(state == "running" for _, state in steps)
    failed = sum(state == "failed" for _, state in steps)
    title = ("🔎 Investigating…" if running or not steps else
             f"🔎 Investigated with {len(steps)} tool(s)"
             + (f", {failed} failed" if failed else ""))
    shown = list(steps[-40:])
    if len(steps) > len(shown):
        shown.insert(0, (f"… {len(steps) - len(shown)} earlier", ""))
    text = title + (": " + ", ".join(f"{name} {state}" for name, state in steps) if steps else "")
    return title, shown, text


def timeline_facts(view: TimelineView, *, bold: Callable[[str], str]) -> list[str]:
    """The timeline's header facts: status, service, trigger, and each step's time to reach."""
    facts = [f"{STATUS_EMOJI.get(view.status, '⚪')} {view.status}"]
    if view.service:
        facts.append(clip(view.service, 200))
    facts += [f"{label} {bold(format_duration(td))}" for label, td in (
        ("acknowledged after", view.time_to_acknowledge),
        ("mitigated after", view.time_to_mitigate if view.mitigated else None),
        ("resolved after", view.time_to_resolve)) if td is not None]
    return facts


def postmortem_parts(markdown: str) -> tuple[str | None, list[tuple[str, str]]]:
    """A post-mortem draft in short: its title and the first paragraph of its Summary, Root
    cause and Action items — else its opening, under an empty label."""
    title, sections = outline(markdown)
    parts: list[tuple[str, str]] = []
    for label, names in _SUMMARY_SECTIONS:
        first = next((p for name, p in sections if name.startswith(names) and p), None)
        if not first:
            continue
        if label == "Action items":
            first = "\n".join(_action(line) for line in first.splitlines())
        said = _words(first)
        if any(said and said in _words(p) for _label, p in parts):
            continue  # the summary says it already (the root cause, as a rule)
        parts.append((label, shorten(first, 700)))
    if not parts:
        opening = "\n".join(line for line in markdown.splitlines()
                            if not _TITLE_LINE.match(line)).strip()
        parts = [("", shorten(opening, 600))] if opening else []
    return (title.replace("**", "") if title else None), parts


def _action(line: str) -> str:
    """"- [ ] Roll back — owner:" → "- Roll back": no checkbox, no blank owner."""
    line = re.sub(r"^(\s*[-*+]\s+)\[[ xX]\]\s*", r"\1", line)
    return re.sub(r"\s*—\s*owner:\s*$", "", line)


def _words(text: str) -> str:
    """The words of a paragraph, lowercased, without Markdown emphasis or labels."""
    text = re.sub(r"\*\*[^*]+:\*\*|[*_`]", " ", text.lower())
    return " ".join(re.findall(r"[\w.%→]+", text))


def who_is_on_it(responders: Sequence[str]) -> str:
    return ", ".join(dict.fromkeys(r for r in responders if r)) or NOBODY_YET
