"""What a person reads first in an answer that carries hypotheses, the same on every platform:
a verdict of three short lines — the likely cause in plain words (what, where, since when), how
sure, and the next step with its runbook — then the other findings, the hypotheses worth a look
with one readable line per piece of evidence, and the rest folded into one line.

Nothing here formats for a platform: it returns plain text and Markdown links, cut before any
platform markup is added. Setup problems (a skill with no client configured) are left out: they
are logged for the operator (`bot.agent.calls`), never shown in an incident channel."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from bot.agent.state import Answer
from bot.conversation.vocabulary import clip
from skills.prometheus.links import split_query
from skills.types import Claim, Evidence

# A hypothesis below this confidence gets no buttons and folds into one line. Set by judgement,
# not fitted: on the evaluation cases (tests/bench/rca_eval.py) a right top hypothesis is above
# it in nearly every case, and the evidence engine's runners-up rarely are.
WORTH_A_LOOK = 0.20
LINE_MAX = 240  # characters of an evidence line, cut before any markup
_ROBUST_Z = re.compile(r"\s*\(robust z [^)]*\)")
_Z_IN_LIST = re.compile(r"robust z [\d.]+;\s*")
# Evidence summaries write clock times in UTC without saying so.
_BARE_TIME = re.compile(r"(?<![\d:])(\d{2}:\d{2}(?::\d{2})?)(?![\d:])(?!\s*UTC)")


@dataclass(frozen=True)
class Step:
    """A next step in plain text, and the link that goes with it (a query in Prometheus)."""

    text: str
    link: str | None = None
    link_label: str = ""


@dataclass(frozen=True)
class Verdict:
    cause: str  # the likely cause, plain text
    sure: str  # how sure, plain text
    step: Step  # the next step
    runbook: str | None  # the runbook's name
    runbook_url: str | None  # and where to open it

    @property
    def headline(self) -> str:
        """The message's notification text."""
        return f"Likely cause: {self.cause} ({self.sure})"

    def lines(self, *, bold: Callable[[str], str], text: Callable[[str], str],
              link: Callable[[str, str], str]) -> list[str]:
        """The three lines, in a platform's bold, escaping (`text`) and links."""
        runbook = (f" · 📘 {link(self.runbook_url, text(self.runbook or 'runbook'))}"
                   if self.runbook_url else
                   f" · 📘 runbook: {text(self.runbook)}" if self.runbook else "")
        return [f"🎯 {bold('Likely cause:')} {text(self.cause)}",
                f"📊 {bold('How sure:')} {text(self.sure)}",
                f"👉 {bold('Next step:')} {step_text(self.step, text=text, link=link)}{runbook}"]


def step_text(step: Step, *, text: Callable[[str], str], link: Callable[[str, str], str]) -> str:
    return text(step.text) + (f" · {link(step.link, text(step.link_label))}" if step.link
                              else "")


@dataclass(frozen=True)
class Briefing:
    verdict: Verdict | None
    context: str  # Markdown: what the answer found besides its hypotheses
    shown: list[tuple[int, Claim]]  # numbered from 1: the hypotheses worth a look
    folded: list[tuple[int, Claim]]  # the rest, for one line


def utc_labelled(text: str) -> str:
    return _BARE_TIME.sub(r"\1 UTC", text)


def readable(ev: Evidence) -> str:
    """One line a person reads at 3 a.m.: the finding and its numbers, times labelled, cut at
    LINE_MAX — no ids, no query (it is behind the evidence's link), no robust scores."""
    text = _Z_IN_LIST.sub("", _ROBUST_Z.sub("", ev.summary))
    return clip(utc_labelled(text.replace("( ", "(").replace("()", "").strip()), LINE_MAX)


def link_of(ev: Evidence) -> str | None:
    return ev.link if ev.link and ev.link.startswith(("https://", "http://")) else None


_LINK_TAIL = re.compile(r"\s*—\s*\[(?P<label>[^\]]+)\]\((?P<url>https?://[^)\s]+)\)\s*$")


def next_step(claim: Claim, limit: int = 300) -> Step:
    """The claim's next check, cut at `limit`: a query at its end is dropped from the text —
    it is the link when the skill knew where Prometheus is."""
    text = claim.next_check or ""
    linked = _LINK_TAIL.search(text)
    if linked is not None:
        return Step(clip(text[:linked.start()], limit), linked["url"], linked["label"])
    head, _query = split_query(text)
    return Step(clip(utc_labelled(head), limit))


