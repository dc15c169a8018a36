"""`sre-copilot investigate`: runs the evidence engine from a terminal against PROMETHEUS_URL
and prints the ranked hypotheses (or, with --json, their structured form)."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.settings import Settings
from skills.hypotheses.models import Investigation
from skills.investigation import InvestigationRequest, investigate
from skills.prometheus.client import PrometheusClient, PrometheusError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class UsageError(ValueError):
    """A bad command-line value; the message says what to write instead."""


def parse_window(text: str) -> timedelta:
    """'2h', '90m', '1h30m', '45s' → a timedelta."""
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhd])", text.strip().lower())
    if not parts or "".join(n + u for n, u in parts) != text.strip().lower():
        raise UsageError(f"--window {text!r}: expected a duration such as 2h, 90m or 1h30m")
    return timedelta(seconds=sum(float(n) * _UNITS[u] for n, u in parts))


def parse_at(text: str | None) -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise UsageError(f"--at {text!r}: expected ISO 8601, e.g. 2026-11-20T03:15:00Z") from exc
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def as_json(inv: Investigation) -> dict[str, Any]:
    evidence = inv.evidence_by_id()
    return {
        "service": inv.service, "at": inv.at.isoformat(), "start": inv.start.isoformat(),
        "end": inv.end.isoformat(), "onset": inv.onset.isoformat() if inv.onset else None,
        "scope": inv.scope, "verdict": inv.verdict,
        "hypotheses": [
            {"rank": i, "statement": h.statement, "cause": h.cause.model_dump(),
             "confidence": h.confidence, "next_check": h.next_check,
             "evidence": [evidence[e].model_dump(mode="json") for e in h.evidence_ids]}
            for i, h in enumerate(inv.hypotheses, start=1)],
        "evidence": [e.model_dump(mode="json") for e in inv.evidence],
    }


def render(inv: Investigation, console: Console) -> None:
    evidence = inv.evidence_by_id()
    head = Text.assemble(("Investigation of ", "bold"), (inv.service, "bold cyan"),
                         f"  {inv.start:%Y-%m-%d %H:%M}–{inv.end:%H:%M} UTC")
    console.print(head)
    console.print(Text(inv.verdict, style="bold"))
    console.print(Text(f"scope: {', '.join(inv.scope)}", style="dim"))
    for i, h in enumerate(inv.hypotheses, start=1):
        body = Table.grid(padding=(0, 1))
        body.add_column()
        body.add_row(Text(h.statement))
        for e in h.evidence_ids:
            ev = evidence[e]
            line = Text.assemble((f"{e} ", "dim"), ev.summary)
            if ev.query:
                line.append(f"\n    {ev.query}", style="dim")
            body.add_row(line)
        body.add_row(Text.assemble(("next: ", "bold"), h.next_check))
        bar = "█" * round(h.confidence * 10) + "░" * (10 - round(h.confidence * 10))
        console.print(Panel(body, title=f"#{i} {h.cause.service} · {h.cause.kind} · "
                                        f"{bar} {h.confidence:.2f}", title_align="left",
                            border_style="green" if h.confidence >= 0.5 else "yellow"))


async def run(settings: Settings, *, service: str, at: str | None, window: str, json_out: bool,
              console: Console | None = None) -> int:
    console = console or Console()
    if not settings.prometheus_url:
        raise UsageError("PROMETHEUS_URL is not set; e.g. PROMETHEUS_URL=http://prometheus:9090")
    request = InvestigationRequest(service=service, at=parse_at(at), window=parse_window(window))
    async with PrometheusClient(settings.prometheus_url,
                                timeout=settings.prometheus_timeout_seconds) as prom:
        try:
            inv = await investigate(prom, request)
        except PrometheusError as exc:
            raise UsageError(str(exc)) from exc
    if json_out:
        print(json.dumps(as_json(inv), indent=2))
    else:
        render(inv, console)
    return 0
