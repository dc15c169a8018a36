"""`sre-copilot investigate`: runs the evidence engine from a terminal against PROMETHEUS_URL
and prints the ranked hypotheses (or, with --json, their structured form). `--service` starts
from a service of the call graph; `--alert NAME` (with `--match label=value`, or written
`NAME{label="value"}`) starts from an alert — the one firing now in Prometheus with those
labels, else its rule. The changes pipelines posted to `/webhooks/changes` are weighed too."""

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
from skills.alert_context import AlertRef
from skills.context import ChangeRecord
from skills.hypotheses.models import Investigation
from skills.hypotheses_tool import stored_changes
from skills.investigation import (
    InvestigationRequest,
    combine,
    investigate_alert,
    investigate_with_snapshot,
)
from skills.prometheus.client import PrometheusClient, PrometheusError
from skills.promql import NotPromQL, parse
from skills.types import SkillContext

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


def parse_alert(name: str, matches: list[str]) -> tuple[str, dict[str, str]]:
    """`NAME` with `label=value` matches, or `NAME{label="value",…}` → (name, labels)."""
    labels: dict[str, str] = {}
    if "{" in name:
        try:
            node = parse(name)
        except NotPromQL as exc:
            raise UsageError(f"--alert {name!r}: expected NAME or NAME{{label=\"value\"}}"
                             ) from exc
        if type(node).__name__ != "VectorSelector":
            raise UsageError(f"--alert {name!r}: expected NAME or NAME{{label=\"value\"}}")
        for m in node.matchers.matchers:
            if str(m.op) not in ("MatchOp.Equal", "="):
                raise UsageError(f"--alert {name!r}: only label=\"value\" matchers")
            labels[m.name] = m.value
        name = node.name or labels.pop("alertname", "")
    for item in matches:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--match {item!r}: expected label=value, e.g. instance=db-1:9100")
        labels[key.strip()] = value.strip().strip('"')
    if not name:
        raise UsageError("--alert needs the alert's name")
    return name, labels


async def find_alert(prom: PrometheusClient, name: str, labels: dict[str, str]) -> AlertRef:
    """The alert firing (or pending) now with that name and those labels, as Prometheus has it;
    else just the name and labels (the rule is then looked up by name)."""
    try:
        active = await prom.alerts()
    except PrometheusError:
        active = []
    for a in active:
        have = a.get("labels", {})
        if have.get("alertname") == name and all(have.get(k) == v for k, v in labels.items()):
            started = a.get("activeAt")
            return AlertRef(name=name, labels=dict(have),
                            annotations=dict(a.get("annotations") or {}),
                            starts_at=datetime.fromisoformat(started.replace("Z", "+00:00"))
                            if started else None)
    return AlertRef(name=name, labels={"alertname": name, **labels})


async def changes_of(settings: Settings, *, start: datetime, end: datetime
                     ) -> list[ChangeRecord]:
    """The changes stored from `/webhooks/changes` in the range (none if the database cannot
    be opened: the investigation goes on without them)."""
    from bot.startup import prepare_database
    from knowledge.orgs import ensure_org

    try:
        db = await prepare_database(settings)
    except Exception:  # no database here: the metrics alone still answer
        return []
    try:
        async with db.session() as session, session.begin():
            org = await ensure_org(session, slug=settings.default_org,
                                   name=settings.default_org)
        assert org.id is not None
        return await stored_changes(SkillContext(clients={"db": db}, org_id=org.id),
                                    start=start, end=end)
    finally:
        await db.dispose()


def _unanswered(settings: Settings, inv: Investigation, errors: list[str]) -> None:
    """Queries failed and nothing was found: that is Prometheus failing, not "no clear cause"
    (exit 2, naming it). With findings despite some failures, the verdict says how many."""
    if errors and not inv.hypotheses:
        raise UsageError(f"Prometheus at {settings.prometheus_url} did not answer: "
                         f"{len(errors)} queries failed; the first: {errors[0]}")


async def run(settings: Settings, *, service: str | None, at: str | None, window: str,
              json_out: bool, alert: str | None = None, matches: list[str] | None = None,
              console: Console | None = None) -> int:
    console = console or Console()
    if not settings.prometheus_url:
        raise UsageError("PROMETHEUS_URL is not set; e.g. PROMETHEUS_URL=http://prometheus:9090")
    if not service and not alert:
        raise UsageError("give --service NAME or --alert NAME")
    when, span = parse_at(at), parse_window(window)
    changes = await changes_of(settings, start=when - span - timedelta(minutes=30), end=when)
    async with PrometheusClient(settings.prometheus_url,
                                timeout=settings.prometheus_timeout_seconds) as prom:
        try:
            by_service = None
            if service:
                by_service, service_snap = await investigate_with_snapshot(
                    prom, InvestigationRequest(service=service, at=when, window=span),
                    changes=changes)
                _unanswered(settings, by_service, service_snap.errors)
            if alert:
                name, labels = parse_alert(alert, matches or [])
                ref = await find_alert(prom, name, labels)
                by_alert, snap = await investigate_alert(prom, ref, at=when, window=span,
                                                         changes=changes)
                _unanswered(settings, by_alert, snap.errors)
                if snap.expr is None:
                    await prom.rules()  # Prometheus away, rather than no such rule: exit 2 too
                    raise UsageError(f"--alert {name}: no alert of that name is firing and no "
                                     "loaded rule has it (see Prometheus' /alerts and /rules)")
                inv = combine(by_alert, by_service) if by_service else by_alert
            else:
                assert by_service is not None
                inv = by_service
        except PrometheusError as exc:
            raise UsageError(str(exc)) from exc
    if json_out:
        print(json.dumps(as_json(inv), indent=2))
    else:
        render(inv, console)
    return 0
