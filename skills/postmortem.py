"""Postmortem drafts: a Markdown document built from an incident, its timeline and its stored
hypotheses, in which every number comes from those inputs. Impact figures are taken only from
stored evidence, cited by evidence id and query, and say "not measured" where there is none.

The timeline is read through the `IncidentTimeline` protocol (which `skills.timeline.TimelineView`
satisfies), so this skill does not import its sibling.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.hypotheses import Hypothesis, HypothesisStatus, list_hypotheses
from knowledge.incidents import Incident, IncidentNotFound, find_incident, get_incident
from knowledge.timeline import list_events, once_each
from skills.types import Evidence, IncidentRef, SkillContext, SkillResult, format_duration

CONTRIBUTING_MIN = 0.2  # hypotheses at least this likely are listed as contributing factors
CHANGE_KINDS = frozenset({"deploy", "change"})  # timeline kinds of deploys and other changes
_Peak = tuple[float, dict[str, Any]]  # a peak value and the evidence dict it comes from

# What to do about a root cause of each kind ({service} is the cause's service).
ACTIONS: dict[str, tuple[str, ...]] = {
    "deploy": ("Gate {service} deploys on error ratio and latency: a canary with automatic "
               "rollback.", "Add a test or check that would have caught this change."),
    "config": ("Roll out {service} config changes gradually, validated, with a one-step "
               "revert.",),
    "errors": ("Find and fix the failing code path of {service}; alert on its error ratio by "
               "route.",),
    "latency": ("Find what {service} waits on; set timeouts and a latency SLO with an alert.",),
    "cpu": ("Review CPU requests, limits and autoscaling of {service}.",),
    "memory": ("Find what grows the memory of {service}; alert before it is OOM-killed.",),
    "saturation": ("Review the capacity of {service}: connection pools, queues, autoscaling.",),
    "dependency": ("Protect the callers of {service}: timeouts, retries with backoff, a circuit "
                   "breaker and a fallback.",),
    "traffic": ("Prepare {service} for traffic surges: rate limits and autoscaling headroom.",),
}


class TimelineLine(Protocol):
    """One event as a draft reads it."""

    @property
    def at(self) -> datetime: ...
    @property
    def kind(self) -> str: ...
    @property
    def source(self) -> str: ...
    @property
    def summary(self) -> str: ...


class IncidentTimeline(Protocol):
    """What a draft reads of a timeline (`skills.timeline.TimelineView` has it)."""

    @property
    def events(self) -> Sequence[TimelineLine]: ...
    @property
    def time_to_acknowledge(self) -> timedelta | None: ...
    @property
    def time_to_mitigate(self) -> timedelta | None: ...
    @property
    def time_to_resolve(self) -> timedelta | None: ...


@dataclass(frozen=True)
class _Line:
    at: datetime
    kind: str
    source: str
    summary: str


@dataclass(frozen=True)
class _Timeline:
    events: list[_Line] = field(default_factory=list)
    time_to_acknowledge: timedelta | None = None
    time_to_mitigate: timedelta | None = None
    time_to_resolve: timedelta | None = None


def _duration(td: timedelta) -> str:
    return format_duration(max(td, timedelta(0)))


def _when(at: datetime) -> str:
    return f"{at.astimezone(UTC):%Y-%m-%d %H:%M} UTC"


def _code(text: str) -> str:
    return f"`` {text} ``" if "`" in text else f"`{text}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _peak_text(signal: str, v: float) -> str:
    """Same wording as the hypotheses' statements."""
    if signal == "errors":
        return f"{v * 100:.1f}%"
    return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"


def _evidence(hypotheses: Sequence[Hypothesis]) -> list[dict[str, Any]]:
    """Every stored evidence dict once (hypotheses of one investigation share them)."""
    seen: set[tuple[Any, Any]] = set()
    out = []
    for h in hypotheses:
        for ev in h.evidence:
            key = (ev.get("id"), ev.get("query"))
            if key not in seen:
                seen.add(key)
                out.append(ev)
    return out


def _peak(evidence: list[dict[str, Any]], signal: str, service: str | None) -> _Peak | None:
    """The highest stored peak of `signal`, preferring the incident's own service."""
    found = []
    for ev in evidence:
        labels, values = ev.get("labels") or {}, ev.get("values") or {}
        peak = values.get("peak")
        if labels.get("signal") == signal and isinstance(peak, int | float) and math.isfinite(
                peak):
            own = labels.get("service") == service and not labels.get("target")
            found.append((own, float(peak), ev))
    return max(found, key=lambda f: (f[0], f[1]))[1:] if found else None


