"""The evidence engine for an alert about any resource: from the rule's own expression to the
resource that drives it and what changed around that resource.

1. The symptom: when the expression began to hold for the alert's series, and how the value it
   watches moved (baseline → now, against the rule's threshold).
2. The subject: each selector of the expression, broken down by series; the series whose move
   drives the alert (the instance whose `up` fell, the mountpoint that filled) name it. An alert
   aggregated over a job is thereby pinned to the target that failed.
3. Around it: the series of the same resource, instance, host, pod or node (found by label) that
   moved before or with the symptom. A neighbour outranks the subject only when it accounts
   for the symptom: its change, in the same unit and kind, is at least half the subject's (a
   pod's memory growth for a node's memory, a process's CPU for the host's).

Confidence: the subject is what the alert is about, so it is likely the failing resource when
its driver moved clearly; the share is split between subjects when several drive the alert and
handed to a neighbour in proportion to how much of the symptom it accounts for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from skills.alert_context import AlertSnapshot
from skills.context import ChangeRecord
from skills.families import Family, family_of, identity, name_of
from skills.hypotheses.engine import EvidenceLog, RunbookLead
from skills.hypotheses.models import Cause, CauseKind, Investigation, RankedHypothesis
from skills.shifts import ON, Direction, Shift, shift
from skills.types import Series

EXPLAINS = 0.5  # a neighbour accounts for the symptom when its change is ≥ half of it
CLEAR = 0.9  # confidence that a subject whose driver moved clearly is the failing resource
UNCLEAR = 0.45  # … when nothing in its breakdown moved (the alert alone says so)
# Families whose new series are news: an error code, a waiting reason, a failed job.
APPEARING = {"errors", "restarts", "down"}
KINDS: set[str] = {"deploy", "config", "errors", "latency", "cpu", "memory", "saturation",
                   "dependency", "traffic", "disk", "down", "restarts", "network", "clock"}


@dataclass
class Moved:
    """One series that moved, with its shift and where it came from."""

    series: Series
    metric: str
    family: Family
    shift: Shift
    query: str
    relation: str  # breakdown | same instance | same host | …

    @property
    def labels(self) -> dict[str, str]:
        return self.series.labels


@dataclass
class Subject:
    labels: dict[str, str]  # identifying labels
    drivers: list[Moved] = field(default_factory=list)
    around: list[Moved] = field(default_factory=list)
    explains: float = 0.0  # for a neighbour: share of the symptom its change accounts for

    @property
    def name(self) -> str:
        return name_of(self.labels) or "the alert's subject"

    @property
    def onset(self) -> float:
        return min((m.shift.onset for m in self.drivers + self.around
                    if m.shift.onset is not None), default=math.inf)

    @property
    def strength(self) -> float:
        zs = [m.shift.z for m in self.drivers + self.around]
        return max(zs, default=0.0)


def direction_of(snap: AlertSnapshot) -> Direction:
    """Which way the watched value goes wrong, from the rule's comparison."""
    if snap.anatomy is None or snap.anatomy.comparison is None:
        return "both"
    op = snap.anatomy.comparison[0]
    return "down" if op.startswith("<") else "up" if op.startswith(">") else "both"


def fired_from(snap: AlertSnapshot) -> float:
    """When the expression began to hold for the alert's series: the start of its last run of
    values that reaches the end of the range (the alert's `startsAt` when there is none)."""
    starts = []
    for s in snap.condition:
        ok = np.isfinite(s.values)
        if not ok.any():
            continue
        idx = np.nonzero(ok)[0]
        i = len(idx) - 1
        while i > 0 and idx[i] - idx[i - 1] <= 3:  # a missed evaluation or two is no gap
            i -= 1
        starts.append(float(s.times[idx[i]]))
    if starts:
        return min(starts)
    if snap.alert.starts_at is not None:
        return snap.alert.starts_at.timestamp()
    return snap.at.timestamp()


def split_of(snap: AlertSnapshot, fired: float) -> float:
    """Where the baseline ends: a quarter of the data before the alert fired is kept as the
    time in which its cause may have begun (at least two steps, at most 30 minutes)."""
    before = max(0.0, fired - snap.data_start)
    lead = min(max(0.25 * before, 2 * snap.step), 1800.0)
    return fired - lead


def _moved(series: Series, metric: str, query: str, relation: str, split: float,
           types: dict[str, str], fired: float) -> Moved | None:
    fam = family_of(metric, metadata_type=types.get(metric))
    found = shift(series.times, series.values, split=split, direction=fam.direction,
                  recent_from=fired)
    if found is None:
        return None
    if found.appeared and fam.kind not in APPEARING:  # a new mount or label, not a fault
        return None
    return Moved(series, metric, fam, found, query, relation)


