"""When an alert is noise, and how long a warning waits before it may become a card. Pure rules
over times in seconds, shared by the intake and the noise benchmark.

- Heartbeats (Watchdog, InfoInhibitor, `severity="none"`) are never incidents.
- An info alert is never posted on its own.
- A capacity warning (kube-prometheus' overcommit alerts: the pods' requests or the
  namespaces' quotas exceed what the cluster could hold with a node gone) says the cluster
  lacks headroom, not that anything is failing: it is folded into one quiet line and the
  digest, never a card of its own — unless critical. Every generator of the noise benchmark,
  and issue 23's description of its held-back stream, has it as a warning firing for hours.
- A firing of an alert (the same rule and labels, any severity but critical) none of whose
  earlier firings was acknowledged is folded when it comes back within the flap span of a
  short firing (*flapping*: a threshold hovering at its edge), or when it is the third within
  the recurrence span and has been firing for at least half of the time since the first
  (*chronic*). A node that fails twice in an hour for twenty minutes each time is neither —
  the digest's noisy-alert table measures the same two things after the fact.
- A warning is held until it has lasted the hold. The copilot hears of a resolution only with
  its group's next notification, which Alertmanager sends a group interval after the last one,
  so a held alert is released at the first group interval after its hold has passed — if no
  resolution came by then — or as soon as its hold has passed if Prometheus' own alerts API
  shows it still firing (`shown_firing`). One that resolves within the hold is noise.
  Critical alerts are never held or judged chronic, and their first firing is posted at once;
  a critical back within the flap span after a short firing nobody acknowledged is flapping
  like any other (twelve one-minute error-budget burns in an afternoon are one quiet line,
  not twelve cards).
- A warning that opens an incident of its own is *unconfirmed*: the incident takes part in
  correlation at once, but its card waits until another alert joins it, a critical one does,
  or the warning has fired for the short span (again to the next group interval, or at once
  if Prometheus shows it still firing). One whose warning resolves sooner was a one-off:
  noise, never posted. A short, unacknowledged firing is what flapping is made of; on its own
  it is not yet a problem worth a card.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

HEARTBEATS = frozenset({"Watchdog", "InfoInhibitor", "DeadMansSwitch", "DeadMansSnitch"})
CRITICAL = frozenset({"critical", "page", "error", "high"})
QUIET = frozenset({"info", "none", "low"})
# kube-prometheus' kubernetes-resources alerts about requests and quotas against allocatable.
CAPACITY = frozenset({"KubeCPUOvercommit", "KubeMemoryOvercommit", "KubeCPUQuotaOvercommit",
                      "KubeMemoryQuotaOvercommit"})
CHRONIC_SHARE = 2 / 3


@dataclass(frozen=True)
class NoiseRules:
    """The windows, from settings: `SRE_COPILOT_NOISE_HOLD_SECONDS`,
    `SRE_COPILOT_ALERTMANAGER_GROUP_INTERVAL_SECONDS`, `SRE_COPILOT_NOISE_RECUR_COUNT`,
    `SRE_COPILOT_NOISE_FLAP_SECONDS`, `SRE_COPILOT_NOISE_SHORT_SECONDS`,
    `SRE_COPILOT_NOISE_RECUR_SECONDS`, `SRE_COPILOT_NOISE_CAPACITY_ALERTS`."""

    hold_s: float = 120.0
    group_interval_s: float = 300.0
    flap_span_s: float = 3600.0
    short_s: float = 600.0
    recur_count: int = 2
    recur_span_s: float = 86400.0
    capacity: frozenset[str] = CAPACITY  # alert names that say the cluster lacks headroom

    @property
    def grace_s(self) -> float:
        """How late a notification may arrive after its group interval (delivery, retries)."""
        return min(15.0, max(1.0, self.group_interval_s / 20))


def noise_key(labels: dict[str, Any]) -> str:
    """The key of one alert's episodes: its labels but severity (a threshold's warning and
    critical, a flapping rule's info and warning firings are one alert)."""
    kept = sorted((k, str(v)) for k, v in labels.items() if k != "severity")
    return hashlib.sha256(repr(kept).encode()).hexdigest()


def is_heartbeat(alertname: str, severity: str | None) -> bool:
    return alertname in HEARTBEATS or (severity or "").lower() == "none"


def is_critical(severity: str | None) -> bool:
    return (severity or "").lower() in CRITICAL


