"""The evidence engine for an alert about any resource: from the rule's own expression to the
resource that drives it and what changed around that resource.

1. The symptom: when the expression began to hold for the alert's series, and how the value it
   watches moved (baseline → now, against the rule's threshold).
2. The subject: each selector of the expression, broken down by series; the series whose move
   drives the alert (the instance whose `up` fell, the mountpoint that filled) name it. An alert
   aggregated over a job is thereby pinned to the target that failed.
3. Around it: the series of the same resource, instance, host, pod or node (found by label and
   through kube-state-metrics' ownership) that moved before or with the symptom.

A neighbour outranks the subject only when it explains it, by one of two robust statistics:
- it accounts for the symptom's change: its change in the same unit and kind is at least half
  of the subject's (a pod's memory growth for its node's memory, a process's CPU for the host's);
- it is the common factor of the failing parts: every failing pod of a workload runs on it.
Confidence: the subject is what the alert is about, so it is likely the failing resource when
its driver moved clearly or the rule holds for exactly it (`CLEAR`); that share is split
between subjects when several drive the alert, and handed to an explaining neighbour in
proportion to how much of the symptom it accounts for.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

import numpy as np

from skills.alert_context import AlertSnapshot
from skills.context import ChangeRecord
from skills.families import Family, direction_for, family_of, identity
from skills.hypotheses.alert_wording import (
    EXPLAINS,
    changes_evidence,
    hypothesis,
    runbook_evidence,
    symptom_evidence,
    worth_saying,
)
from skills.hypotheses.candidates import EvidenceLog, RunbookLead
from skills.hypotheses.models import Investigation, RankedHypothesis
from skills.hypotheses.resources import Moved, Subject
from skills.shifts import ON, Direction, Shift, shift
from skills.types import Series

# Set from first principles and checked on the independent alert cases' dev seed
# (tests/bench/alert_eval.py): a subject pinned by its own rule is right about 9 times in 10.
CLEAR = 0.9  # confidence that a subject whose driver moved clearly is the failing resource
UNCLEAR = 0.45  # … when nothing in its breakdown moved (the alert alone says so)
# Families whose new series are news: an error code, a waiting reason, a failed job.
APPEARING = {"errors", "restarts", "down"}
UNHEALTHY = {"down", "restarts", "errors"}


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
        t = s.times[ok]  # only the times the series had a value: gaps are missing points
        i = len(t) - 1
        while i > 0 and t[i] - t[i - 1] <= 3 * snap.step:  # a missed evaluation is no gap
            i -= 1
        starts.append(float(t[i]))
    if starts:
        return min(starts)
    if snap.alert.starts_at is not None:
        return snap.alert.starts_at.timestamp()
    return snap.at.timestamp()


def split_of(snap: AlertSnapshot, fired: float) -> float:
    """Where the baseline ends: a quarter of the data before the alert fired is kept as the
    time in which its cause may have begun (at least two steps, at most 30 minutes) — or more,
    when the value the rule watches had already left its early level before that (a rule over
    a 2-minute rate, or with a long `for:`, fires well after the trouble began)."""
    before = max(0.0, fired - snap.data_start)
    lead = min(max(0.25 * before, 2 * snap.step), 1800.0)
    split = fired - lead
    left = departure(snap, fired)
    if left is not None:
        split = max(min(split, left - 2 * snap.step), snap.data_start + 2 * snap.step)
    return split


def departure(snap: AlertSnapshot, fired: float) -> float | None:
    """When the watched value last left its early level for good before the alert fired: its
    early level is the median and MAD of the first quarter of the data before firing; it left
    at the start of the run beyond 3 robust deviations that lasts until the alert fired."""
    if not snap.quantity:
        return None
    s = snap.quantity[0]
    ok = np.isfinite(s.values) & (s.times <= fired)
    t, v = s.times[ok], s.values[ok]
    early = v[t < snap.data_start + 0.25 * max(0.0, fired - snap.data_start)]
    if len(early) < 3 or len(v) < 6:
        return None
    center = float(np.median(early))
    scale = max(1.4826 * float(np.median(np.abs(early - center))), 0.05 * abs(center), 1e-9)
    z = (v - center) / scale
    direction = direction_of(snap)
    bad = -z if direction == "down" else np.abs(z) if direction == "both" else z
    if bad[-1] < ON:
        return None
    i = len(bad) - 1
    while i > 0 and bad[i - 1] >= ON:
        i -= 1
    return float(t[i])


def score(series: Series, metric: str, query: str, relation: str, split: float,
          types: dict[str, str], fired: float) -> Moved | None:
    """A series scored against its baseline (None: not enough data, or a new series that is
    not news — a new mount, a new label value)."""
    fam = family_of(metric, metadata_type=types.get(metric))
    direction = direction_for(metric, series.labels, fam)
    if direction != fam.direction:
        fam = replace(fam, direction=direction)
    found = shift(series.times, series.values, split=split, direction=direction,
                  recent_from=fired)
    if found is None or (found.appeared and not _bad_news(series.labels, fam, found)):
        return None
    return Moved(series, metric, fam, found, query, relation)


def _bad_news(labels: dict[str, str], fam: Family, found: Shift) -> bool:
    """Whether a series that appeared during the window appeared in a bad state: a pod that
    is not ready, a container waiting, a phase other than Running or Succeeded, an error code.
    A new mount, a pod created ready, a label value counting zero are not news."""
    if fam.kind not in APPEARING or labels.get("phase") in ("Running", "Succeeded"):
        return False
    if fam.direction == "down":
        return found.current <= 0
    return found.current > 0


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
    firing = [identity(c.labels) for c in snap.condition]
    subjects: dict[tuple[tuple[str, str], ...], Subject] = {}
    for sel, promql, found in snap.drills:
        for s in found:
            m = score(s, sel.metric or "", promql, "breakdown", split, snap.types, fired)
            if m is None:
                continue
            ident = identity(m.labels, m.metric)
            held = any(f and f == ident for f in firing)  # the rule fires for exactly it
            moved = m.shift.moved and (m.shift.onset or math.inf) <= fired + tolerance
            if not (moved or held):
                continue
            subject = subjects.setdefault(tuple(sorted(ident.items())), Subject(ident))
            subject.drivers.append(m)
            subject.held = subject.held or held
    if not subjects:
        base = snap.condition[0].labels if snap.condition else snap.alert.labels
        ident = identity({**snap.alert.labels, **base},
                         snap.anatomy.metrics[0] if snap.anatomy and snap.anatomy.metrics
                         else None)
        subjects[tuple(sorted(ident.items()))] = Subject(ident)
    ordered = sorted(subjects.values(),
                     key=lambda s: (not any(m.shift.moved for m in s.drivers), -s.strength))
    return ordered, onset, watched


def _belongs(labels: dict[str, str], subject: dict[str, str]) -> bool:
    return bool(subject) and all(labels.get(k) == v for k, v in subject.items())


def gather_around(snap: AlertSnapshot, subjects: list[Subject], onset: float
                  ) -> tuple[list[Subject], list[Moved]]:
    """Attach the moved series of the surroundings to the subject they belong to, or to a
    neighbour of their own (neighbours that began after the symptom are left out); and every
    surrounding series measured in bytes or cores, moved or not, for `explainers`."""
    fired = fired_from(snap)
    split = split_of(snap, fired)
    tolerance = max(3 * snap.step, 60.0)
    seen = {tuple(sorted(m.labels.items())) for s in subjects for m in s.drivers}
    neighbours: dict[tuple[tuple[str, str], ...], Subject] = {}
    pool: list[Moved] = []
    for scope in snap.scopes:
        for s in scope.series:
            key = tuple(sorted(s.labels.items()))
            if key in seen:
                continue
            seen.add(key)
            metric = s.labels.get("__name__", "")
            m = score(s, metric, scope.matcher, scope.relation, split, snap.types, fired)
            if m is None:
                continue
            if m.family.unit in ("bytes", "cores"):
                pool.append(m)
            if not m.shift.moved or (m.shift.onset is not None
                                     and m.shift.onset > onset + tolerance):
                continue
            home = next((sub for sub in subjects if _belongs(s.labels, sub.labels)), None)
            if home is not None:
                home.around.append(m)
                continue
            ident = identity(s.labels, metric)
            neighbours.setdefault(tuple(sorted(ident.items())), Subject(ident)).around.append(m)
    return list(neighbours.values()), pool


def _symptom_delta(subject: Subject) -> dict[tuple[str, str], float]:
    """The change the bad way of what the alert watches of its subject (its breakdown's
    series), per (kind, unit): what a neighbour must account for."""
    out: dict[tuple[str, str], float] = {}
    for m in subject.drivers:
        if m.family.unit in ("bytes", "cores") and m.bad_delta > 0:
            key = (m.family.kind, m.family.unit)
            out[key] = out.get(key, 0.0) + m.bad_delta
    return out


def explainers(snap: AlertSnapshot, subject: Subject, neighbours: list[Subject],
               pool: list[Moved]) -> list[Subject]:
    """Neighbours that explain the subject: those whose change accounts for at least half of
    its change (same kind and unit), and the node that hosts every failing pod of it."""
    found: list[Subject] = []
    wanted = _symptom_delta(subject)
    shares: dict[tuple[tuple[str, str], ...], tuple[float, list[Moved]]] = {}
    for m in pool:
        key = (m.family.kind, m.family.unit)
        if key not in wanted or _belongs(m.labels, subject.labels) or m.bad_delta <= 0:
            continue
        ident = identity(m.labels, m.metric)
        if not ident.get("pod") and not ident.get("instance"):
            continue
        k = tuple(sorted(ident.items()))
        share, series = shares.get(k, (0.0, []))
        shares[k] = (max(share, m.bad_delta / wanted[key]), [*series, m])
    taken: set[str] = set()
    for k, (share, series) in sorted(shares.items(), key=lambda kv: -kv[1][0]):
        ident = dict(k)
        who = ident.get("pod") or ident.get("instance", "")
        if share < EXPLAINS or who in taken:
            continue
        taken.add(who)
        e = next((n for n in neighbours if n.labels == ident), None) or Subject(ident)
        known = {id(m) for m in e.around}
        e.around = [*[m for m in series if id(m) not in known], *e.around]
        e.explains = min(1.0, share)
        e.why = f"grew by {e.explains:.0%} of the change of"
        found.append(e)
    common = _common_node(snap, subject, neighbours)
    if common is not None and common.labels.get("node") not in taken:
        found.append(common)
    return sorted(found, key=lambda e: -e.explains)


def _common_node(snap: AlertSnapshot, subject: Subject, neighbours: list[Subject]
                 ) -> Subject | None:
    """The node most failing pods of the subject run on — at least two, and at least half of
    them — when their healthy siblings run elsewhere: the pods fail because of where they
    run."""
    place = snap.placement
    failing: dict[tuple[str, str], Subject] = {}
    for n in [*neighbours, subject]:
        name = n.labels.get("pod")
        if name and any(m.family.kind in UNHEALTHY for m in n.around + n.drivers):
            failing[(n.labels.get("namespace", ""), name)] = n
    on: dict[str, list[tuple[str, str]]] = {}
    for p in failing:
        if place.node_of.get(p):
            on.setdefault(place.node_of[p], []).append(p)
    if not on:
        return None
    node, there = max(on.items(), key=lambda kv: len(kv[1]))
    share = len(there) / len(failing)
    if len(there) < 2 or share < EXPLAINS:
        return None
    owners = {place.owner_of.get(p) for p in there} - {None}
    siblings = [p for p, o in place.owner_of.items() if o in owners and p not in failing]
    if not siblings or all(place.node_of.get(p) == node for p in siblings):
        return None
    hub = next((n for n in neighbours if n.labels == {"node": node}), None) \
        or Subject({"node": node})
    for n in neighbours:  # what else went wrong on that node is its evidence
        where = (n.labels.get("namespace", ""), n.labels.get("pod", ""))
        if n is not hub and place.node_of.get(where) == node:
            hub.around += [m for m in n.around if m.family.kind in UNHEALTHY]
    hub.explains = share
    hub.why = (f"hosts {len(there)} of the {len(failing)} failing pods "
               f"({', '.join(sorted(p for _, p in there))[:200]}) while their healthy siblings "
               "run elsewhere, which explains")
    return hub


def rank_alert(snap: AlertSnapshot, subjects: list[Subject], neighbours: list[Subject],
               pool: list[Moved], onset: float, watched: Shift | None, *,
               changes: Sequence[ChangeRecord] = (),
               runbook: RunbookLead | None = None) -> Investigation:
    log = EvidenceLog()
    symptom_ev = symptom_evidence(log, snap, onset, watched)
    explaining = explainers(snap, subjects[0], neighbours, pool) if subjects else []
    others = sorted((n for n in neighbours if n not in explaining and worth_saying(n)),
                    key=lambda n: (-n.strength, n.onset))
    clear = [s for s in subjects if s.clear]
    hyps: list[RankedHypothesis] = []
    remaining = 1.0
    for e in explaining[:2]:
        p = CLEAR * e.explains * remaining
        hyps.append(hypothesis(log, snap, e, p, symptom_ev, subject_of=subjects[0]))
        remaining -= p
    for s in subjects[:3]:
        p = (CLEAR / max(1, len(clear)) if s.clear else UNCLEAR) * remaining
        hyps.append(hypothesis(log, snap, s, p, symptom_ev))
    rest = max(0.0, 1.0 - sum(h.confidence for h in hyps))
    for n in others[:3]:
        strength = min(1.0, n.strength / 12.0)
        hyps.append(hypothesis(log, snap, n, 0.5 * rest * strength, symptom_ev,
                               subject_of=subjects[0]))
    changes_evidence(log, snap, changes, onset)
    runbook_line, runbook_ev = runbook_evidence(log, snap, runbook)
    hyps.sort(key=lambda h: -h.confidence)
    top = hyps[0] if hyps else None
    if top is not None and runbook_ev is not None:  # the runbook for what to do first
        top.evidence_ids.append(runbook_ev)
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
