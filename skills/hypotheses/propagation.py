"""How trouble travels through a call graph, and so which candidate explains the alert.

The rules, each a plain reading of the evidence rather than a weight:
- A service is *affected* when its own errors or latency left their baseline and are still off,
  or when its callers see it failing (external providers have no series of their own).
- The symptom travels upward: a caller is hurt by what it calls. Starting at the alerting
  service, a dependency is on the symptom's path when it explains what its caller shows, no
  later than the caller began to show it (give or take the rate window): the caller's errors by
  the failures the caller sees calling it — enough of them to account for at least half of the
  caller's new errors, counting how often it is called —, the caller's latency by its own
  latency or by timeouts.
- The *roots* are the deepest services on that path: nothing they call explains them. A CPU or
  memory rise with no effect on a service's errors, latency or callers (a cron job, a GC pause)
  is on no path, and so explains nothing. When the alerting service itself shows nothing still
  going on, every affected service below it is a root candidate.
- Load is the exception that travels downward: a saturated root with no change of its own,
  whose callers' calls at least doubled, was pushed. Following the calls that rose upward leads
  to the load's origin — an entry service whose traffic surged, a caller that began calling
  more after a change of its own (a retry setting, a deploy), or, when that caller only makes
  up for another dependency failing (a cache that stopped answering), that dependency. Calls
  that rose for none of these reasons are retries of failures: a symptom, not a load.

`classify` sets each candidate's tier: 3 the load's origin, 2 a root, 1 on the path but
explained by something deeper, 0 not on the symptom's path at all.
"""

from __future__ import annotations

import math
from collections import deque
from typing import TYPE_CHECKING

import numpy as np

from skills.context import Snapshot
from skills.hypotheses.candidates import Candidate

if TYPE_CHECKING:
    from skills.hypotheses.anomaly import Anomaly

# s: onsets read from 5-minute rates lag the true start by up to the rate window, more for a
# signal that rises slowly: a dependency may show up to that much later than its caller.
TOLERANCE = 300.0
EFFECTS = ("errors", "latency")
# Load that at least doubled: less is within the headroom services are run with, and within
# what retries of failed calls add (a symptom); surges and retry storms are 2-7x.
SURGE = 2.0
EXPLAINS = 0.5  # a dependency's failures must account for half of its caller's new errors


def ongoing(a: Anomaly) -> bool:
    """Still going on at the end of the range, not a brief burst, not a usual one."""
    return a.persistence >= 0.5 and a.current_z >= 2.0 and not a.recurrent


def effects(c: Candidate) -> list[Anomaly]:
    """What makes a candidate affected: its own errors and latency, what its callers see."""
    own = [a for a, _ in c.anomalies if a.signal in EFFECTS]
    seen = [a for a, _, _ in c.seen_by_callers]
    return [a for a in own + seen if ongoing(a)]


def own_effect(c: Candidate, signal: str) -> Anomaly | None:
    return next((a for a, _ in c.anomalies if a.signal == signal and ongoing(a)), None)


def effect_onset(c: Candidate) -> float:
    return min((a.onset for a in effects(c)), default=math.inf)


def latest_effect(c: Candidate) -> float:
    """When the last of its effects began: a dependency that began before any of them may
    explain that one (a deploy that slowed it a little, then the new dependency failing)."""
    return max((a.onset for a in effects(c)), default=math.inf)


def rising(a: Anomaly) -> bool:
    """At least doubled. A call that did not exist before is a new dependency, not load."""
    return a.baseline > 0 and a.current >= SURGE * a.baseline


def traffic_up(c: Candidate) -> Anomaly | None:
    """Its served traffic at least doubled (and stays up)."""
    return next((a for a, _ in c.anomalies if a.signal == "traffic" and rising(a)
                 and a.current_z >= 2.0), None)


def saturated(c: Candidate) -> bool:
    return any(a.signal in ("latency", "cpu", "errors") for a, _ in c.anomalies) \
        or bool(c.seen_by_callers)


class Levels:
    """Before-and-now levels of the snapshot's series, for shares of a change."""

    def __init__(self, snap: Snapshot, split: float) -> None:
        self.split = split
        self.by: dict[tuple[str, str, str | None], tuple[float, float]] = {}
        for sd in snap.signals:
            v, t = sd.series.values, sd.series.times
            before, ok = v[(t < split) & np.isfinite(v)], v[np.isfinite(v)]
            if len(ok) == 0:
                continue
            base = float(np.median(before)) if len(before) else 0.0
            self.by[(sd.service, sd.signal, sd.target)] = (base, float(np.median(ok[-4:])))

    def get(self, service: str, signal: str, target: str | None = None
            ) -> tuple[float, float] | None:
        return self.by.get((service, signal, target))


