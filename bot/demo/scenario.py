"""The bundled incident: checkout's error rate and latency jump after a deploy; Alertmanager
fires, PagerDuty pages, a responder acknowledges and rolls back, the alerts resolve.

Every payload has the real wire shape (Alertmanager webhook v4, PagerDuty v3 webhook); times are
relative to now so the replay reads like something that just happened.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

GROUP_KEY = '{}/{severity=~"critical|warning"}:{service="checkout"}'
EXTERNAL_URL = "http://alertmanager.shop.internal:9093"
PD_INCIDENT = "Q2CHKOUT7X"
RESPONDER = "Ana Ortiz"


@dataclass(frozen=True)
class Delivery:
    """One HTTP request the demo sends, and why."""

    at: datetime
    source: str  # alertmanager | pagerduty | changes
    what: str
    body: dict[str, Any]
    forged: bool = False


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _alert(name: str, severity: str, summary: str, description: str, starts: datetime,
           ends: datetime | None, query: str) -> dict[str, Any]:
    labels = {"alertname": name, "service": "checkout", "namespace": "shop",
              "severity": severity, "team": "payments"}
    fingerprint = hashlib.sha256(repr(sorted(labels.items())).encode()).hexdigest()[:16]
    return {"status": "resolved" if ends else "firing", "labels": labels,
            "annotations": {"summary": summary, "description": description,
                            "runbook_url": f"https://runbooks.shop.internal/{name}"},
            "startsAt": _iso(starts), "endsAt": _iso(ends) if ends else "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus.shop.internal:9090/graph?g0.expr={query}",
            "fingerprint": fingerprint}


def _notification(alerts: list[dict[str, Any]]) -> dict[str, Any]:
    status = "firing" if any(a["status"] == "firing" for a in alerts) else "resolved"
    return {"version": "4", "groupKey": GROUP_KEY, "truncatedAlerts": 0, "status": status,
            "receiver": "sre-copilot", "groupLabels": {"service": "checkout"},
            "commonLabels": {"service": "checkout", "namespace": "shop", "team": "payments"},
            "commonAnnotations": {}, "externalURL": EXTERNAL_URL, "alerts": alerts}


def _pd_event(kind: str, at: datetime, status: str, agent: str | None,
              data: dict[str, Any] | None = None) -> dict[str, Any]:
    incident = {
        "id": PD_INCIDENT, "type": "incident",
        "self": f"https://api.pagerduty.com/incidents/{PD_INCIDENT}",
        "html_url": f"https://shop.pagerduty.com/incidents/{PD_INCIDENT}",
        "number": 4127, "status": status,
        "incident_key": hashlib.sha256(GROUP_KEY.encode()).hexdigest(),
        "created_at": _iso(at), "title": "[FIRING:2] checkout: error ratio and latency high",
        "service": {"id": "PCHK001", "type": "service_reference", "summary": "checkout",
                    "html_url": "https://shop.pagerduty.com/service-directory/PCHK001"},
        "assignees": [{"id": "PANA001", "type": "user_reference", "summary": RESPONDER}],
        "escalation_policy": {"id": "PEP0001", "type": "escalation_policy_reference",
                              "summary": "Payments on-call"},
        "priority": {"id": "PP1", "type": "priority_reference", "summary": "P1"},
        "urgency": "high", "conference_bridge": None, "resolve_reason": None,
    }
    agent_ref = ({"id": "PANA001", "type": "user_reference", "summary": agent,
                  "html_url": "https://shop.pagerduty.com/users/PANA001"} if agent else
                 {"id": "PEVENTS", "type": "service_reference", "summary": "checkout"})
    return {"event": {"id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{kind}:{_iso(at)}")),
                      "event_type": kind, "resource_type": "incident", "occurred_at": _iso(at),
                      "agent": agent_ref, "client": {"name": "PagerDuty"},
                      "data": data if data is not None else incident}}


def onset_of(now: datetime) -> datetime:
    """When checkout starts failing in the replay: 25 minutes before `now`."""
    return now - timedelta(minutes=25)


def deploy_of(now: datetime) -> datetime:
    """When the bad release rolls out: three minutes before the onset."""
    return onset_of(now) - timedelta(minutes=3)


def deliveries(now: datetime) -> list[Delivery]:
    """What the demo posts, in order, for an incident whose onset was 25 minutes before `now`."""
    onset = onset_of(now)
    deploy = {"service": "checkout", "kind": "deploy", "version": "v2.14.0",
              "previous_version": "v2.13.2", "description": "checkout v2.14.0 (new tax rules)",
              "author": "ci-pipeline", "link": "https://ci.shop.internal/checkout/builds/8812",
              "occurred_at": _iso(deploy_of(now)), "id": "build-8812"}
    err_q = ('sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) / '
             'sum(rate(http_requests_total{service="checkout"}[5m])) > 0.01')
    lat_q = ('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
             '{service="checkout"}[5m]))) > 1')
    errors_start, latency_start = onset + timedelta(minutes=1), onset + timedelta(minutes=2)

    def errors(ends: datetime | None = None) -> dict[str, Any]:
        return _alert("CheckoutHighErrorRate", "critical",
                      "checkout is failing over 10% of requests (SLO: 1%)",
                      "5xx ratio on checkout has been above 1% for 5 minutes.", errors_start,
                      ends, err_q)

    def latency(ends: datetime | None = None) -> dict[str, Any]:
        return _alert("CheckoutHighLatency", "warning",
                      "checkout p99 latency is above 2 s (threshold: 1 s)",
                      "p99 of http_request_duration_seconds on checkout is above 1 s.",
                      latency_start, ends, lat_q)

    fired = _notification([errors()])
    both = _notification([errors(), latency()])
    note = {"incident": {"id": PD_INCIDENT, "type": "incident_reference",
                         "summary": "[FIRING:2] checkout: error ratio and latency high",
                         "html_url": f"https://shop.pagerduty.com/incidents/{PD_INCIDENT}"},
            "content": "Errors started right after checkout v2.14.0 rolled out. Rolling back to "
                       "v2.13.2.", "trimmed": False, "type": "incident_note"}
    return [
        Delivery(deploy_of(now), "changes", "CI reports the checkout v2.14.0 deploy", deploy),
        Delivery(onset + timedelta(minutes=1, seconds=30), "alertmanager",
                 "CheckoutHighErrorRate fires", fired),
        Delivery(onset + timedelta(minutes=2), "pagerduty", "PagerDuty pages the on-call",
                 _pd_event("incident.triggered", onset + timedelta(minutes=2), "triggered",
                           None)),
        Delivery(onset + timedelta(minutes=2, seconds=30), "alertmanager",
                 "CheckoutHighLatency joins the group", both),
        Delivery(onset + timedelta(minutes=2, seconds=31), "alertmanager",
                 "Alertmanager retries the same notification", both),
        Delivery(onset + timedelta(minutes=3), "pagerduty",
                 "a forged PagerDuty webhook (bad signature)",
                 _pd_event("incident.resolved", onset + timedelta(minutes=3), "resolved",
                           "attacker"), forged=True),
        Delivery(onset + timedelta(minutes=5), "pagerduty", f"{RESPONDER} acknowledges",
                 _pd_event("incident.acknowledged", onset + timedelta(minutes=5),
                           "acknowledged", RESPONDER)),
        Delivery(onset + timedelta(minutes=9), "pagerduty", f"{RESPONDER} adds a note",
                 _pd_event("incident.annotated", onset + timedelta(minutes=9), "acknowledged",
                           RESPONDER, data=note)),
        Delivery(onset + timedelta(minutes=15), "alertmanager", "both alerts resolve",
                 _notification([errors(onset + timedelta(minutes=14)),
                                latency(onset + timedelta(minutes=15))])),
        Delivery(onset + timedelta(minutes=16), "pagerduty", f"{RESPONDER} resolves in PagerDuty",
                 _pd_event("incident.resolved", onset + timedelta(minutes=16), "resolved",
                           RESPONDER)),
    ]