def _impact_line(name: str, signal: str, peak: _Peak | None) -> str:
    if peak is None:
        return f"- **{name}:** not measured (no stored evidence of it)"
    value, ev = peak
    where = (ev.get("labels") or {}).get("service")
    cite = f"evidence {_code(str(ev.get('id', '?')))}"
    if ev.get("query"):
        cite += f", query {_code(str(ev['query']))}"
    return (f"- **{name}:** {_peak_text(signal, value)}"
            + (f" on {where}" if where else "") + f" ({cite})")


def _root(hypotheses: Sequence[Hypothesis]) -> tuple[Hypothesis | None, bool]:
    """The confirmed hypothesis, else the most likely one not rejected (unconfirmed)."""
    ranked = sorted(hypotheses, key=lambda h: -h.confidence)
    confirmed = [h for h in ranked if h.status == HypothesisStatus.CONFIRMED.value]
    if confirmed:
        return confirmed[0], True
    open_ = [h for h in ranked if h.status != HypothesisStatus.REJECTED.value]
    return (open_[0], False) if open_ else (None, False)


def _cause_text(h: Hypothesis) -> str:
    kind, service = h.cause.get("kind"), h.cause.get("service")
    if not kind:
        return ""
    return f"{kind} of {service}" if service else str(kind)


def _ids(h: Hypothesis) -> str:
    ids = [_code(str(e["id"])) for e in h.evidence if e.get("id")]
    return ", ".join(ids) or "none cited"


def _feedback(h: Hypothesis) -> str:
    if not h.feedback:
        return ""
    last = h.feedback[-1]
    text = f" by {last['by']}" if last.get("by") else ""
    return text + (f" (“{last['comment']}”)" if last.get("comment") else "")


def _next_checks(h: Hypothesis) -> list[str]:
    checks = [h.cause.get("next_check")] + [e.get("next_check") for e in h.evidence]
    return [c for c in checks if isinstance(c, str) and c.strip()]


def _onset(evidence: list[dict[str, Any]]) -> tuple[datetime, str] | None:
    onsets = [(float(v), str(e.get("id", "?"))) for e in evidence
              if isinstance(v := (e.get("values") or {}).get("onset_unix"), int | float)]
    if not onsets:
        return None
    unix, ev_id = min(onsets)
    return datetime.fromtimestamp(unix, tz=UTC), ev_id


def _link(chart: Path, relative_to: Path | None) -> str:
    if not chart.is_absolute():
        target = chart.as_posix()
    elif relative_to is not None:
        target = Path(os.path.relpath(chart, relative_to)).as_posix()
    else:
        target = chart.name
    label = chart.stem.replace("_", " ").replace("-", " ")
    return f"![{label}](<{target}>)"


@dataclass
class _Facts:
    """What the sections share, worked out once."""

    incident: Incident
    timeline: IncidentTimeline
    hypotheses: Sequence[Hypothesis]
    errors: _Peak | None
    latency: _Peak | None
    root: Hypothesis | None
    confirmed: bool
    others: list[Hypothesis]
    onset: tuple[datetime, str] | None

    @property
    def alert_late(self) -> timedelta | None:
        """How long after the first anomaly in the evidence the incident triggered."""
        if self.onset is None or self.onset[0] >= self.incident.triggered_at:
            return None
        return self.incident.triggered_at - self.onset[0]


def _facts(incident: Incident, timeline: IncidentTimeline, hypotheses: Sequence[Hypothesis]
           ) -> _Facts:
    evidence = _evidence(hypotheses)
    root, confirmed = _root(hypotheses)
    others = [h for h in sorted(hypotheses, key=lambda h: -h.confidence)
              if h is not root and h.status != HypothesisStatus.REJECTED.value
              and (h.confidence >= CONTRIBUTING_MIN
                   or h.status == HypothesisStatus.CONFIRMED.value)]
    return _Facts(incident=incident, timeline=timeline, hypotheses=hypotheses,
                  errors=_peak(evidence, "errors", incident.service),
                  latency=_peak(evidence, "latency", incident.service),
                  root=root, confirmed=confirmed, others=others, onset=_onset(evidence))