def pick_subjects(snap: AlertSnapshot) -> tuple[list[Subject], float, Shift | None]:
    """The resources the alert's breakdown points at, best first; the symptom's onset; and how
    the watched value moved."""
    fired = fired_from(snap)
    split = split_of(snap, fired)
    watched = None
    for s in snap.quantity[:1]:
        watched = shift(s.times, s.values, split=split, direction=direction_of(snap),
                        recent_from=fired)
    onset = min(fired, watched.onset) if watched and watched.onset else fired
    tolerance = max(3 * snap.step, 60.0)
    drivers: list[Moved] = []
    for sel, promql, found in snap.drills:
        for s in found:
            m = _moved(s, sel.metric or "", promql, "breakdown", split, snap.types, fired)
            if m is not None and m.shift.moved and (m.shift.onset or math.inf) <= fired + \
                    tolerance:
                drivers.append(m)
    subjects: dict[tuple[tuple[str, str], ...], Subject] = {}
    for m in sorted(drivers, key=lambda m: -m.shift.z):
        ident = identity(m.labels, m.metric)
        key = tuple(sorted(ident.items()))
        subjects.setdefault(key, Subject(ident)).drivers.append(m)
    if not subjects:
        base = snap.condition[0].labels if snap.condition else snap.alert.labels
        ident = identity({**snap.alert.labels, **base},
                         snap.anatomy.metrics[0] if snap.anatomy and snap.anatomy.metrics
                         else None)
        subjects[tuple(sorted(ident.items()))] = Subject(ident)
    ordered = sorted(subjects.values(), key=lambda s: -s.strength)
    return ordered, onset, watched


def _belongs(labels: dict[str, str], subject: dict[str, str]) -> bool:
    return bool(subject) and all(labels.get(k) == v for k, v in subject.items())


def gather_around(snap: AlertSnapshot, subjects: list[Subject], onset: float
                  ) -> list[Subject]:
    """Attach the moved series of the surroundings to the subject they belong to, or to a
    neighbour of their own; neighbours that began after the symptom are left out."""
    fired = fired_from(snap)
    split = split_of(snap, fired)
    tolerance = max(3 * snap.step, 60.0)
    seen = {tuple(sorted(m.labels.items())) for s in subjects for m in s.drivers}
    neighbours: dict[tuple[tuple[str, str], ...], Subject] = {}
    for scope in snap.scopes:
        for s in scope.series:
            key = tuple(sorted(s.labels.items()))
            if key in seen:
                continue
            seen.add(key)
            metric = s.labels.get("__name__", "")
            m = _moved(s, metric, scope.matcher, scope.relation, split, snap.types, fired)
            if m is None or not m.shift.moved:
                continue
            if m.shift.onset is not None and m.shift.onset > onset + tolerance:
                continue
            home = next((sub for sub in subjects if _belongs(s.labels, sub.labels)), None)
            if home is not None:
                home.around.append(m)
                continue
            ident = identity(s.labels, metric)
            neighbours.setdefault(tuple(sorted(ident.items())), Subject(ident)).around.append(m)
    return list(neighbours.values())


def _accounts(neighbour: Subject, subject: Subject) -> float:
    """The share of the subject's change that the neighbour's change covers, in the same unit
    and kind (0 when they cannot be compared)."""
    best = 0.0
    for mine in subject.drivers + subject.around:
        if mine.family.unit not in ("bytes", "cores") or mine.shift.delta == 0:
            continue
        for theirs in neighbour.around:
            if (theirs.family.unit == mine.family.unit and theirs.family.kind
                    == mine.family.kind and theirs.shift.delta != 0
                    and (theirs.shift.onset or math.inf) <= (mine.shift.onset or math.inf)
                    + 120):
                share = abs(theirs.shift.delta) / abs(mine.shift.delta)
                if np.sign(theirs.shift.delta) != np.sign(mine.shift.delta) and \
                        mine.family.direction == "down":
                    best = max(best, min(share, 1.0))  # space taken is memory/disk freed
                elif np.sign(theirs.shift.delta) == np.sign(mine.shift.delta):
                    best = max(best, min(share, 1.0))
    return best


