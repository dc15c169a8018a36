"""How an alert investigation is said: the symptom's evidence (the rule's expression,
evaluated), each moved series as a line with its numbers in its unit, a hypothesis per resource
with the evidence it cites, the next check to run, and the alert's own runbook."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime

from skills.alert_context import AlertSnapshot
from skills.context import ChangeRecord
from skills.families import Family, name_of
from skills.hypotheses.candidates import EvidenceLog, RunbookLead
from skills.hypotheses.models import Cause, CauseKind, RankedHypothesis
from skills.hypotheses.resources import Moved, Subject
from skills.shifts import Shift

EXPLAINS = 0.5  # a neighbour accounts for the symptom when its change is ≥ half of it
KINDS: set[str] = {"deploy", "config", "errors", "latency", "cpu", "memory", "saturation",
                   "dependency", "traffic", "disk", "down", "restarts", "network", "clock"}


def symptom_evidence(log: EvidenceLog, snap: AlertSnapshot, onset: float,
                      watched: Shift | None) -> str:
    """The first evidence of every alert investigation: the rule's expression, evaluated."""
    anat = snap.anatomy
    quantity = anat.quantity if anat else (snap.expr or snap.alert.name)
    when = datetime.fromtimestamp(onset, tz=snap.at.tzinfo)
    firing = len(snap.condition)
    threshold = f" (fires when {anat.comparison[0]} {anat.comparison[1]})" \
        if anat and anat.comparison else ""
    values: dict[str, float] = {"onset_unix": onset, "series_firing": float(firing),
                                "series_watched": float(snap.quantity_all)}
    moved = ""
    if watched is not None:
        values.update({"baseline": watched.baseline, "current": watched.current})
        moved = f": {_num(watched.baseline)} → {_num(watched.current)}"
    if anat is not None and anat.threshold is not None:
        values["threshold"] = anat.threshold
    subject = name_of(snap.condition[0].labels if snap.condition else snap.alert.labels)
    return log.add(source=snap.source, query=quantity, start=snap.start, end=snap.end,
                   step_seconds=snap.step,
                   summary=(f"{snap.alert.name}: what the rule watches" +
                            (f" for {subject}" if subject else "") + moved + threshold +
                            f", holding since {when:%H:%M:%S}; {firing} of "
                            f"{snap.quantity_all} series fire"),
                   values={k: round(v, 6) for k, v in values.items() if math.isfinite(v)},
                   labels={k: v for k, v in snap.alert.labels.items()
                           if k not in ("alertname",)})


def _num(v: float) -> str:
    if not math.isfinite(v):
        return "absent"
    if abs(v) >= 1e9:
        return f"{v / 2**30:.2f} Gi" if float(v).is_integer() else f"{v:.3g}"
    return f"{v:.4g}"


def _fmt(value: float, fam: Family) -> str:
    if not math.isfinite(value):
        return "absent"
    if fam.unit == "bytes":
        for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
            if abs(value) >= size:
                return f"{value / size:.1f} {unit}"
        return f"{value:.0f} B"
    if fam.unit == "seconds":
        return f"{value * 1000:.0f} ms" if abs(value) < 1 else f"{value:.2f} s"
    if fam.unit == "cores":
        return f"{value:.2f} cores"
    return f"{value:.4g}"


def _moved_line(m: Moved) -> str:
    detail = {k: v for k, v in m.labels.items()
              if k in ("mode", "code", "reason", "condition", "status", "phase", "cpu")}
    extra = f" ({', '.join(f'{k}={v}' for k, v in detail.items())})" if detail else ""
    if m.shift.vanished:
        return f"{m.metric}{extra} stopped reporting"
    if m.shift.appeared:
        return f"{m.metric}{extra} appeared at {_fmt(m.shift.current, m.family)}"
    return (f"{m.family.what or m.metric}{extra} {_fmt(m.shift.baseline, m.family)} → "
            f"{_fmt(m.shift.current, m.family)}")


def _visible(m: Moved) -> bool:
    """A move that shows in the numbers as people read them (not `0.00 → 0.00 cores`)."""
    return (m.shift.vanished or m.shift.appeared
            or _fmt(m.shift.baseline, m.family) != _fmt(m.shift.current, m.family))


def worth_saying(s: Subject) -> bool:
    """A neighbour with at least one move that shows in its numbers (or a series gone)."""
    return any(_visible(m) for m in s.drivers + s.around)


def _weight(m: Moved) -> tuple[bool, float]:
    """Order of mention: moved first; among series with a unit, the largest change in that
    unit (a core of user time before a hundredth of steal), else the robust score."""
    size = abs(m.bad_delta) if m.family.unit in ("bytes", "cores") else m.shift.z
    return (not m.shift.moved and not m.shift.appeared, -size)


def _add_moved(log: EvidenceLog, snap: AlertSnapshot, m: Moved) -> str:
    when = (f" from {datetime.fromtimestamp(m.shift.onset, tz=snap.at.tzinfo):%H:%M:%S}"
            if m.shift.onset else "")
    return log.add(source=snap.source, query=m.query, start=snap.start, end=snap.end,
                   step_seconds=snap.step,
                   summary=f"{name_of(m.labels, m.metric)}: {_moved_line(m)}{when} "
                           f"(robust z {m.shift.z:.0f}; {m.relation})",
                   values={k: round(v, 6) for k, v in {
                       "baseline": m.shift.baseline, "current": m.shift.current,
                       "robust_z": m.shift.z, "onset_unix": m.shift.onset or math.nan}.items()
                       if math.isfinite(v)},
                   labels={k: v for k, v in m.labels.items()})


def _kind(s: Subject) -> CauseKind:
    for m in s.drivers + sorted(s.around, key=lambda m: -m.shift.z):
        if m.family.kind in KINDS:
            return m.family.kind  # type: ignore[return-value]
    return "unknown"