def error_share(levels: Levels, u: str, w: str) -> float | None:
    """How much of `u`'s new errors the failures it sees calling `w` account for: the rise of
    the failed share of its calls to `w`, times calls to `w` per request `u` serves, over the
    rise of `u`'s error ratio (None when a series is missing)."""
    seen, calls = levels.get(u, "client_errors", w), levels.get(u, "client_traffic", w)
    mine, served = levels.get(u, "errors"), levels.get(u, "traffic")
    if seen is None or calls is None or mine is None or served is None or served[1] <= 0:
        return None
    rise = mine[1] - mine[0]
    if rise <= 0:
        return None
    return max(0.0, seen[1] - seen[0]) * calls[1] / served[1] / rise


def explains(u: Candidate | None, w: Candidate, levels: Levels) -> bool:
    """Whether what `w` shows explains what its caller `u` shows (see the module's rules)."""
    if u is None or not effects(u):
        return bool(effects(w))
    seen = [a for a, _, caller in w.seen_by_callers if caller == u.service and ongoing(a)]
    if min((a.onset for a in effects(w)), default=math.inf) > latest_effect(u) + TOLERANCE:
        return False
    if own_effect(u, "errors") is not None or any(ongoing(a) for a, _, _ in u.seen_by_callers):
        edge = levels.get(u.service, "client_errors", w.service) is not None
        failing = bool(seen) if edge else own_effect(w, "errors") is not None
        share = error_share(levels, u.service, w.service) if failing else None
        if failing and (share is None or share >= EXPLAINS):
            return True
    if own_effect(u, "latency") is not None:
        return own_effect(w, "latency") is not None or bool(seen)
    return False


def classify(snap: Snapshot, cands: dict[str, Candidate], split: float) -> None:
    levels = Levels(snap, split)
    calls: dict[str, list[str]] = {}
    callers: dict[str, list[str]] = {}
    for a, b in snap.edges:
        calls.setdefault(a, []).append(b)
        callers.setdefault(b, []).append(a)
    start = snap.service
    on_path: dict[str, str | None] = {start: None}
    queue = deque([start])
    while queue:
        u = queue.popleft()
        for w in calls.get(u, []):
            if w in cands and w not in on_path and explains(cands.get(u), cands[w], levels):
                on_path[w] = u
                queue.append(w)
    if len(on_path) == 1 and not (start in cands and effects(cands[start])):
        # The alerting service shows nothing still going on: whatever is affected below it.
        _reach_all(start, calls, cands, on_path)
    for name, c in cands.items():
        c.tier = 0
        if name not in on_path:
            continue
        deeper = [x for x in calls.get(name, []) if x in on_path and x != name
                  and explains(c, cands[x], levels)]
        if deeper:
            c.tier = 1
            c.explained_by = min(deeper, key=lambda x: effect_onset(cands[x]))
            cands[c.explained_by].explains.add(name)
        elif effects(c) or name == start:
            c.tier = 2
    _broken_calls(cands)
    for name in [n for n, c in cands.items() if c.tier in (1, 2)]:
        if c_self_load(cands[name], cands, callers):  # its own surge saturated it
            cands[name].tier, cands[name].load_of = 3, name
            continue
        if cands[name].tier != 2:
            continue
        origin = load_origin(name, cands, callers, calls)
        if origin is None:
            continue
        if origin == name:  # an entry saturated by its own surge
            cands[name].tier, cands[name].load_of = 3, name
            continue
        o = cands.setdefault(origin, Candidate(origin))
        o.tier = 3
        o.load_of = name
        o.explains.add(name)
        cands[name].explained_by = origin


