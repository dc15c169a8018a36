"""The evidence engine: ranks root-cause hypotheses for an incident without a model.

From a `Snapshot` it finds each service's anomalies (robust scores against the baseline), then
asks which candidate *explains* the alert (`skills.hypotheses.propagation`): the deepest
affected services on the symptom's path along the call graph, the origin of the load when what
saturated was pushed by traffic, and, below them, the services on the path that something deeper
explains and the anomalies on no path at all (a cron job's CPU, a GC pause, a burst elsewhere).
That tier orders the candidates; within a tier, the size of the anomaly (log of its robust
score) and a change linked to it (a deploy or config change just before its onset, seen in
Prometheus or posted to `/webhooks/changes`) do. Scores become probabilities by a softmax that
includes a "no clear cause" option, so weak evidence yields low confidence instead of a
confident guess; the alerting service blamed on its own symptom alone is capped.

Given similar past incidents, a candidate whose (service, kind) is the confirmed cause of one of
them gains in proportion to the similarity and cites it; given a runbook that fits the alert, it
is kept as evidence and named in the verdict. Both are read through small protocols
(`PastCause`, `RunbookLead`), so this module imports neither sibling skill.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np

from skills.context import ChangeRecord, Snapshot
from skills.hypotheses.anomaly import MIN_BASELINE, detect
from skills.hypotheses.candidates import Candidate, EvidenceLog, PastCause, RunbookLead
from skills.hypotheses.models import Cause, CauseKind, Investigation, RankedHypothesis
from skills.hypotheses.propagation import TOLERANCE, classify
from skills.hypotheses.wording import describe, next_check
from skills.hypotheses.wording import format_value as _fmt_value
from skills.types import Series

DETECT_SPAN = timedelta(minutes=45)  # onsets are looked for in the last part of the range
CHANGE_BEFORE = 1800.0  # s: a change this long before onset can be its cause …
CHANGE_AFTER = 180.0  # … or this long after (the first bad requests precede the rate's rise)
MIN_CHANGE_Z = 3.0  # a change is only blamed for an anomaly of some size
NEW_EDGE = 300.0  # s: a call series that begins this long after the range did is a new call

# The score: the tier (see propagation) first, then the anomaly's size and a linked change.
# TIER_GAP exceeds the spread of log1p(robust z) over real anomalies (z 4 → 1.6, z 100 → 4.6)
# less one, so a tier is rarely overtaken; W_CHANGE is one step of that size. TEMPERATURE and
# NONE_SCORE turn scores into confidences; both were fitted (Brier score, tests/bench/
# rca_calibrate.py) on the development splits of both generators, never on the test split:
# 0.5 and 7 are within 0.003 of the best Brier on dev+dev2 and the best on dev3+dev4.
TIER_GAP, W_CHANGE = 3.0, 1.0
TEMPERATURE, NONE_SCORE = 0.5, 7.0
UNCORROBORATED_CAP = 0.35  # the alerting service's own symptom alone is never a confident cause
# A similar past incident whose confirmed cause was this (service, kind): a little over half
# a correlated change (W_CHANGE) at a perfect match, less as the incidents differ. It reorders
# close leads but cannot on its own lift a candidate with no anomaly and no change over "no
# clear cause": the past suggests where to look, the present metrics decide.
W_HISTORY = 0.6


def rank(snap: Snapshot, *, extra_changes: list[ChangeRecord] | None = None,
         history: Sequence[PastCause] | None = None,
         runbook: RunbookLead | None = None) -> Investigation:
    log = EvidenceLog()
    split = (snap.end - min(DETECT_SPAN, (snap.end - snap.start) / 2)).timestamp()
    cands: dict[str, Candidate] = {}

    def cand(service: str) -> Candidate:
        return cands.setdefault(service, Candidate(service))

    for sd in snap.signals:
        series = _with_new_edge(sd.series, snap) if sd.target else sd.series
        anomaly = detect(series, sd.signal, _split_for(series, split, snap))
        if anomaly is None:
            continue
        who = f"{sd.service} → {sd.target}" if sd.target else sd.service
        ev = log.add(source=snap.source, query=sd.query, start=snap.start, end=snap.end,
                     step_seconds=snap.step,
                     summary=(f"{who} {sd.signal.replace('_', ' ')}: "
                              f"{_fmt_value(sd.signal, anomaly.baseline)} → "
                              f"{_fmt_value(sd.signal, anomaly.peak)} from "
                              f"{_clock(anomaly.onset, snap)} (robust z {anomaly.z:.0f})"),
                     values={"baseline": anomaly.baseline, "peak": anomaly.peak,
                             "current": anomaly.current, "robust_z": round(anomaly.z, 2),
                             "onset_unix": anomaly.onset,
                             "persistence": round(anomaly.persistence, 2)},
                     labels={"service": sd.service, "signal": sd.signal,
                             **({"target": sd.target} if sd.target else {})})
        if sd.target is None:
            cand(sd.service).anomalies.append((anomaly, ev))
        elif sd.signal == "client_traffic":
            cand(sd.target).calls_in.append((anomaly, ev, sd.service))
            cand(sd.service).calls_out.append((anomaly, ev, sd.target))
        else:
            cand(sd.target).seen_by_callers.append((anomaly, ev, sd.service))
    for c in cands.values():
        c.measured = c.service in snap.measured
    changes = [*snap.changes, *(extra_changes or [])]
    _changes_without_anomaly(snap, cands, log, changes)
    # Call rates alone (a caller calling more) are not a candidate unless the load rules
    # make one of it: drop those that only carry them.
    cands = {k: c for k, c in cands.items()
             if c.all or c.change or k == snap.service or c.calls_out}
    if not any(c.all or c.change for c in cands.values()):
        return _empty(snap, log, _context(snap, log, cands, history or [], runbook))
    _link_changes(snap, cands, log, changes)
    classify(snap, cands, split)
    cands = {k: c for k, c in cands.items() if c.all or c.change or c.tier == 3}
    context = _context(snap, log, cands, history or [], runbook)
    first = min((c.onset for c in cands.values()), default=math.inf)
    if math.isinf(first):
        first = snap.at.timestamp()
    for c in cands.values():
        c.score = (TIER_GAP * c.tier + math.log1p(max(0.0, c.strength))
                   + (W_CHANGE if c.change else 0.0)
                   + W_HISTORY * max((p.similarity for p, _ in c.history), default=0.0))
    ordered = sorted(cands.values(), key=lambda c: c.score, reverse=True)
    weights = [math.exp(c.score / TEMPERATURE) for c in ordered]
    total = sum(weights) + math.exp(NONE_SCORE / TEMPERATURE)
    hypotheses = [_hypothesis(c, min(w / total, UNCORROBORATED_CAP)
                              if _uncorroborated(c, snap) else w / total, snap)
                  for c, w in zip(ordered, weights, strict=True)]
    hypotheses.sort(key=lambda h: h.confidence, reverse=True)
    top = hypotheses[0]
    verdict = (f"Look at {top.cause.service} first ({top.cause.kind}, confidence "
               f"{top.confidence:.2f})." if top.confidence >= 0.5 else
               f"No clear cause: the strongest lead is {top.cause.service} ({top.cause.kind}) at "
               f"confidence {top.confidence:.2f}; treat it as a place to start, not an answer.")
    verdict += _context_line(context, cands.get(top.cause.service))
    return Investigation(service=snap.service, at=snap.at, start=snap.start, end=snap.end,
                         onset=datetime.fromtimestamp(first, tz=snap.at.tzinfo),
                         scope=snap.scope, hypotheses=hypotheses[:5], evidence=log.items,
                         verdict=verdict)


def _with_new_edge(series: Series, snap: Snapshot) -> Series:
    """A call series that begins well after the range did is a new call: before it, there
    were no calls and so no failures — zeros, not gaps (a new dependency failing from its first
    call is an anomaly, not a series without a baseline)."""
    ok = np.isfinite(series.values)
    if not ok.any() or series.times[ok][0] < snap.start.timestamp() + NEW_EDGE:
        return series
    first = float(series.times[ok][0])
    before = np.arange(snap.start.timestamp(), first - snap.step / 2, snap.step)
    return Series(series.labels, np.concatenate([before, series.times[ok]]),
                  np.concatenate([np.zeros(len(before)), series.values[ok]]))


def _split_for(series: Series, split: float, snap: Snapshot) -> float:
    """Where one series' baseline ends: the common split, or — for a service that appeared
    within the range (a new deploy) — the first half of its own life."""
    ok = np.isfinite(series.values)
    if not ok.any():
        return split
    first = float(series.times[ok][0])
    if first + MIN_BASELINE * snap.step <= split:
        return split
    return max(first + MIN_BASELINE * snap.step, first + (snap.end.timestamp() - first) / 2)


@dataclass
class _Context:
    """What the investigation knows beyond the metrics: past incidents and a runbook."""

    history: list[tuple[PastCause, str]] = field(default_factory=list)
    runbook: tuple[RunbookLead, str] | None = None


def _context(snap: Snapshot, log: EvidenceLog, cands: dict[str, Candidate],
             history: Sequence[PastCause], runbook: RunbookLead | None) -> _Context:
    """Log past incidents and the runbook as evidence (after every other piece, so the ids of
    the rest do not move) and attach each past incident to the candidate it confirmed."""
    ctx = _Context()
    for past in sorted(history, key=lambda p: p.similarity, reverse=True):
        ev = log.add(source="history", summary=_past_line(past),
                     values={"similarity": round(past.similarity, 3)},
                     labels={"incident": past.ref,
                             **({"service": past.cause_service} if past.cause_service else {}),
                             **({"kind": past.cause_kind} if past.cause_kind else {})})
        ctx.history.append((past, ev))
        c = cands.get(past.cause_service or "")
        if c is not None and past.cause_kind in (None, _kind(c, c.service in snap.measured)[0]):
            c.history.append((past, ev))
    if runbook is not None:
        where = runbook.path + (f" § {runbook.section}" if runbook.section else "")
        ev = log.add(source="runbooks", summary=f"Runbook: {runbook.title} — {where}",
                     values={"score": round(runbook.score, 3)},
                     labels={"path": runbook.path, "section": runbook.section},
                     link=runbook.url or (runbook.path if runbook.path.startswith(
                         ("http://", "https://")) else None))
        ctx.runbook = (runbook, ev)
    return ctx


def _past_line(past: PastCause) -> str:
    text = (f"{past.ref} (similarity {past.similarity:.2f}) “{past.title}”: root cause "
            f"{(past.root_cause or 'not recorded').rstrip('.')}")
    return text + (f"; fixed by {past.resolution.rstrip('.')}." if past.resolution else ".")


def _context_line(ctx: _Context, top: Candidate | None) -> str:
    text = ""
    if top is not None and top.history:
        past = max((p for p, _ in top.history), key=lambda p: p.similarity)
        text += (f" {past.ref} (similarity {past.similarity:.2f}) had the same cause"
                 + (f"; it was fixed by {past.resolution.rstrip('.')}." if past.resolution
                    else "."))
    elif ctx.history:
        text += f" Closest past incident: {_past_line(ctx.history[0][0])}"
    if ctx.runbook is not None:
        lead = ctx.runbook[0]
        text += (f" Runbook: {lead.title} ({lead.path}"
                 + (f" § {lead.section}" if lead.section else "") + ").")
    return text


def _uncorroborated(c: Candidate, snap: Snapshot) -> bool:
    """The alerting service blamed on its own symptoms alone. What its callers see of it, and
    their anomalies it would explain, are the same symptom seen from upstream: only a change
    or a resource signal (CPU, memory) says why."""
    resources = {"cpu", "memory"}
    return (c.service == snap.service and c.change is None and c.load_of is None
            and not any(a.signal in resources for a, _ in c.anomalies))


def _clock(unix: float, snap: Snapshot) -> str:
    return datetime.fromtimestamp(unix, tz=snap.at.tzinfo).strftime("%H:%M")


def _link_changes(snap: Snapshot, cands: dict[str, Candidate], log: EvidenceLog,
                  changes: list[ChangeRecord]) -> None:
    for c in cands.values():
        if c.strength < MIN_CHANGE_Z or c.change is not None or \
                all(a.recurrent for a in c.all):
            continue
        best: ChangeRecord | None = None
        for ch in changes:
            if ch.service != c.service:
                continue
            lead = c.onset - ch.occurred_at.timestamp()
            if -CHANGE_AFTER <= lead <= CHANGE_BEFORE and (
                    best is None or abs(lead) < abs(c.onset - best.occurred_at.timestamp())):
                best = ch
        if best is not None:
            lead_min = (c.onset - best.occurred_at.timestamp()) / 60.0
            ev = log.add(source=best.source, query=best.query,
                         start=best.occurred_at, end=best.occurred_at,
                         summary=(f"{best.service} {best.kind}: {best.description or best.version}"
                                  f" at {best.occurred_at.strftime('%H:%M')}, "
                                  f"{lead_min:.0f} min before the anomaly began"),
                         values={"minutes_before_onset": round(lead_min, 1),
                                 "change_unix": best.occurred_at.timestamp()},
                         labels={"service": best.service, "kind": best.kind,
                                 **({"version": best.version} if best.version else {})},
                         link=best.link)
            c.change = (best, ev)


def _changes_without_anomaly(snap: Snapshot, cands: dict[str, Candidate], log: EvidenceLog,
                             changes: list[ChangeRecord]) -> None:
    """A change in scope shortly before the alert is a lead even when no metric has moved yet
    (at alert time the rates have only begun to rise): it enters as its own candidate."""
    for ch in changes:
        lead = snap.at.timestamp() - ch.occurred_at.timestamp()
        if ch.service in cands or ch.service not in snap.scope or not 0 <= lead <= CHANGE_BEFORE:
            continue
        ev = log.add(source=ch.source, query=ch.query, start=ch.occurred_at, end=ch.occurred_at,
                     summary=(f"{ch.service} {ch.kind}: {ch.description or ch.version} at "
                              f"{ch.occurred_at:%H:%M}, {lead / 60:.0f} min before the alert; "
                              "no metric of it has left its baseline yet"),
                     values={"minutes_before_alert": round(lead / 60, 1),
                             "change_unix": ch.occurred_at.timestamp()},
                     labels={"service": ch.service, "kind": ch.kind}, link=ch.link)
        c = Candidate(ch.service)
        c.change = (ch, ev)
        cands[ch.service] = c


def _kind(c: Candidate, measured: bool) -> tuple[CauseKind, str | None]:
    if c.change is not None:
        return ("config" if c.change[0].kind in ("config", "feature_flag") else "deploy"), None
    if c.load_of is not None and (c.calls_out or any(a.signal == "traffic"
                                                      for a, _ in c.anomalies)):
        return "traffic", "traffic"
    if not measured or not c.anomalies:
        return "dependency", "client_errors"
    own = {a.signal: a for a, _ in c.anomalies}
    if "memory" in own:
        return "memory", "memory"
    if "cpu" in own and ("latency" not in own
                         or own["cpu"].onset <= own["latency"].onset + TOLERANCE):
        return "cpu", "cpu"
    for signal in ("latency", "errors", "traffic"):
        if signal in own:
            return signal, signal
    return "unknown", None


def _hypothesis(c: Candidate, confidence: float, snap: Snapshot) -> RankedHypothesis:
    kind, signal = _kind(c, c.service in snap.measured)
    ids = [ev for _, ev in c.anomalies] + [ev for _, ev, _ in c.seen_by_callers]
    if c.change:
        ids.insert(0, c.change[1])
    check = next_check(c.service, kind, c.change[0] if c.change else None)
    if c.history:
        past = max((p for p, _ in c.history), key=lambda p: p.similarity)
        ids += [ev for _, ev in c.history]
        if past.resolution:
            check += f" Last time ({past.ref}) it was fixed by {past.resolution.rstrip('.')}."
    return RankedHypothesis(
        statement=describe(c, kind, snap), cause=Cause(service=c.service, kind=kind,
                                                       signal=signal),
        confidence=round(min(0.99, max(0.01, confidence)), 3), evidence_ids=ids,
        next_check=check)


def _empty(snap: Snapshot, log: EvidenceLog, context: _Context) -> Investigation:
    return Investigation(service=snap.service, at=snap.at, start=snap.start, end=snap.end,
                         onset=None, scope=snap.scope, hypotheses=[], evidence=log.items,
                         verdict=("No clear cause: no signal of "
                                  f"{', '.join(snap.scope)} left its baseline in the last "
                                  f"{int(DETECT_SPAN.total_seconds() // 60)} minutes."
                                 + _context_line(context, None)))