def hypothesis(log: EvidenceLog, snap: AlertSnapshot, s: Subject, confidence: float,
                symptom_ev: str, *, subject_of: Subject | None = None) -> RankedHypothesis:
    ids = [symptom_ev]
    main = sorted((m for m in s.drivers if _visible(m)), key=_weight)[:3]
    near = sorted((m for m in s.around if not m.shift.vanished and _visible(m)),
                  key=_weight)[:4]
    gone = [m for m in s.around if m.shift.vanished]
    ids += [_add_moved(log, snap, m) for m in main + near]
    parts = list(dict.fromkeys(_moved_line(m) for m in main + near[:2]))
    if gone:
        last = max(m.shift.onset or 0 for m in gone)
        parts.append(f"{len(gone)} of its series stopped reporting at "
                     f"{datetime.fromtimestamp(last, tz=snap.at.tzinfo):%H:%M:%S}")
    kind = _kind(s)
    onset = s.onset
    when = (f" from {datetime.fromtimestamp(onset, tz=snap.at.tzinfo):%H:%M:%S}"
            if math.isfinite(onset) else "")
    if subject_of is not None and s.explains >= EXPLAINS:
        text = (f"{s.name} {s.why or f'accounts for about {s.explains:.0%} of the change of'} "
                f"{subject_of.name}: {'; '.join(parts)}{when}.")
    elif subject_of is not None:
        text = (f"{s.name}, beside {subject_of.name}, moved too: "
                f"{'; '.join(parts)}{when}.")
    elif parts:
        text = f"{s.name}: {'; '.join(parts)}{when}."
        if s.held and not any(m.shift.moved for m in s.drivers):
            text += (" The rule's condition holds for it; the value has been at this level "
                     "for much of the window (a slow change).")
    else:
        text = (f"{s.name} is what {snap.alert.name} is about; none of the series of its "
                "breakdown moved clearly against its baseline.")
    return RankedHypothesis(
        statement=text,
        cause=Cause(service=s.name, kind=kind, signal=main[0].metric if main else None,
                    resource=dict(s.labels)),
        confidence=round(min(0.99, max(0.01, confidence)), 3), evidence_ids=ids,
        next_check=next_check(s, kind))


def next_check(s: Subject, kind: str) -> str:
    ident = s.labels
    host = ident.get("instance") or ident.get("node") or "the host"
    if kind == "disk" and ident.get("mountpoint"):
        return (f"Find what fills {ident['mountpoint']} on {host}: `du -xh --max-depth=2 "
                f"{ident['mountpoint']} | sort -h | tail`, then rotate or delete, or grow it.")
    if kind == "down" and any(m.metric == "up" for m in s.drivers):
        return (f"Check the process behind {host}" + (f" (job {ident['job']})"
                if ident.get("job") else "") + ": is it running and listening? "
                f"`curl -s http://{host}/metrics | head`")
    if kind == "down" and any(m.metric.startswith("probe_") for m in s.drivers):
        return f"Request it yourself: `curl -sv {host}`, then read its logs."
    if kind == "down":
        metric = next((m.metric for m in s.drivers), "the exporter")
        return (f"{metric} says the exporter at {host} cannot reach what it watches: check "
                "that process (running, listening, credentials), then the exporter's log.")
    if kind == "errors":
        return f"Request it yourself: `curl -sv {host}` and read the answering service's logs."
    if kind == "cpu":
        return f"See what uses the CPU on {host}: `top -o %CPU` or `pidstat 5 1`."
    if kind == "memory":
        return f"See what holds the memory on {host}: `ps aux --sort=-rss | head`."
    if kind == "restarts" and ident.get("pod"):
        ns = f" -n {ident['namespace']}" if ident.get("namespace") else ""
        return (f"`kubectl describe pod {ident['pod']}{ns}` and "
                f"`kubectl logs {ident['pod']}{ns} --previous`.")
    return f"Look at {s.name}'s dashboards and logs around the onset."


def changes_evidence(log: EvidenceLog, snap: AlertSnapshot, changes: Sequence[ChangeRecord],
             onset: float) -> None:
    for ch in changes:
        lead = onset - ch.occurred_at.timestamp()
        if 0 <= lead <= 3600:
            log.add(source=ch.source, query=ch.query, start=ch.occurred_at, end=ch.occurred_at,
                    summary=(f"{ch.service} {ch.kind}: {ch.description or ch.version or ''} at "
                             f"{ch.occurred_at:%H:%M}, {lead / 60:.0f} min before the alert"),
                    values={"minutes_before_onset": round(lead / 60, 1)},
                    labels={"service": ch.service, "kind": ch.kind}, link=ch.link)


def runbook_evidence(log: EvidenceLog, snap: AlertSnapshot, runbook: RunbookLead | None
                     ) -> tuple[str, str | None]:
    """The verdict's runbook line and the evidence id behind it: the alert's own
    `runbook_url` first (the rule's author chose it), else the runbook search's best hit."""
    url = snap.alert.annotations.get("runbook_url") or snap.alert.annotations.get("runbook")
    if url:
        ev = log.add(source="alert", summary=f"{snap.alert.name}'s runbook: {url}", link=url,
                     labels={"alertname": snap.alert.name})
        return f" Runbook: {url}.", ev
    if runbook is not None:
        where = runbook.path + (f" § {runbook.section}" if runbook.section else "")
        ev = log.add(source="runbooks", summary=f"Runbook: {runbook.title} — {where}",
                     values={"score": round(runbook.score, 3)},
                     labels={"path": runbook.path, "section": runbook.section})
        return f" Runbook: {runbook.title} ({where}).", ev
    return "", None