def _summary(f: _Facts) -> list[str]:
    inc = f.incident
    about = f"{inc.ref} affected {inc.service}" if inc.service else inc.ref
    about += f" (severity {inc.severity})" if inc.severity else ""
    state = (f"resolved at {_when(inc.resolved_at)}" if inc.resolved_at
             else f"is still {inc.status}")
    cause = ("Root cause: unknown." if f.root is None else
             f"Root cause ({'confirmed' if f.confirmed else 'unconfirmed'}): {f.root.statement}")
    return [f"{about}. It triggered at {_when(inc.triggered_at)} and {state}.", cause]


def _impact(f: _Facts) -> list[str]:
    inc = f.incident
    duration = (f"{_duration(inc.resolved_at - inc.triggered_at)}, from "
                f"{_when(inc.triggered_at)} to {_when(inc.resolved_at)}" if inc.resolved_at
                else f"ongoing (triggered {_when(inc.triggered_at)}, now {inc.status})")
    return [f"- **Duration:** {duration}",
            f"- **Affected service:** {inc.service or 'unknown'}",
            _impact_line("Peak error rate", "errors", f.errors),
            _impact_line("Peak latency", "latency", f.latency)]


def _timeline(f: _Facts) -> list[str]:
    t = f.timeline
    out = [f"- Time to {name}: {_duration(td) if td is not None else 'not yet'}"
           for name, td in (("acknowledge", t.time_to_acknowledge),
                            ("mitigate", t.time_to_mitigate), ("resolve", t.time_to_resolve))]
    if f.incident.mitigated_at is None and t.time_to_mitigate is not None:
        out[1] += " (no mitigation step was recorded: counted to the resolution)"
    out += ["", "| Time (UTC) | Event | Source | What happened |", "|---|---|---|---|"]
    out += [f"| {e.at.astimezone(UTC):%Y-%m-%d %H:%M:%S} | {e.kind.replace('_', ' ')} | "
            f"{_cell(e.source)} | {_cell(e.summary)} |" for e in t.events]
    return out if t.events else [*out, "| — | — | — | no events recorded |"]


def _root_cause(f: _Facts) -> list[str]:
    if f.root is None:
        return ["Unknown: " + ("every hypothesis was rejected." if f.hypotheses
                               else "no hypothesis was recorded.")]
    h, mark = f.root, "Confirmed" if f.confirmed else "Unconfirmed"
    cause = f"Cause: {_cause_text(h)}. " if _cause_text(h) else ""
    said = f" Confirmed{_feedback(h)}." if f.confirmed else " Not confirmed by a responder yet."
    return [f"**{mark}:** {h.statement}", "",
            f"{cause}Confidence {h.confidence:.2f}. Evidence: {_ids(h)}.{said}"]


def _contributing(f: _Facts) -> list[str]:
    out = [f"- {h.statement} (confidence {h.confidence:.2f}, {h.status}; evidence {_ids(h)})"
           for h in f.others]
    out += [f"- Change on the timeline at {_when(e.at)}: {e.summary}"
            for e in f.timeline.events if e.kind in CHANGE_KINDS]
    return out or ["- None identified."]


def _open_questions(f: _Facts) -> list[str]:
    inc, tta = f.incident, f.timeline.time_to_acknowledge
    out = [f"- Rejected{_feedback(h)}: {h.statement} What ruled it out?"
           for h in f.hypotheses if h.status == HypothesisStatus.REJECTED.value]
    if f.root is not None and not f.confirmed:
        out.append("- Is the root cause right? No responder has confirmed it.")
    if not f.hypotheses:
        out.append("- No hypothesis was recorded: what caused this incident?")
    if inc.service is None:
        out.append("- Which service was affected? The incident names none.")
    if f.errors is None:
        out.append("- The error rate was not measured: what was it, and who was affected?")
    if f.latency is None:
        out.append("- Latency was not measured: how slow were responses?")
    early = "- Was the alert early enough? " + (
        f"It was acknowledged {_duration(tta)} after it triggered" if tta is not None
        else "It was never acknowledged")
    if f.onset is not None and f.alert_late is not None:
        early += (f"; the first anomaly in the evidence began {_duration(f.alert_late)} "
                  f"before it triggered (evidence {_code(f.onset[1])})")
    out.append(early + ".")
    if inc.resolved_at is None:
        out.append(f"- The incident is still {inc.status}: revisit this draft once it is "
                   "resolved.")
    return out