def label(claim: Claim) -> str:
    """A hypothesis in a few words: "checkout deploy", else its statement's first clause."""
    cause = claim.cause or {}
    if cause.get("service") and cause.get("kind") and cause["kind"] != "unknown":
        return f"{cause['service']} {cause['kind']}"
    return clip(re.split(r"[;.]\s", claim.statement, maxsplit=1)[0], 80)


def brief(answer: Answer) -> Briefing:
    ranked = list(enumerate(answer.claims, start=1))
    shown = [(n, c) for n, c in ranked if c.confidence is None or c.confidence >= WORTH_A_LOOK]
    shown = shown or ranked[:1]
    folded = [(n, c) for n, c in ranked if (n, c) not in shown]
    return Briefing(verdict=_verdict(answer), context=_context(answer), shown=shown,
                    folded=folded)


def folded_line(folded: list[tuple[int, Claim]]) -> str:
    """"2 more below 20 %: frontend latency 1 %, payments errors 0 %"."""
    if not folded:
        return ""
    shown = ", ".join(f"{label(c)} {c.confidence:.0%}" if c.confidence is not None
                      else label(c) for _n, c in folded[:4])
    more = f" and {len(folded) - 4} more" if len(folded) > 4 else ""
    return f"{len(folded)} more below {WORTH_A_LOOK:.0%}: {shown}{more}"


def _verdict(answer: Answer) -> Verdict | None:
    if not answer.claims:
        return None
    top, by_id = answer.claims[0], {e.id: e for e in answer.evidence}
    sure = f"{top.confidence:.0%}" if top.confidence is not None else "not rated"
    if len(answer.claims) > 1:
        second = answer.claims[1]
        sure += f" — next most likely: {label(second)}" + (
            f" ({second.confidence:.0%})" if second.confidence is not None else "")
    runbook, url = _runbook(answer)
    step = next_step(top)
    return Verdict(cause=_cause(top, by_id), sure=sure,
                   step=step if step.text else Step("check the evidence below"),
                   runbook=runbook, runbook_url=url)


def _cause(claim: Claim, by_id: dict[str, Evidence]) -> str:
    """What, where and since when: the change the claim rests on when there is one
    ("checkout deploy: version v2.13.2 → v2.14.0 at 18:56 UTC"), else the claim's first
    clause."""
    cause = claim.cause or {}
    cited = [by_id[i] for i in claim.evidence_ids if i in by_id]
    if cause.get("kind") in ("deploy", "config"):
        change = next((e for e in cited if e.source == "changes"
                       or f"{cause['kind']}:" in e.summary), None)
        if change is not None:
            return readable(change)
    clause = re.split(r";\s", claim.statement, maxsplit=1)[0].rstrip(".")
    kind = str(cause.get("kind") or "")
    if kind and kind != "unknown" and kind not in clause.lower():
        clause += f" ({kind})"  # what kind of cause, when the words do not say it
    return clip(utc_labelled(clause), 200)


def _runbook(answer: Answer) -> tuple[str | None, str | None]:
    """The alert's own `runbook_url` first (its author chose it), else the runbook search's
    best hit: its name, and its link when it has one."""
    for ev in answer.evidence:
        if ev.source == "alert" and link_of(ev):
            return ev.labels.get("alertname", "the alert's runbook"), link_of(ev)
    for ev in answer.evidence:
        if ev.source == "runbooks":
            where = ev.labels.get("path", "")
            section = ev.labels.get("section")
            name = ev.summary.removeprefix("Runbook: ").split(" — ")[0]
            return (f"{name} § {section}" if section else name or where), link_of(ev)
    return None, None


def _context(answer: Answer) -> str:
    """What else the answer found: the model's words, or the evidence engine's other tools'
    findings (similar incidents, a runbook, PagerDuty) — not the investigation's verdict, which
    the verdict block says, and not a skill that is not set up here."""
    if answer.brain == "claude" or not answer.claims:
        return answer.text
    cited = {i for c in answer.claims for i in c.evidence_ids}
    return "\n\n".join(t.summary for t in answer.tools
                       if t.summary and not t.unavailable and not set(t.evidence_ids) & cited)
