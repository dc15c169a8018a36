"""The weekly digest as text: Markdown sections (headline, incidents, response times, on-call,
noisy alerts, capacity, the copilot's own accuracy) that the terminal prints and that Block Kit
(`bot.slack.blocks.digest_messages`) and Adaptive Cards (`bot.teams.cards.digest_cards`) are
made from."""

from __future__ import annotations

from datetime import timedelta
from zoneinfo import ZoneInfo

from skills.digest.metrics import Spread
from skills.digest.report import Digest
from skills.types import format_duration


def _d(seconds: float | None) -> str:
    return "—" if seconds is None else format_duration(timedelta(seconds=seconds))


def _spread(name: str, s: Spread) -> str:
    line = f"- **{name}**: p50 {_d(s.p50)}, p90 {_d(s.p90)} ({s.count} incidents)"
    if s.change_p50 is not None:
        arrow = "faster" if s.change_p50 < 0 else "slower" if s.change_p50 > 0 else "same"
        line += f" — p50 {_d(abs(s.change_p50))} {arrow} than the week before"
    return line


def digest_sections(d: Digest) -> list[tuple[str, str]]:
    """(title, Markdown) per section, in reading order."""
    zone = ZoneInfo(d.timezone)
    start, end = d.period_start.astimezone(zone), d.period_end.astimezone(zone)
    head = (f"{d.incidents.total} incidents (week before: {d.incidents.previous_total}), "
            f"{d.alerts.total} alert firings, {d.oncall.pages} pages "
            f"({d.oncall.out_of_hours} out of hours).")
    # The org is named only where there is more than the one a single team runs by default.
    org = f" · {d.org}" if d.org and d.org != "default" else ""
    sections = [(f"📊 Weekly digest{org} · {start:%a %d %b} – {end:%a %d %b %Y} "
                 f"({d.timezone})", head)]
    lines = [f"- {svc}: {n}" for svc, n in d.incidents.by_service.items()]
    sev = ", ".join(f"{k} {v}" for k, v in d.incidents.by_severity.items())
    sections.append(("Incidents by service", "\n".join(lines + ([f"- severity: {sev}"]
                                                                if sev else [])) or "None."))
    states = [f"- {state}: {_d(s.p50)}" for state, s in d.time_in_state_seconds.items()
              if s.count]
    response = "\n".join([_spread("MTTA", d.mtta_seconds), _spread("MTTR", d.mttr_seconds)])
    if states:
        response += "\n\nTime in each state (p50):\n" + "\n".join(states)
    sections.append(("Response", response))
    people = ", ".join(f"{who} {n}" for who, n in d.oncall.by_responder.items()) or "nobody"
    sections.append(("On-call load", f"{d.oncall.pages} pages, {d.oncall.out_of_hours} out of "
                                     f"hours (Mon–Fri 09–18 {d.timezone} is in hours). "
                                     f"Paged: {people}."))
    noisy = []
    for n, a in enumerate(d.noisy_alerts[:5], 1):
        # Where it fires, in a few words: its service or job, not its whole label set.
        where = next((a.labels[k] for k in ("service", "job", "namespace", "instance")
                      if a.labels.get(k)), "")
        link = f" · [rule]({a.rule_url})" if a.rule_url else ""
        noisy.append(f"{n}. **{a.alertname}**" + (f" on {where}" if where else "")
                     + f" fired {a.fired}×, "
                     f"{a.auto_resolved_share:.0%} resolved by itself, flapped {a.flapping}×, "
                     f"{a.unacknowledged_share:.0%} never acknowledged{link}\n"
                     f"   → {a.suggestion}")
    sections.append(("Noisy alerts", "\n".join(noisy) or "No noisy alerts this week."))
    quiet = [f"- **{q.alertname}**" + (f" on {q.where}" if q.where else "")
             + f": {q.firings}× — {q.why}" for q in d.suppressed[:5]]
    if d.suppressed_firings:
        sections.append(("Kept out of the channel", f"{d.suppressed_firings} firings judged "
                         "noise and never posted (`sre-copilot incidents` lists them):\n"
                         + "\n".join(quiet)))
    capacity = []
    for f in d.forecasts[:5]:
        labels = ", ".join(f"{k}={v}" for k, v in sorted((f.get("labels") or {}).items()))
        days = f.get("days_to_threshold")
        when = (f"crosses {f.get('threshold')} in {days:.1f} days"
                + (f" ({_days(f.get('lower'))}–{_days(f.get('upper'))})")
                if days is not None else "not within the horizon")
        capacity.append(f"- **{f.get('check', 'capacity')}** {labels}: {when}")
    sections.append(("Capacity", "\n".join(capacity) or "No capacity checks ran."))
    fb = d.feedback
    share = f"{fb.confirmed_share:.0%} confirmed" if fb.confirmed_share is not None else \
        "none reviewed yet"
    sections.append(("The copilot's hypotheses", f"{fb.confirmed} confirmed, {fb.rejected} "
                                                 f"rejected, {fb.unreviewed} not reviewed "
                                                 f"({share})."))
    if d.notes:
        sections.append(("Notes", "\n".join(f"- {n}" for n in d.notes)))
    return sections


def _days(x: object) -> str:
    return f"{x:.1f}" if isinstance(x, int | float) else "?"


def digest_markdown(d: Digest) -> str:
    title, head = digest_sections(d)[0]
    parts = [f"# {title}", head]
    parts += [f"## {t}\n{body}" for t, body in digest_sections(d)[1:]]
    return "\n\n".join(parts) + "\n"
