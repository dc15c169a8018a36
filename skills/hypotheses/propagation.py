"""How trouble travels through a call graph, and so which candidate explains the alert.

The rules, each a plain reading of the evidence rather than a weight:
- A service is *affected* when its own errors or latency left their baseline and are still off,
  or when its callers see it failing (external providers have no series of their own).
- The symptom travels upward: a caller is hurt by what it calls. Starting at the alerting
  service, a dependency is on the symptom's path when it is affected and its trouble began no
  later than its caller's (give or take the rate window).
- The *roots* are the deepest services on that path: nothing they call explains them. A CPU or
  memory rise with no effect on a service's errors, latency or callers (a cron job, a GC pause)
  is on no path, and so explains nothing.
- Load is the exception that travels downward: a saturated root whose own traffic rose was
  pushed by its callers. Following the calls whose rate rose upward leads to the load's origin —
  an entry service whose traffic surged, or a caller that began calling more on its own (a retry
  setting, a deploy) — or, when that caller only makes up for another dependency failing (a
  cache that stopped answering), to that dependency.

`classify` sets each candidate's tier: 3 the load's origin, 2 a root, 1 on the path but
explained by something deeper, 0 not on the symptom's path at all.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable
from typing import TYPE_CHECKING

from skills.context import Snapshot

if TYPE_CHECKING:
    from skills.hypotheses.anomaly import Anomaly
    from skills.hypotheses.engine import Candidate

# s: onsets read from 5-minute rates lag the true start by up to the rate window, more for a
# signal that rises slowly: a dependency may show up to that much later than its caller.
TOLERANCE = 300.0
EFFECTS = ("errors", "latency")
SURGE = 1.3  # a traffic rise counts as load when it is at least this many times the baseline


def ongoing(a: Anomaly) -> bool:
    """Still going on at the end of the range and not a brief burst."""
    return a.persistence >= 0.5 and a.current_z >= 2.0


def effects(c: Candidate) -> list[Anomaly]:
    """What makes a candidate affected: its own errors and latency, what its callers see."""
    own = [a for a, _ in c.anomalies if a.signal in EFFECTS]
    seen = [a for a, _, _ in c.seen_by_callers]
    return [a for a in own + seen if ongoing(a)]


def effect_onset(c: Candidate) -> float:
    return min((a.onset for a in effects(c)), default=math.inf)


def latest_effect(c: Candidate) -> float:
    """When the last of its effects began: a dependency that began before any of them may
    explain that one (a deploy that slowed it a little, then the new dependency failing)."""
    return max((a.onset for a in effects(c)), default=math.inf)


def rising(a: Anomaly) -> bool:
    return (a.baseline > 0 and a.current >= SURGE * a.baseline) or (
        a.baseline <= 0 < a.current)


def traffic_up(c: Candidate) -> Anomaly | None:
    """Its served traffic rose (and stays up)."""
    return next((a for a, _ in c.anomalies if a.signal == "traffic" and rising(a)
                 and a.current_z >= 2.0), None)


def saturated(c: Candidate) -> bool:
    return any(a.signal in ("latency", "cpu", "errors") for a, _ in c.anomalies)


def classify(snap: Snapshot, cands: dict[str, Candidate]) -> None:
    calls: dict[str, list[str]] = {}
    callers: dict[str, list[str]] = {}
    for a, b in snap.edges:
        calls.setdefault(a, []).append(b)
        callers.setdefault(b, []).append(a)
    affected = {name for name, c in cands.items() if effects(c)}
    start = snap.service
    on_path: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        limit = latest_effect(cands[u]) + TOLERANCE if u in cands and u in affected \
            else math.inf
        for w in calls.get(u, []):
            if w in affected and w not in on_path and effect_onset(cands[w]) <= limit:
                on_path[w] = u
                queue.append(w)
    for name, c in cands.items():
        c.tier = 0
        if name not in on_path:
            continue
        deeper = [x for x in calls.get(name, []) if x in on_path and x != name
                  and effect_onset(cands[x]) <= latest_effect(c) + TOLERANCE]
        if deeper:
            c.tier = 1
            c.explained_by = min(deeper, key=lambda x: effect_onset(cands[x]))
            cands[c.explained_by].explains.add(name)
        elif name in affected or name == start:
            c.tier = 2
    for name in [n for n, c in cands.items() if c.tier == 2]:
        origin = load_origin(name, cands, callers, calls, seen={name})
        if origin is not None and origin != name:
            o = cands.setdefault(origin, _blank(cands, origin))
            o.tier = 3
            o.load_of = name
            o.explains.add(name)
            cands[name].explained_by = origin


def _blank(cands: dict[str, Candidate], name: str) -> Candidate:
    cls = type(next(iter(cands.values())))
    return cls(name)


def load_origin(name: str, cands: dict[str, Candidate], callers: dict[str, list[str]],
                calls: dict[str, list[str]], seen: set[str]) -> str | None:
    """Where the load that saturated `name` came from (None: it was not load)."""
    c = cands.get(name)
    if c is None or c.measured is False or traffic_up(c) is None or not saturated(c):
        return None
    rise = traffic_up(c)
    assert rise is not None
    pushers = [(a, u) for a, _, u in c.calls_in if rising(a)
               and a.onset <= rise.onset + TOLERANCE]
    if not pushers:  # no per-caller rates: the callers whose own traffic rose
        pushers = [(up, u) for u in callers.get(name, []) if u in cands
                   and (up := traffic_up(cands[u])) is not None]
    if not pushers:
        return name if not callers.get(name) else None
    _, u = max(pushers, key=lambda p: p[0].z)
    return _climb(u, cands, callers, calls, seen | {name}, pushed=name)


def _climb(u: str, cands: dict[str, Candidate], callers: dict[str, list[str]],
           calls: dict[str, list[str]], seen: set[str], *, pushed: str) -> str:
    """From a caller whose calls rose, up to where the load began."""
    cu = cands.get(u)
    if cu is None or u in seen:
        return u
    up = traffic_up(cu)
    if up is not None:  # it passes on more traffic than before: look above it
        above = [(a, x) for a, _, x in cu.calls_in if rising(a)]
        above += [(t, x) for x in callers.get(u, []) if x in cands and x not in seen
                  and (t := traffic_up(cands[x])) is not None]
        if above:
            _, x = max(above, key=lambda p: p[0].z)
            return _climb(x, cands, callers, calls, seen | {u}, pushed=u)
        return u  # an entry whose traffic surged
    if cu.change is not None:
        return u  # it began calling more after a change of its own (retries, a deploy)
    failing = [x for x in calls.get(u, []) if x != pushed and x in cands
               and effects(cands[x]) and effect_onset(cands[x]) <= _rise_onset(cu, pushed)
               + TOLERANCE]
    if failing:  # it makes up for another dependency failing (a cache that stopped)
        return min(failing, key=lambda x: effect_onset(cands[x]))
    return u


def _rise_onset(c: Candidate, target: str) -> float:
    return min((a.onset for a, _, t in c.calls_out if t == target), default=math.inf)


def path_of(name: str, cands: dict[str, Candidate]) -> Iterable[str]:
    """The chain of explanations from a candidate down to what explains it."""
    seen = {name}
    while (nxt := cands[name].explained_by) is not None and nxt not in seen:
        seen.add(nxt)
        yield nxt
        name = nxt
