"""Postmortem drafts: every section present; impact figures only from stored evidence, cited,
or "not measured"; the confirmed hypothesis is the root cause and an unconfirmed top one says
so; and no number appears that the inputs do not give."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from knowledge.changes import record_change
from knowledge.correlation import apply_alert, apply_pagerduty
from knowledge.db import Database
from knowledge.hypotheses import (
    Hypothesis,
    HypothesisStatus,
    add_hypothesis,
    list_hypotheses,
    record_feedback,
)
from knowledge.incidents import Incident, IncidentNotFound, get_incident, group_key_hash
from skills.postmortem import draft_postmortem, postmortem_for
from skills.timeline import TimelineView, format_duration, incident_timeline
from skills.types import Evidence
from tests.knowledge.factories import T0, firing, org_id, paging, resolution

SECTIONS = ["Summary", "Impact", "Timeline", "Root cause", "Contributing factors",
            "Open questions", "Action items", "Charts"]
ERRORS_Q = ('(sum(rate(http_requests_total{service="checkout",code=~"5.."}[5m])) or vector(0))'
            ' / sum(rate(http_requests_total{service="checkout"}[5m]))')
LATENCY_Q = ('histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket'
             '{service="checkout"}[5m])))')
NEXT_CHECK = ("Diff checkout v2.14.0 against v2.13.2; if errors persist, roll back and watch "
              "the error ratio recover.")


def metric(ev_id: str, service: str, signal: str, *, baseline: float, peak: float,
           query: str, onset: datetime) -> dict[str, Any]:
    """Evidence as the engine makes it, stored as `model_dump(mode="json")`."""
    return Evidence(id=ev_id, source="prometheus", query=query, start=T0 - timedelta(hours=1),
                    end=T0 + timedelta(minutes=5), step_seconds=15.0,
                    summary=f"{service} {signal}: from {onset:%H:%M}",
                    values={"baseline": baseline, "peak": peak, "current": peak * 0.9,
                            "robust_z": 42.5, "onset_unix": onset.timestamp(),
                            "persistence": 0.97},
                    labels={"service": service, "signal": signal}).model_dump(mode="json")


def change_evidence(ev_id: str) -> dict[str, Any]:
    at = T0 - timedelta(minutes=10)
    return Evidence(id=ev_id, source="webhook", start=at, end=at,
                    summary="checkout deploy: v2.13.2 → v2.14.0 at 02:50, 7 min before the "
                            "anomaly began",
                    values={"minutes_before_onset": 7.0, "change_unix": at.timestamp()},
                    labels={"service": "checkout", "kind": "deploy", "version": "v2.14.0"}
                    ).model_dump(mode="json")


ONSET = T0 - timedelta(minutes=3)
ERRORS = metric("ev-2", "checkout", "errors", baseline=0.004, peak=0.1234, query=ERRORS_Q,
                onset=ONSET)
LATENCY = metric("ev-3", "checkout", "latency", baseline=0.12, peak=0.85, query=LATENCY_Q,
                 onset=ONSET + timedelta(minutes=1))
PAYMENTS = metric("ev-4", "payments", "latency", baseline=0.2, peak=1.5, query="p99 payments",
                  onset=ONSET + timedelta(minutes=2))

DEPLOY = ("checkout: errors 0.4% → 12.3%, latency 120 ms → 850 ms from 02:57, 7 min after "
          "deploy (v2.13.2 → v2.14.0).")
SLOW_PAYMENTS = "payments: latency 200 ms → 1.50 s from 02:59."
SURGE = "checkout: traffic 40.0 req/s → 95.0 req/s from 02:58."


@dataclass
class Built:
    org_id: int
    incident_id: int
    hypotheses: dict[str, int]


async def build(database: Database, *, evidence: bool = True, resolve: bool = True) -> Built:
    alert = firing("HighErrorRate", severity="critical")
    key = group_key_hash(alert.group_key)
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        await record_change(s, org_id=oid, service="checkout", kind="deploy", version="v2.14.0",
                            previous_version="v2.13.2", author="ci", source="webhook",
                            occurred_at=T0 - timedelta(minutes=10))
        incident = await apply_alert(s, org_id=oid, signal=alert)
        assert incident is not None and incident.id is not None
        await apply_pagerduty(s, org_id=oid, signal=paging("incident.acknowledged", minutes=4,
                                                           key=key))
        if resolve:
            await apply_alert(s, org_id=oid, signal=resolution(alert, minutes=42))
        ids = {}
        specs: list[tuple[str, str, float, dict[str, Any], list[dict[str, Any]]]] = [
            ("deploy", DEPLOY, 0.72, {"service": "checkout", "kind": "deploy", "signal": None,
                                      "next_check": NEXT_CHECK},
             [change_evidence("ev-1"), ERRORS, LATENCY] if evidence
             else [change_evidence("ev-1")]),
            ("payments", SLOW_PAYMENTS, 0.25,
             {"service": "payments", "kind": "latency", "signal": "latency"},
             [PAYMENTS] if evidence else [change_evidence("ev-1")]),
            ("surge", SURGE, 0.1, {"service": "checkout", "kind": "traffic"},
             [change_evidence("ev-1")]),
        ]
        for name, statement, confidence, cause, evs in specs:
            hyp = await add_hypothesis(s, org_id=oid, incident_id=incident.id,
                                       statement=statement, confidence=confidence,
                                       evidence=evs, cause=cause)
            assert hyp.id is not None
            ids[name] = hyp.id
        await record_feedback(s, org_id=oid, hypothesis_id=ids["surge"],
                              status=HypothesisStatus.REJECTED, by="Ana",
                              comment="traffic was flat")
    return Built(oid, incident.id, ids)


async def load(s: AsyncSession, b: Built) -> tuple[Incident, TimelineView, list[Hypothesis]]:
    return (await get_incident(s, org_id=b.org_id, incident_id=b.incident_id),
            await incident_timeline(s, org_id=b.org_id, incident_id=b.incident_id),
            await list_hypotheses(s, org_id=b.org_id, incident_id=b.incident_id))


def section(md: str, title: str) -> str:
    return md.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


NUMBER = re.compile(r"\d+(?:\.\d+)?")


def derivable(incident: Incident, timeline: TimelineView, hyps: list[Hypothesis],
              charts: list[Path]) -> set[str]:
    """Every number the inputs give: their text, their times and durations as shown, the
    confidences, and the peaks formatted."""
    texts = [incident.title, incident.ref, incident.severity or "", incident.service or "",
             *(str(c) for c in charts)]
    texts += [e.summary for e in timeline.events]
    for h in hyps:
        texts += [h.statement, f"{h.confidence:.2f}", str(h.cause.get("next_check", ""))]
        texts += [str(f.get("comment")) for f in h.feedback]
        texts += [str(e.get("id")) + " " + str(e.get("query")) for e in h.evidence]
    times = [incident.triggered_at, incident.resolved_at, *(e.at for e in timeline.events)]
    texts += [f"{t.astimezone(UTC):%Y-%m-%d %H:%M:%S}" for t in times if t is not None]
    durations = [timeline.time_to_acknowledge, timeline.time_to_mitigate,
                 timeline.time_to_resolve, incident.triggered_at - ONSET]
    texts += [format_duration(d) for d in durations if d is not None]
    texts += ["12.3%", "850 ms", "1.50 s"]
    return {n for t in texts for n in NUMBER.findall(t)}


async def test_draft_has_every_section_and_cites_peaks(database: Database) -> None:
    b = await build(database)
    async with database.session() as s:
        incident, timeline, hyps = await load(s, b)
    md = draft_postmortem(incident=incident, timeline=timeline, hypotheses=hyps)
    assert md.startswith(f"# Postmortem (draft): INC-{b.incident_id} — HighErrorRate is firing")
    assert [line[3:] for line in md.splitlines() if line.startswith("## ")] == SECTIONS
    impact = section(md, "Impact")
    assert "- **Duration:** 42m 00s, from 2026-11-20 03:00 UTC to 2026-11-20 03:42 UTC" in impact
    assert "- **Affected service:** checkout" in impact
    # The affected service's own peaks, not payments' higher latency.
    assert f"- **Peak error rate:** 12.3% on checkout (evidence `ev-2`, query `{ERRORS_Q}`)" \
        in impact
    assert f"- **Peak latency:** 850 ms on checkout (evidence `ev-3`, query `{LATENCY_Q}`)" \
        in impact
    assert "1.50 s" not in impact
    timeline_md = section(md, "Timeline")
    assert "- Time to acknowledge: 4m 00s" in timeline_md
    assert "- Time to resolve: 42m 00s" in timeline_md
    assert "- Time to mitigate: 42m 00s (no mitigation step was recorded: counted to the " \
        "resolution)" in timeline_md
    assert ("| 2026-11-20 02:50:00 | deploy | webhook | Deploy checkout v2.13.2 → v2.14.0 by ci |"
            in timeline_md)
    assert "| 2026-11-20 03:42:00 | alert resolved | alertmanager | resolved: HighErrorRate |" \
        in timeline_md


async def test_numbers_come_only_from_the_inputs(database: Database, tmp_path: Path) -> None:
    b = await build(database)
    charts = [tmp_path / "charts" / "inc-1-errors.png"]
    async with database.session() as s:
        incident, timeline, hyps = await load(s, b)
    md = draft_postmortem(incident=incident, timeline=timeline, hypotheses=hyps, charts=charts,
                          relative_to=tmp_path)
    body = md.replace(ERRORS_Q, "").replace(LATENCY_Q, "")  # queries are quoted verbatim
    percentages = set(re.findall(r"\d+(?:\.\d+)?%", body)) - set(
        re.findall(r"\d+(?:\.\d+)?%", " ".join(h.statement for h in hyps)))
    assert percentages <= {"12.3%"}
    assert "12.3%" in section(md, "Impact")
    stray = set(NUMBER.findall(md)) - derivable(incident, timeline, hyps, charts)
    assert not stray, f"numbers not derivable from the inputs: {sorted(stray)}"


async def test_without_evidence_the_impact_is_not_measured(database: Database) -> None:
    b = await build(database, evidence=False)
    async with database.session() as s:
        md = await postmortem_for(s, org_id=b.org_id, incident_id=b.incident_id)
    impact = section(md, "Impact")
    assert "- **Peak error rate:** not measured" in impact
    assert "- **Peak latency:** not measured" in impact
    assert "%" not in impact and " ms" not in impact
    questions = section(md, "Open questions")
    assert "The error rate was not measured" in questions
    assert "Latency was not measured" in questions


async def test_top_hypothesis_unconfirmed_is_marked_so(database: Database) -> None:
    b = await build(database)
    async with database.session() as s:
        md = await postmortem_for(s, org_id=b.org_id, incident_id=b.incident_id)
    root = section(md, "Root cause")
    assert f"**Unconfirmed:** {DEPLOY}" in root
    assert "Confidence 0.72. Evidence: `ev-1`, `ev-2`, `ev-3`." in root
    assert "Root cause (unconfirmed): " + DEPLOY in section(md, "Summary")
    factors = section(md, "Contributing factors")
    assert f"- {SLOW_PAYMENTS} (confidence 0.25, proposed; evidence `ev-4`)" in factors
    assert SURGE not in factors  # rejected
    assert ("- Change on the timeline at 2026-11-20 02:50 UTC: Deploy checkout v2.13.2 → "
            "v2.14.0 by ci") in factors
    questions = section(md, "Open questions")
    assert f"- Rejected by Ana (“traffic was flat”): {SURGE}" in questions
    assert "Is the root cause right? No responder has confirmed it." in questions
    assert ("- Was the alert early enough? It was acknowledged 4m 00s after it triggered; the "
            "first anomaly in the evidence began 3m 00s before it triggered (evidence `ev-2`)."
            ) in questions
    actions = section(md, "Action items").strip().splitlines()
    assert all(a.startswith("- [ ] ") and a.endswith("— owner:") for a in actions)
    assert f"- [ ] {NEXT_CHECK} — owner:" in actions
    assert any("Gate checkout deploys" in a for a in actions)
    assert any("Confirm or rule out the root-cause hypothesis" in a for a in actions)


async def test_a_confirmed_hypothesis_is_the_root_cause(database: Database) -> None:
    b = await build(database)
    async with database.session() as s, s.begin():
        await record_feedback(s, org_id=b.org_id, hypothesis_id=b.hypotheses["payments"],
                              status=HypothesisStatus.CONFIRMED, by="Bo",
                              comment="pool exhausted")
    async with database.session() as s:
        md = await postmortem_for(s, org_id=b.org_id, incident_id=b.incident_id)
    root = section(md, "Root cause")
    assert f"**Confirmed:** {SLOW_PAYMENTS}" in root  # over a likelier unconfirmed one
    assert "Confirmed by Bo (“pool exhausted”)." in root
    assert "Unconfirmed" not in md
    assert f"- {DEPLOY} (confidence 0.72, proposed;" in section(md, "Contributing factors")
    assert any("Protect" not in a and "Find what payments waits on" in a
               for a in section(md, "Action items").splitlines())


async def test_no_hypotheses_leaves_the_root_cause_unknown(database: Database) -> None:
    alert = firing("DiskFull", group="g9", service="db")
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        incident = await apply_alert(s, org_id=oid, signal=alert)
        assert incident is not None and incident.id is not None
    async with database.session() as s:
        md = await postmortem_for(s, org_id=oid, incident_id=incident.id)
    assert section(md, "Root cause").strip() == "Unknown: no hypothesis was recorded."
    assert "- **Duration:** ongoing (triggered 2026-11-20 03:00 UTC, now triggered)" in md
    assert "Was the alert early enough? It was never acknowledged." in md
    assert "- [ ] Find the root cause of" in section(md, "Action items")
    assert section(md, "Charts").strip() == "No charts attached."


async def test_postmortem_for_matches_the_draft_and_links_charts(database: Database,
                                                                 tmp_path: Path) -> None:
    b = await build(database)
    charts = [tmp_path / "out" / "charts" / "inc-errors.png", Path("charts/latency.png")]
    async with database.session() as s:
        loaded = await postmortem_for(s, org_id=b.org_id, incident_id=b.incident_id,
                                      charts=charts, relative_to=tmp_path / "out")
        incident, timeline, hyps = await load(s, b)
    drafted = draft_postmortem(incident=incident, timeline=timeline, hypotheses=hyps,
                               charts=charts, relative_to=tmp_path / "out")
    assert loaded == drafted
    links = section(loaded, "Charts").strip().splitlines()
    assert links[0] == "![inc errors](<charts/inc-errors.png>)"
    plain = draft_postmortem(incident=incident, timeline=timeline, hypotheses=hyps,
                             charts=charts)
    assert section(plain, "Charts").strip().splitlines() == [
        "![inc errors](<inc-errors.png>)", "![latency](<charts/latency.png>)"]


async def test_another_orgs_incident_is_not_found(database: Database) -> None:
    b = await build(database)
    async with database.session() as s, s.begin():
        other = await org_id(s, "globex")
    async with database.session() as s:
        with pytest.raises(IncidentNotFound):
            await postmortem_for(s, org_id=other, incident_id=b.incident_id)