def _action_items(f: _Facts) -> list[str]:
    items: list[str] = []
    if f.root is None:
        items.append(f"Find the root cause of {f.incident.ref}.")
    else:
        kind = str(f.root.cause.get("kind") or "unknown")
        who = str(f.root.cause.get("service") or f.incident.service or "the affected service")
        items += [t.format(service=who) for t in ACTIONS.get(kind, ())]
        if not f.confirmed:
            items.append("Confirm or rule out the root-cause hypothesis with the responders.")
    for h in ([f.root] if f.root is not None else []) + f.others:
        items += [c for c in _next_checks(h) if c not in items]
    if f.alert_late is not None:
        items.append("Review the alert's threshold and `for:` duration so it fires closer to "
                     "the onset.")
    if f.timeline.time_to_acknowledge is None and f.incident.resolved_at is None:
        items.append("Check that the page reached the on-call responder.")
    return [f"- [ ] {item} — owner:" for item in items]


def draft_postmortem(*, incident: Incident, timeline: IncidentTimeline,
                     hypotheses: Sequence[Hypothesis], charts: Sequence[Path] = (),
                     relative_to: Path | None = None) -> str:
    """The Markdown draft. Relative chart paths are linked as given; absolute ones relative
    to `relative_to` (the draft's directory), or by file name without it."""
    f = _facts(incident, timeline, hypotheses)
    out = [f"# Postmortem (draft): {incident.ref} — {incident.title}", "",
           "> Drafted by SRE Copilot from the incident record, its timeline and its stored "
           "hypotheses. Figures cite their evidence; review every line before publishing."]
    sections = (("Summary", _summary(f)), ("Impact", _impact(f)), ("Timeline", _timeline(f)),
                ("Root cause", _root_cause(f)), ("Contributing factors", _contributing(f)),
                ("Open questions", _open_questions(f)), ("Action items", _action_items(f)),
                ("Charts", [_link(c, relative_to) for c in charts] or ["No charts attached."]))
    for title, lines in sections:
        out += ["", f"## {title}", "", *lines]
    return "\n".join(out) + "\n"


def _since(start: datetime, end: datetime | None) -> timedelta | None:
    return None if end is None else max(timedelta(0), end - start)


async def postmortem_for(session: AsyncSession, *, org_id: int, incident_id: int,
                         charts: Sequence[Path] = (), relative_to: Path | None = None) -> str:
    """Load an incident of the org, its timeline and hypotheses, and draft its postmortem.
    Raises `IncidentNotFound` for an incident of another org or none."""
    incident = await get_incident(session, org_id=org_id, incident_id=incident_id)
    events = await list_events(session, org_id=org_id, incident_id=incident_id)
    hypotheses = await list_hypotheses(session, org_id=org_id, incident_id=incident_id)
    start = incident.triggered_at
    timeline = _Timeline(
        events=[_Line(e.occurred_at, e.kind, e.source, e.summary) for e in once_each(events)],
        time_to_acknowledge=_since(start, incident.acknowledged_at),
        time_to_mitigate=_since(start, incident.mitigated_at or incident.resolved_at),
        time_to_resolve=_since(start, incident.resolved_at))
    return draft_postmortem(incident=incident, timeline=timeline, hypotheses=hypotheses,
                            charts=charts, relative_to=relative_to)


class Postmortem:
    name: ClassVar[str] = "postmortem"
    description: ClassVar[str] = (
        "Draft the post-mortem of an incident in Markdown from its record: summary, impact "
        "(only measured figures), timeline, root cause from confirmed or top hypotheses, "
        "contributing factors, open questions and action items.")
    Input: ClassVar[type[BaseModel]] = IncidentRef

    async def run(self, ctx: SkillContext, args: BaseModel) -> SkillResult:
        assert isinstance(args, IncidentRef)
        db = ctx.client("db")
        try:
            async with db.session() as session:
                incident = await find_incident(session, org_id=ctx.org_id,
                                               incident_id=args.incident_id)
                assert incident.id is not None
                text = await postmortem_for(session, org_id=ctx.org_id,
                                            incident_id=incident.id)
        except IncidentNotFound as exc:
            return SkillResult(summary=f"No post-mortem: {exc}.", error=str(exc))
        return SkillResult(summary=text, data={"incident": incident.ref, "markdown": text},
                           evidence=[Evidence(id="ev-1", source="timeline",
                                              summary=f"The record of {incident.ref}",
                                              labels={"incident": incident.ref})])
