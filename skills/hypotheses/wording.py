"""How hypotheses are said: a plain-language statement naming the suspected service and signal
with its numbers, and the next check to run. Every number comes from the candidate's evidence."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from skills.context import ChangeRecord, Snapshot

if TYPE_CHECKING:
    from skills.hypotheses.candidates import Candidate


def format_value(signal: str, v: float) -> str:
    if signal in ("errors", "client_errors"):
        return f"{v * 100:.1f}%"
    if signal in ("latency", "client_latency"):
        return f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s"
    if signal == "memory":
        return f"{v / 2**20:.0f} MiB"
    if signal == "cpu":
        return f"{v:.2f} cores"
    return f"{v:.1f} req/s"


def _clock(unix: float, snap: Snapshot) -> str:
    return datetime.fromtimestamp(unix, tz=snap.at.tzinfo).strftime("%H:%M")


def describe(c: Candidate, kind: str, snap: Snapshot) -> str:
    if not c.all and c.change is not None and c.load_of is None:
        ch = c.change[0]
        lead = (snap.at.timestamp() - ch.occurred_at.timestamp()) / 60.0
        what = ch.description or ch.version or ch.kind
        return (f"{c.service} had a {ch.kind} ({what}) {lead:.0f} min before the alert; none "
                "of its metrics has left its baseline yet, so this is a lead to check, not a "
                "finding.")
    if c.load_of is not None and c.change is None:
        return _load_origin(c, snap)
    own = sorted(c.anomalies, key=lambda p: -p[0].z)
    parts = [f"{a.signal} {format_value(a.signal, a.baseline)} → "
             f"{format_value(a.signal, a.peak)}" for a, _ in own[:2]]
    seen = sorted(c.seen_by_callers, key=lambda p: -p[0].z)
    callers = sorted({caller for _, _, caller in seen})
    if kind == "dependency":
        a = seen[0][0] if seen else own[0][0]
        text = (f"{c.service} is failing its callers: {', '.join(callers)} see "
                f"{format_value(a.signal, a.baseline)} → {format_value(a.signal, a.peak)} "
                f"errors calling it from {_clock(a.onset, snap)}")
    else:
        text = f"{c.service}: {', '.join(parts) or 'errors seen by its callers'} from " \
               f"{_clock(c.onset, snap)}"
        if seen:
            text += f"; its callers ({', '.join(callers)}) see errors calling it"
    if c.change is not None:
        ch = c.change[0]
        what = ch.description or (f"{ch.previous_version} → {ch.version}" if ch.version
                                  else ch.kind)
        lead = (c.onset - ch.occurred_at.timestamp()) / 60.0
        text += f", {lead:.0f} min after {ch.kind} ({what})"
    if c.explains:
        text += f". This would explain {', '.join(sorted(c.explains))}"
    if c.explained_by:
        text += f". Probably a symptom of {c.explained_by}, which it calls"
    return text + "."


def next_check(service: str, kind: str, change: ChangeRecord | None) -> str:
    if kind in ("deploy", "config") and change is not None:
        if change.version and change.previous_version:
            return (f"Diff {service} {change.version} against {change.previous_version}; if "
                    "errors persist, roll back and watch the error ratio recover.")
        return f"Review the {change.kind} of {service} at {change.occurred_at:%H:%M}; revert it."
    sel = f'service="{service}"'
    checks = {
        "dependency": (f"Check {service} itself (status page, connectivity): sum by (service, "
                       f'code) (rate(http_client_requests_total{{target="{service}"}}[5m]))'),
        "cpu": (f"Check CPU limits and throttling of {service}: rate(container_cpu_cfs_"
                f'throttled_seconds_total{{container="{service}"}}[5m])'),
        "memory": (f"Look for OOM kills and restarts of {service}: increase(kube_pod_container_"
                   f'status_restarts_total{{container="{service}"}}[1h])'),
        "saturation": f"Check {service}'s connection pools, queue depth and slow queries.",
        "latency": (f"Find {service}'s slow endpoints and what they wait on: "
                    "histogram_quantile(0.99, sum by (le, route) (rate("
                    f"http_request_duration_seconds_bucket{{{sel}}}[5m])))"),
        "errors": (f"Read {service}'s error logs by route: sum by (code, route) "
                   f'(rate(http_requests_total{{{sel},code=~"5.."}}[5m]))'),
        "traffic": (f"Check where {service}'s traffic changed: "
                    f"sum by (route) (rate(http_requests_total{{{sel}}}[5m]))"),
    }
    return checks.get(kind, f"Look at {service}'s dashboards around the onset.")


def _load_origin(c: Candidate, snap: Snapshot) -> str:
    """A load's origin: the traffic it took or the calls it made rose, and what they pushed."""
    own = next((a for a, _ in c.anomalies if a.signal == "traffic"), None)
    pushed = sorted(c.calls_out, key=lambda p: -p[0].z)
    parts = []
    if own is not None:
        parts.append(f"its traffic rose {format_value('traffic', own.baseline)} → "
                     f"{format_value('traffic', own.peak)} from {_clock(own.onset, snap)}")
    if pushed:
        a, _, target = pushed[0]
        parts.append(f"its calls to {target} rose {format_value('traffic', a.baseline)} → "
                     f"{format_value('traffic', a.peak)} from {_clock(a.onset, snap)}")
    if c.load_of == c.service:
        return f"{c.service}: {'; '.join(parts)}; the surge saturated it (CPU, latency)."
    if not parts:  # it failed, and its callers made up for it elsewhere
        strongest = sorted(c.all, key=lambda a: -a.z)
        what = ", ".join(f"{a.signal.replace('_', ' ')} {format_value(a.signal, a.baseline)}"
                         f" → {format_value(a.signal, a.peak)}" for a in strongest[:2])
        return (f"{c.service} is failing ({what or 'seen by its callers'}); its callers made "
                f"up for it by calling {c.load_of} more, which saturated it.")
    return f"{c.service}: {'; '.join(parts)}. That load saturated {c.load_of}."