def _broken_calls(cands: dict[str, Candidate]) -> None:
    """A dependency seen failing only by callers that changed just before (a timeout cut, a
    bad endpoint configured): the callers' change broke their calls, the dependency is fine.
    Its own series, if it has any, would show it failing for everyone."""
    for w in [c for c in cands.values() if c.tier == 2 and c.seen_by_callers]:
        if own_effect(w, "errors") is not None or own_effect(w, "latency") is not None:
            continue
        began = effect_onset(w)
        seers = {u for a, _, u in w.seen_by_callers if ongoing(a)}
        changed = [u for u in seers if u in cands and abs(_changed_at(cands[u]) - began)
                   <= TOLERANCE]
        if seers and len(changed) == len(seers):
            u = min(changed)
            w.tier, w.explained_by = 1, u
            cands[u].tier = 2
            cands[u].explains.add(w.service)
            cands[u].explained_by = None


def _changed_at(c: Candidate) -> float:
    return c.change[0].occurred_at.timestamp() if c.change is not None else math.inf


def c_self_load(c: Candidate, cands: dict[str, Candidate],
                callers: dict[str, list[str]]) -> bool:
    """Its own traffic at least doubled, from outside what we see (no caller in scope calls it
    more), and it saturated (CPU, latency, errors) as it did, with no change of its own: the
    surge it took explains its trouble, whatever is below it."""
    rise = traffic_up(c)
    if rise is None or c.change is not None or any(rising(a) for a, _, _ in c.calls_in):
        return False
    if any(u in cands and traffic_up(cands[u]) is not None for u in callers.get(c.service, [])):
        return False
    began = [a.onset for a, _ in c.anomalies if a.signal in ("cpu", "latency", "errors")]
    return bool(began) and abs(min(began) - rise.onset) <= TOLERANCE and \
        any(a.signal == "cpu" for a, _ in c.anomalies)


def _reach_all(start: str, calls: dict[str, list[str]], cands: dict[str, Candidate],
               on_path: dict[str, str | None]) -> None:
    seen, queue = {start}, deque([start])
    while queue:
        u = queue.popleft()
        for w in calls.get(u, []):
            if w in seen:
                continue
            seen.add(w)
            queue.append(w)
            if w in cands and effects(cands[w]):
                on_path[w] = u


def load_origin(name: str, cands: dict[str, Candidate], callers: dict[str, list[str]],
                calls: dict[str, list[str]]) -> str | None:
    """Where the load that saturated `name` came from (None: it was not load)."""
    c = cands[name]
    if c.change is not None or not saturated(c):
        return None  # a change of its own explains it more directly than load
    began = effect_onset(c) if effects(c) else min((a.onset for a in c.all), default=math.inf)
    # Load that saturated it rose shortly before (a ramp may take a while to fill the
    # headroom) or with its trouble, not an hour earlier.
    pushers = [(a, u) for a, _, u in c.calls_in if rising(a)
               and began - 2 * TOLERANCE <= a.onset <= began + TOLERANCE]
    rise = traffic_up(c)
    if not pushers and rise is not None:  # no per-caller rates: callers whose traffic rose
        pushers = [(up, u) for u in callers.get(name, []) if u in cands
                   and (up := traffic_up(cands[u])) is not None]
        if not pushers and not callers.get(name):
            return name  # an entry: its own traffic surged
    if not pushers:
        return None
    _, u = max(pushers, key=lambda p: p[0].z)
    return _climb(u, cands, callers, calls, {name}, pushed=name)


def _climb(u: str, cands: dict[str, Candidate], callers: dict[str, list[str]],
           calls: dict[str, list[str]], seen: set[str], *, pushed: str) -> str | None:
    """From a caller whose calls rose, up to where the load began (None: retries)."""
    cu = cands.get(u)
    if cu is None or u in seen:
        return None
    if traffic_up(cu) is not None:  # it passes on more traffic than before: look above it
        above = [(a, x) for a, _, x in cu.calls_in if rising(a)]
        above += [(t, x) for x in callers.get(u, []) if x in cands and x not in seen
                  and (t := traffic_up(cands[x])) is not None]
        if above:
            _, x = max(above, key=lambda p: p[0].z)
            return _climb(x, cands, callers, calls, seen | {u}, pushed=u) or u
        return u  # an entry whose traffic surged
    if cu.change is not None:
        return u  # it began calling more after a change of its own (retries, a deploy)
    rose = min((a.onset for a, _, t in cu.calls_out if t == pushed), default=math.inf)
    failing = [x for x in calls.get(u, []) if x != pushed and x in cands
               and effects(cands[x]) and effect_onset(cands[x]) <= rose + TOLERANCE]
    if failing:  # it makes up for another dependency failing (a cache that stopped)
        return min(failing, key=lambda x: effect_onset(cands[x]))
    return None
