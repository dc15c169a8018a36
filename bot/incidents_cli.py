"""`sre-copilot incidents [--org ORG] [--since ISO --until ISO] [--json]`: an org's incidents
opened in a period (default: all), each with why its alerts belong together, whether it was
judged noise (and so never posted), and its alerts — as a table for a terminal or as JSON:

    [{"id": "INC-7", "title", "service", "state", "opened_at", "resolved_at", "noise",
      "reason", "merged_into", "alerts": [{"alertname", "fingerprint", "labels",
      "starts_at", "ends_at"}]}]
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.digest_cli import UsageError, org_named, when
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.incidents import incidents_with_alerts


async def run(settings: Settings, *, org: str | None, since: str | None, until: str | None,
              json_out: bool) -> int:
    start = when(since, "--since") if since else None
    end = when(until, "--until") if until else None
    if start and end and end <= start:
        raise UsageError("--until must be after --since")
    db = await prepare_database(settings)
    try:
        found = await org_named(db, org or settings.default_org)
        assert found.id is not None
        async with db.session() as session:
            rows = await incidents_with_alerts(session, org_id=found.id, since=start, until=end)
    finally:
        await db.dispose()
    listed = [_json(incident, alerts) for incident, alerts in rows]
    if json_out:
        print(json.dumps(listed, indent=2, ensure_ascii=False))
    else:
        print(_table(listed))
    return 0


def _iso(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


def _json(incident: Any, alerts: list[Any]) -> dict[str, Any]:
    return {"id": incident.ref, "title": incident.title, "service": incident.service,
            "state": incident.status, "opened_at": _iso(incident.triggered_at),
            "resolved_at": _iso(incident.resolved_at), "noise": incident.noise,
            "reason": incident.reason,
            "merged_into": f"INC-{incident.merged_into_id}" if incident.merged_into_id else None,
            # A lone warning's incident not posted yet: its card is due then, unless it
            # resolves first (then it turns to noise).
            "unconfirmed_until": _iso(incident.unconfirmed_until),
            "alerts": [{"alertname": a.alertname, "fingerprint": a.fingerprint,
                        "labels": a.labels, "starts_at": _iso(a.starts_at),
                        "ends_at": _iso(a.ends_at)} for a in alerts]}


def _table(listed: list[dict[str, Any]]) -> str:
    if not listed:
        return "No incidents in this period."
    head = f"{'ID':<9}{'STATE':<14}{'OPENED (UTC)':<18}{'ALERTS':>6}  {'':<6}TITLE — WHY"
    lines = [head]
    for i in listed:
        opened = (i["opened_at"] or "")[:16].replace("T", " ")
        kind = "noise" if i["noise"] else ("merged" if i["merged_into"] else (
            "wait" if i["unconfirmed_until"] else ""))
        why = f" — {i['reason']}" if i["reason"] else ""
        lines.append(f"{i['id']:<9}{i['state']:<14}{opened:<18}{len(i['alerts']):>6}  "
                     f"{kind:<6}{i['title']}{why}"[:220])
    noise = sum(1 for i in listed if i["noise"])
    waiting = sum(1 for i in listed if i["unconfirmed_until"] and not i["noise"])
    lines.append(f"\n{len(listed)} incidents: {len(listed) - noise - waiting} posted, {noise} "
                 "judged noise (never posted)"
                 + (f", {waiting} waiting to be confirmed." if waiting else "."))
    return "\n".join(lines)