def rank_alert(snap: AlertSnapshot, subjects: list[Subject], neighbours: list[Subject],
               onset: float, watched: Shift | None, *,
               changes: Sequence[ChangeRecord] = (),
               runbook: RunbookLead | None = None) -> Investigation:
    log = EvidenceLog()
    symptom_ev = _symptom_evidence(log, snap, onset, watched)
    for n in neighbours:
        n.explains = max((_accounts(n, s) for s in subjects[:1]), default=0.0)
    explainers = sorted((n for n in neighbours if n.explains >= EXPLAINS),
                        key=lambda n: -n.explains)
    others = sorted((n for n in neighbours if n.explains < EXPLAINS),
                    key=lambda n: (-n.strength, n.onset))
    clear = [s for s in subjects if s.drivers]
    hyps: list[RankedHypothesis] = []
    remaining = 1.0
    for n in explainers[:2]:
        p = CLEAR * n.explains * remaining
        hyps.append(_hypothesis(log, snap, n, p, symptom_ev, subject_of=subjects[0]))
        remaining -= p
    for s in subjects[:3]:
        p = (CLEAR / max(1, len(clear)) if s.drivers else UNCLEAR) * remaining
        hyps.append(_hypothesis(log, snap, s, p, symptom_ev))
    rest = max(0.0, 1.0 - sum(h.confidence for h in hyps))
    for n in others[:3]:
        strength = min(1.0, n.strength / (4 * ON))
        hyps.append(_hypothesis(log, snap, n, 0.5 * rest * strength, symptom_ev,
                                subject_of=subjects[0]))
    _changes(log, snap, changes, onset)
    runbook_line = _runbook(log, snap, runbook)
    hyps.sort(key=lambda h: -h.confidence)
    top = hyps[0] if hyps else None
    if top is not None and top.confidence >= 0.5:
        verdict = (f"Look at {top.cause.service} first ({top.cause.kind}, confidence "
                   f"{top.confidence:.2f}).")
    elif top is not None:
        verdict = (f"No clear cause: the strongest lead is {top.cause.service} "
                   f"({top.cause.kind}) at confidence {top.confidence:.2f}; what the alert "
                   "watches moved, but nothing in its breakdown stands out.")
    else:
        verdict = "No clear cause: nothing in the alert's breakdown or around it moved."
    verdict += runbook_line
    at = snap.at
    return Investigation(
        service=subjects[0].name if subjects else snap.alert.name, at=at,
        start=snap.start, end=snap.end,
        onset=datetime.fromtimestamp(onset, tz=at.tzinfo) if math.isfinite(onset) else None,
        scope=[s.name for s in subjects] + [n.name for n in neighbours][:10],
        hypotheses=hyps[:5], evidence=log.items, verdict=verdict)


def _symptom_evidence(log: EvidenceLog, snap: AlertSnapshot, onset: float,
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


def _hypothesis(log: EvidenceLog, snap: AlertSnapshot, s: Subject, confidence: float,
                symptom_ev: str, *, subject_of: Subject | None = None) -> RankedHypothesis:
    ids = [symptom_ev]
    main = sorted(s.drivers, key=lambda m: -m.shift.z)[:3]
    near = sorted((m for m in s.around if not m.shift.vanished),
                  key=lambda m: -m.shift.z)[:4]
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
        text = (f"{s.name} accounts for about {s.explains:.0%} of the change of "
                f"{subject_of.name}: {'; '.join(parts)}{when}.")
    elif subject_of is not None:
        text = (f"{s.name}, beside {subject_of.name}, moved too: "
                f"{'; '.join(parts)}{when}.")
    elif parts:
        text = f"{s.name}: {'; '.join(parts)}{when}."
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


def _changes(log: EvidenceLog, snap: AlertSnapshot, changes: Sequence[ChangeRecord],
             onset: float) -> None:
    for ch in changes:
        lead = onset - ch.occurred_at.timestamp()
        if 0 <= lead <= 3600:
            log.add(source=ch.source, query=ch.query, start=ch.occurred_at, end=ch.occurred_at,
                    summary=(f"{ch.service} {ch.kind}: {ch.description or ch.version or ''} at "
                             f"{ch.occurred_at:%H:%M}, {lead / 60:.0f} min before the alert"),
                    values={"minutes_before_onset": round(lead / 60, 1)},
                    labels={"service": ch.service, "kind": ch.kind}, link=ch.link)


def _runbook(log: EvidenceLog, snap: AlertSnapshot, runbook: RunbookLead | None) -> str:
    url = snap.alert.annotations.get("runbook_url") or snap.alert.annotations.get("runbook")
    if url:
        log.add(source="alert", summary=f"{snap.alert.name}'s runbook: {url}", link=url,
                labels={"alertname": snap.alert.name})
        return f" Runbook: {url}."
    if runbook is not None:
        where = runbook.path + (f" § {runbook.section}" if runbook.section else "")
        log.add(source="runbooks", summary=f"Runbook: {runbook.title} — {where}",
                values={"score": round(runbook.score, 3)},
                labels={"path": runbook.path, "section": runbook.section})
        return f" Runbook: {runbook.title} ({where})."
    return ""