Episode = tuple[float, float | None]  # an earlier firing's start and end (None: firing)


def on_arrival(severity: str | None, *, starts_at: float, earlier: list[Episode],
               acknowledged_before: bool, rules: NoiseRules, alertname: str = "") -> str | None:
    """Why a new firing is noise from the moment it arrives, or None. `earlier`: the alert's
    earlier firings, as far as the copilot has heard."""
    sev = (severity or "").lower()
    if sev in QUIET:
        return f"{sev or 'unrated'} alert on its own: never posted alone"
    if acknowledged_before:
        return None
    if alertname in rules.capacity and not is_critical(sev):
        return (f"capacity: {alertname} says the cluster lacks headroom, nothing is failing "
                "— in the digest, not a card")
    recent = sorted((s, e) for s, e in earlier if 0 < starts_at - s <= rules.recur_span_s)
    for s, e in reversed(recent):
        if e is not None and starts_at - e <= rules.flap_span_s and e - s <= rules.short_s:
            return (f"flapping: back {_span(starts_at - e)} after a {_span(e - s)} firing "
                    "that nobody acknowledged")
    if is_critical(sev):
        return None
    if len(recent) + 1 >= rules.recur_count:
        first = recent[0][0]
        covered = _covered([(s, starts_at if e is None else min(e, starts_at)) for s, e in recent])
        if covered >= CHRONIC_SHARE * (starts_at - first):
            return (f"chronic: firing {len(recent) + 1} within {_span(rules.recur_span_s)}, "
                    f"firing {covered / (starts_at - first):.0%} of the time, none acknowledged")
    return None


def _covered(spans: list[tuple[float, float]]) -> float:
    """Seconds covered by the union of the spans."""
    total, reach = 0.0, float("-inf")
    for s, e in sorted(spans):
        if e > reach:
            total += e - max(s, reach)
            reach = e
    return total


def _span(seconds: float) -> str:
    if seconds >= 5400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 60:.0f} min" if seconds >= 90 else f"{seconds:.0f} s"


def release_at(severity: str | None, *, starts_at: float, received_at: float,
               rules: NoiseRules) -> float:
    """When a firing may become (part of) a card if no resolution has come: at once for a
    critical or for one that has already lasted the hold, else at the first group interval
    after the hold, plus a grace for delivery."""
    return _after(severity, rules.hold_s, starts_at=starts_at, received_at=received_at,
                  rules=rules)


def confirm_at(severity: str | None, *, starts_at: float, opened_at: float,
               rules: NoiseRules) -> float:
    """When an incident opened by this firing alone is posted if no other alert joins it and
    no resolution has come: at once for a critical, with holding off (a zero hold), or once it
    has fired for the short span; else a group interval after the short span (by then the
    group's notification saying it resolved would have come), plus the grace."""
    if is_critical(severity) or rules.hold_s <= 0 or opened_at - starts_at >= rules.short_s:
        return opened_at
    return starts_at + rules.short_s + rules.group_interval_s + rules.grace_s


def _after(severity: str | None, span: float, *, starts_at: float, received_at: float,
           rules: NoiseRules) -> float:
    if is_critical(severity) or received_at - starts_at >= span or span <= 0:
        return received_at
    intervals = max(1, math.ceil((starts_at + span - received_at) / rules.group_interval_s))
    return received_at + intervals * rules.group_interval_s + rules.grace_s


def shown_firing(labels: Mapping[str, Any], firing: Sequence[Mapping[str, Any]]) -> bool:
    """Whether the alert is among those Prometheus itself shows firing (its alerts API). There
    an alert carries its rule's and its series' labels; Alertmanager's copy adds Prometheus'
    external labels — so one shown whose labels all match the alert's is the alert."""
    return any(shown.get("alertname") == labels.get("alertname")
               and all(str(labels.get(k)) == str(v) for k, v in shown.items()
                       if k != "alertstate")
               for shown in firing)


def outlasted_short(*, starts_at: float, ends_at: float, rules: NoiseRules) -> bool:
    """Whether a warning that resolved had fired for longer than the short span: not a
    one-off, whether or not its card was due yet (`confirm_at` waits for the notification
    that would say it resolved, which may come after it ended)."""
    return ends_at - starts_at > rules.short_s


def resolved_within_hold(*, starts_at: float, ends_at: float, rules: NoiseRules) -> bool:
    return ends_at - starts_at <= rules.hold_s
