"""Terminal rendering with rich: an incident card, its timeline, and queued channel messages."""

from __future__ import annotations

from datetime import datetime, timedelta

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from knowledge.alerts import Alert
from knowledge.incidents import Incident
from knowledge.outbox import OutboxMessage
from knowledge.timeline import TimelineEvent
from skills.types import format_duration

STATUS_STYLE = {"triggered": "bold red", "acknowledged": "bold yellow",
                "investigating": "bold magenta", "mitigated": "bold cyan",
                "resolved": "bold green"}
KIND_ICON = {"alert_fired": "🔥", "alert_resolved": "✅", "status_changed": "➜",
             "pagerduty": "📟", "note": "📝", "deploy": "🚀", "change": "🔧",
             "hypothesis_posted": "💡", "hypothesis_feedback": "☑", "message_pinned": "📌"}


def duration(delta: timedelta | None) -> str:
    return "—" if delta is None else format_duration(delta)


def clock(t: datetime | None) -> str:
    return t.astimezone().strftime("%H:%M:%S") if t else "—"


def incident_card(incident: Incident, alerts: list[Alert]) -> Panel:
    head = Text.assemble((f"{incident.ref} ", "bold"), (incident.title, "bold"))
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("status", Text(incident.status, style=STATUS_STYLE.get(incident.status, "")))
    # Alert text is untrusted: always Text, never markup ("[critical]" must print as is).
    facts.add_row("service", Text(incident.service or "—"))
    facts.add_row("severity", Text(incident.severity or "—"))
    facts.add_row("triggered", clock(incident.triggered_at))
    ack = incident.acknowledged_at
    facts.add_row("acknowledged", f"{clock(ack)}  (time to acknowledge "
                  f"{duration(ack - incident.triggered_at if ack else None)})")
    res = incident.resolved_at
    facts.add_row("resolved", f"{clock(res)}  (time to resolve "
                  f"{duration(res - incident.triggered_at if res else None)})")
    if incident.pagerduty_url:
        facts.add_row("pagerduty", Text(incident.pagerduty_url))
    alert_table = Table(box=None, show_header=True, header_style="dim", pad_edge=False)
    for col in ("alert", "severity", "status", "started", "ended"):
        alert_table.add_column(col)
    for a in alerts:
        alert_table.add_row(Text(a.alertname), Text(a.severity or "—"),
                            Text(a.status, style="green" if a.status == "resolved" else "red"),
                            clock(a.starts_at), clock(a.ends_at))
    parts: list[RenderableType] = [head, "", facts]
    if alerts:
        parts += ["", alert_table]
    return Panel(Group(*parts), title="incident", border_style="red", expand=False)


def timeline_table(events: list[TimelineEvent]) -> Table:
    table = Table(title="timeline", title_justify="left", show_lines=False, expand=False)
    table.add_column("time", style="dim", no_wrap=True)
    table.add_column("")
    table.add_column("source", style="cyan", no_wrap=True)
    table.add_column("what")
    for e in events:
        table.add_row(clock(e.occurred_at), KIND_ICON.get(e.kind, "•"), e.source, Text(e.summary))
    return table


def channel_messages(messages: list[OutboxMessage]) -> Panel:
    lines = Table.grid(padding=(0, 1))
    lines.add_column()
    for m in messages:
        lines.add_row(Text(m.text))
    if not messages:
        lines.add_row("(nothing)")
    return Panel(lines, title="what the copilot posts in the incident channel",
                 border_style="blue", expand=False)
