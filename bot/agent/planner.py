"""The offline planner: turns a command or a common question into skill calls without a model —
by patterns first, then (when an embedder is at hand) by similarity to example questions — and
composes the answer from the results. It says plainly what it cannot answer without the model.

It knows the questions on-call engineers ask most: a metric of a service now or over a period,
what is firing, the runbook for something, similar incidents, an incident's timeline, root-cause
hypotheses, the post-mortem draft, who is on call and a PagerDuty incident's details. Follow-ups
("and payments?", "over the last 6h?") reuse what the thread was about (its focus).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from bot.agent.state import ToolCall
from skills.prometheus.golden import GoldenSignals

# Words people use for each golden signal (GoldenSignals' names).
SIGNAL_WORDS: dict[str, tuple[str, ...]] = {
    "errors": ("error rate", "error ratio", "errors", "error", "5xx", "500s", "failures",
               "failing", "failure rate"),
    "latency": ("latency", "p99", "p95", "response time", "slow", "slowness", "duration"),
    "traffic": ("traffic", "rps", "requests per second", "request rate", "throughput",
                "requests", "load", "qps"),
    "cpu": ("cpu", "processor"),
    "memory": ("memory", "mem", "rss", "ram", "heap"),
}

Intent = str  # one of INTENTS' keys
INTENTS: dict[Intent, str] = {
    "metric": "a golden signal of a service now or over a period (\"error rate of checkout over "
              "the last 2h\")",
    "firing": "what is firing now (\"what's firing?\")",
    "runbook": "the runbook for something (\"runbook for disk full\")",
    "similar": "similar past incidents (\"has this happened before?\")",
    "timeline": "an incident's timeline (\"timeline of INC-12\")",
    "hypotheses": "ranked root-cause hypotheses (\"why is checkout failing?\")",
    "postmortem": "a post-mortem draft (\"draft the postmortem for INC-12\")",
    "oncall": "who is on call (\"who's on call?\")",
    "pagerduty": "a PagerDuty incident's details (\"details of PD incident P1ABC23\")",
    "metrics": "which metrics or services Prometheus has (\"which services do you know?\")",
}

# Ordered: the first that matches wins (more specific before more general).
PATTERNS: list[tuple[Intent, re.Pattern[str]]] = [(i, re.compile(p, re.I)) for i, p in [
    ("postmortem", r"\bpost[- ]?mortems?\b|\bretro(spective)?\b|\bwrite[- ]?up\b|"
                   r"\bincident report\b|\bpir\b"),
    ("timeline", r"\btime ?line\b|\bsequence of events\b|\bwhat happened (so far|when)\b"),
    ("oncall", r"\bon[- ]?call\b|\bwho('?s| is) (paged|responding|carrying)\b|\bpager\b"),
    ("pagerduty", r"\bpager ?duty incident\b|\bpd incident\b"),
    ("runbook", r"\brun ?books?\b|\bplaybooks?\b|\bprocedure\b|\bsop\b|"
                r"\bhow (do|should|can) (i|we) (fix|handle|mitigate|resolve|deal with)\b|"
                r"\bwhat (do|should) (i|we) do\b|\bsteps to (fix|mitigate)\b"),
    ("similar", r"\bsimilar\b|\bhappened before\b|\bseen (this|it|that) before\b|"
                r"\bpast incidents?\b|\blast time\b|\bprevious (incidents?|outages?)\b|"
                r"\bbefore\?"),
    ("firing", r"\bfiring\b|\bactive alerts?\b|\bwhat('?s| is) (alerting|broken|on fire|"
               r"going on|happening)\b|\bany alerts?\b|\balerts? (now|right now|firing)\b|"
               r"\bwhat alerts\b|\bcurrent alerts\b"),
    ("hypotheses", r"\bwhy\b|\broot[- ]?cause\b|\bcaused?\b|\binvestigate\b|"
                   r"\bwhat('?s| is) wrong\b|\bdiagnos|\bhypothes|\bwhat broke\b|"
                   r"\bculprit\b|\bexplain\b"),
    ("metrics", r"\bwhich (services|metrics)\b|\blist (services|metrics)\b|"
                r"\bwhat (services|metrics)\b|\bknown services\b"),
]]

# Example questions per intent, for similarity matching when no pattern fires.
EXAMPLES: dict[Intent, tuple[str, ...]] = {
    "metric": ("how many requests is checkout serving", "is payments erroring right now",
               "show me the latency of the api over the last hour", "how busy is search",
               "graph cpu usage of the frontend today"),
    "firing": ("is anything broken right now", "status of production", "are we paging",
               "what is red right now"),
    "runbook": ("what are the steps when the database is out of connections",
                "documentation for the disk pressure alert", "how to recover a stuck queue"),
    "similar": ("did we have this outage earlier", "any precedent for this failure",
                "incidents like this one"),
    "timeline": ("what has happened in this incident", "chronology of the outage"),
    "hypotheses": ("what is behind the checkout errors", "where is the latency coming from",
                   "which deploy broke payments", "what triggered the outage"),
    "postmortem": ("summarise the incident for the review", "prepare the incident review doc"),
    "oncall": ("who should I escalate to", "who is the current responder"),
    "pagerduty": ("show the pagerduty incident", "what does pagerduty say about this"),
    "metrics": ("what can you measure", "which metrics exist"),
}
SIMILARITY_MIN = 0.55  # below this an example question is not the same question

WINDOW = re.compile(
    r"\b(?:last|past|previous|over|in|for|during)\s+(?:the\s+)?(?:(\d+(?:\.\d+)?)\s*|(an?|one)\s+)?"
    r"(s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?|w|wks?|weeks?)\b", re.I)
TODAY = re.compile(r"\btoday\b|\bsince this morning\b", re.I)
INCIDENT_REF = re.compile(r"(?:\bINC-|#)(\d+)\b|\bincident\s+(\d+)\b", re.I)
PD_ID = re.compile(r"\b(P[A-Z0-9]{5,7})\b")
ALERTNAME = re.compile(r"\b([A-Z][a-z0-9]+(?:[A-Z][A-Za-z0-9]*)+)\b")
PROMQL = re.compile(r"`([^`]+)`")
FOLLOW_UP = re.compile(r"^\s*(and|what about|how about|same for|and for|for|now|also|ok,? "
                       r"and)\b|^\s*\S+\s*\?\s*$", re.I)

_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class Embeds(Protocol):
    """The part of `knowledge.embedding.Embedder` the planner uses."""

    def encode(self, texts: list[str]) -> np.ndarray: ...


@dataclass
class Plan:
    """What to run for a turn and why. `calls` may be empty with `reply` set (a question back,
    or what cannot be answered offline)."""

    intent: Intent | None
    calls: list[ToolCall] = field(default_factory=list)
    reply: str | None = None
    focus: dict[str, Any] = field(default_factory=dict)
    matched_by: str = "pattern"  # pattern | command | similarity | follow-up | none


def window_of(text: str) -> str | None:
    """'over the last 2 hours' → '2h'; 'past hour' → '1h'; 'today' → '1d'."""
    m = WINDOW.search(text)
    if m:
        amount = m.group(1) or "1"
        unit = m.group(3).lower()
        key = "m" if unit.startswith("mi") or unit == "m" else unit[0]
        number = float(amount)
        return f"{int(number) if number.is_integer() else number}{key}"
    if TODAY.search(text):
        return "1d"
    return None


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9][a-z0-9_.:-]*", text.lower())


class Planner:
    def __init__(self, *, services: Iterable[str] = (), signals: GoldenSignals | None = None,
                 embedder: Embeds | None = None, available: Iterable[str] | None = None
                 ) -> None:
        self.services = sorted(set(services), key=len, reverse=True)
        self.signals = signals or GoldenSignals()
        self.embedder = embedder
        self.available = set(available) if available is not None else None
        self._examples: tuple[list[Intent], np.ndarray] | None = None

    # ---- understanding ----------------------------------------------------------------------

    def service_in(self, text: str) -> str | None:
        words = set(_words(text))
        lowered = text.lower()
        for name in self.services:  # longest first: "checkout-api" before "checkout"
            if name.lower() in words or re.search(rf"(?<![\w-]){re.escape(name.lower())}"
                                                  rf"(?![\w-])", lowered):
                return name
        m = re.search(r"\b(?:service|svc|for|of|on)\s+([a-z][a-z0-9-]{1,40})\b", lowered)
        if m and not self.services and m.group(1) not in _NOT_SERVICES:
            return m.group(1)
        return None

    @staticmethod
    def signal_in(text: str) -> str | None:
        lowered = text.lower()
        best: tuple[int, str] | None = None
        for signal, words in SIGNAL_WORDS.items():
            for w in words:
                m = re.search(rf"\b{re.escape(w)}\b", lowered)
                if m and (best is None or m.start() < best[0]):
                    best = (m.start(), signal)
        return best[1] if best else None

    def intent_of(self, text: str) -> tuple[Intent | None, str]:
        if PD_ID.search(text):  # PagerDuty ids are upper case: matched case-sensitively
            return "pagerduty", "pattern"
        for intent, pattern in PATTERNS:
            if pattern.search(text):
                return intent, "pattern"
        if self.signal_in(text):
            return "metric", "pattern"
        if self.embedder is not None:
            near = self._nearest_example(text)
            if near:
                return near, "similarity"
        return None, "none"

    def _nearest_example(self, text: str) -> Intent | None:
        assert self.embedder is not None
        if self._examples is None:
            labels = [i for i, qs in EXAMPLES.items() for _ in qs]
            vectors = self.embedder.encode([q for qs in EXAMPLES.values() for q in qs])
            self._examples = (labels, vectors)
        labels, vectors = self._examples
        query = self.embedder.encode([text])[0]
        sims = vectors @ query
        best = int(np.argmax(sims))
        return labels[best] if float(sims[best]) >= SIMILARITY_MIN else None

    # ---- planning ---------------------------------------------------------------------------

    def plan(self, text: str, focus: dict[str, Any] | None = None) -> Plan:
        """The calls that answer `text`; `focus` is what the thread was about."""
        focus = dict(focus or {})
        if text.strip().startswith("/"):
            return self.command(text.strip(), focus)
        intent, how = self.intent_of(text)
        slots = self._slots(text)
        if intent is None and focus.get("intent") and (
                FOLLOW_UP.search(text) or slots.keys() & {"service", "window", "signal"}):
            intent, how = focus["intent"], "follow-up"
        if intent is None:
            return Plan(None, reply=self.cannot(text), matched_by="none")
        merged = {**{k: v for k, v in focus.items() if k != "intent"}, **slots}
        plan = self._for(intent, text, merged)
        plan.matched_by = how
        return plan

    def _slots(self, text: str) -> dict[str, Any]:
        slots: dict[str, Any] = {}
        if (service := self.service_in(text)) is not None:
            slots["service"] = service
        if (signal := self.signal_in(text)) is not None:
            slots["signal"] = signal
        if (window := window_of(text)) is not None:
            slots["window"] = window
        if (m := INCIDENT_REF.search(text)) is not None:
            slots["incident"] = int(m.group(1) or m.group(2))
        if (pd := PD_ID.search(text)) is not None:
            slots["pagerduty_id"] = pd.group(1)
        return slots

    def _for(self, intent: Intent, text: str, s: dict[str, Any]) -> Plan:
        focus = {"intent": intent, **s}
        service = s.get("service")
        if intent == "metric":
            return self._metric(text, s, focus)
        if intent == "firing":
            args = {"service": service} if service and _mentions(text, service) else {}
            return Plan(intent, [ToolCall(name="firing_alerts", args=args)], focus=focus)
        if intent == "runbook":
            query = _strip(text, r"\b(the\s+)?(run ?books?|playbooks?|procedure|sop)\b"
                                 r"(\s+(for|on|about))?")
            m = ALERTNAME.search(text)
            search: dict[str, Any] = {"query": query or text}
            if m:
                search["alertname"] = m.group(1)
            if service:
                search["service"] = service
            return Plan(intent, [ToolCall(name="runbook_search", args=search)], focus=focus)
        if intent == "similar":
            query = _strip(text, r"\b(any|find|show( me)?|list)?\s*(similar|past|previous)\s+"
                                 r"(incidents?|outages?)\s*(to|like)?|\bhas this happened "
                                 r"before\??|\bhave we seen (this|it) before\??")
            if len(_words(query)) < 2 and s.get("title"):
                query = str(s["title"])
            return Plan(intent, [ToolCall(name="similar_incidents",
                                          args={"text": query or text})], focus=focus)
        if intent in ("timeline", "postmortem"):
            name = "incident_timeline" if intent == "timeline" else "postmortem"
            args = {"incident": s["incident"]} if s.get("incident") else {}
            return Plan(intent, [ToolCall(name=name, args=args)], focus=focus)
        if intent == "hypotheses":
            if not service:
                return Plan(intent, reply=self._which_service("investigate"), focus=focus)
            args = {"service": service, "window": s.get("window") or "2h", "symptom": text}
            return Plan(intent, [ToolCall(name="hypotheses", args=args)], focus=focus)
        if intent == "oncall":
            return Plan(intent, [ToolCall(name="pagerduty_oncall", args={})], focus=focus)
        if intent == "pagerduty":
            pd = s.get("pagerduty_id")
            return Plan(intent, [ToolCall(name="pagerduty_incident",
                                          args={"incident_id": pd} if pd else {})], focus=focus)
        if intent == "metrics":
            what = "metric names" if re.search(r"metrics?", text, re.I) else "service"
            args = {} if what == "metric names" else {"label": "service"}
            return Plan(intent, [ToolCall(name="prometheus_series", args=args)], focus=focus)
        return Plan(None, reply=self.cannot(text), matched_by="none")

    def _metric(self, text: str, s: dict[str, Any], focus: dict[str, Any]) -> Plan:
        query = PROMQL.search(text)
        window = s.get("window")
        if query:  # a PromQL expression in backticks: run it as written
            expr = query.group(1)
        else:
            signal = s.get("signal") or "errors"
            focus["signal"] = signal
            service = s.get("service")
            if not service:
                return Plan("metric", reply=self._which_service(f"show its {signal}"),
                            focus=focus)
            template = self.signals.signals.get(signal)
            if template is None:
                return Plan("metric", reply=f"I have no query for {signal}.", focus=focus)
            expr = self.signals.for_services(template, [service])
        ranged = window is not None or re.search(r"\b(trend|graph|chart|plot|since|over time|"
                                                 r"history)\b", text, re.I)
        if ranged:
            return Plan("metric", [ToolCall(name="prometheus_range",
                                            args={"query": expr, "last": window or "1h"})],
                        focus=focus)
        return Plan("metric", [ToolCall(name="prometheus_query", args={"query": expr})],
                    focus=focus)

    def _which_service(self, what: str) -> str:
        known = ", ".join(sorted(self.services)[:15])
        return (f"Which service should I {what} for? "
                + (f"I know these: {known}." if known else "Name it, e.g. `checkout`."))

    # ---- commands ---------------------------------------------------------------------------

    def command(self, text: str, focus: dict[str, Any]) -> Plan:
        """Slash commands: `/firing [service]`, `/query PROMQL`, `/range PROMQL [2h]`,
        `/runbook TEXT`, `/similar TEXT`, `/timeline [INC-N]`, `/postmortem [INC-N]`,
        `/hypotheses SERVICE [2h]`, `/oncall`, `/pd ID`, `/services`, `/help`."""
        name, _, rest = text[1:].partition(" ")
        name, rest = name.lower(), rest.strip()
        focus = dict(focus)
        calls: list[ToolCall]
        if name in ("help", ""):
            return Plan("help", reply=self.help(), matched_by="command")
        if name == "firing":
            calls = [ToolCall(name="firing_alerts", args={"service": rest} if rest else {})]
        elif name == "query" and rest:
            calls = [ToolCall(name="prometheus_query", args={"query": rest})]
        elif name == "range" and rest:
            m = re.search(r"\s+(\d+[smhdw](?:\d+[smhdw])*)$", rest)
            expr, last = (rest[:m.start()], m.group(1)) if m else (rest, "1h")
            calls = [ToolCall(name="prometheus_range", args={"query": expr, "last": last})]
        elif name == "runbook" and rest:
            calls = [ToolCall(name="runbook_search", args={"query": rest})]
        elif name == "similar" and (rest or focus.get("title")):
            calls = [ToolCall(name="similar_incidents",
                              args={"text": rest or str(focus["title"])})]
        elif name in ("timeline", "postmortem"):
            ref = rest or focus.get("incident")
            tool = "incident_timeline" if name == "timeline" else "postmortem"
            calls = [ToolCall(name=tool, args={"incident": ref} if ref else {})]
        elif name in ("hypotheses", "investigate") and (rest or focus.get("service")):
            parts = rest.split()
            service = parts[0] if parts else str(focus["service"])
            window = parts[1] if len(parts) > 1 else "2h"
            calls = [ToolCall(name="hypotheses", args={"service": service, "window": window})]
            focus["service"] = service
        elif name == "oncall":
            calls = [ToolCall(name="pagerduty_oncall", args={})]
        elif name == "pd" and rest:
            calls = [ToolCall(name="pagerduty_incident", args={"incident_id": rest})]
        elif name == "services":
            calls = [ToolCall(name="prometheus_series", args={"label": "service"})]
        else:
            return Plan(None, reply=f"`/{name}` needs more, or is not a command I know.\n"
                        + self.help(), matched_by="command")
        return Plan(name, calls, focus={**focus, "intent": _COMMAND_INTENT.get(name, name)},
                    matched_by="command")

    def help(self) -> str:
        return ("Commands: `/firing [service]` · `/query PROMQL` · `/range PROMQL [2h]` · "
                "`/runbook TEXT` · `/similar TEXT` · `/timeline [INC-N]` · "
                "`/postmortem [INC-N]` · `/hypotheses SERVICE [2h]` · `/oncall` · `/pd ID` · "
                "`/services`. Or ask in words, e.g. “error rate of checkout over the last "
                "hour”, “what's firing?”, “why is payments slow?”.")

    def cannot(self, text: str) -> str:
        return ("I can't answer that without the language model (set ANTHROPIC_API_KEY to "
                "enable it). Without it I can answer: "
                + "; ".join(INTENTS.values()) + ". " + self.help())


_COMMAND_INTENT = {"query": "metric", "range": "metric", "pd": "pagerduty",
                   "services": "metrics", "investigate": "hypotheses"}
_NOT_SERVICES = frozenset({"the", "a", "an", "this", "that", "it", "me", "us", "now", "today",
                           "last", "past", "all", "every", "each"})


def _mentions(text: str, word: str) -> bool:
    return word.lower() in text.lower()


def _strip(text: str, pattern: str) -> str:
    cleaned = re.sub(pattern, " ", text, flags=re.I)
    cleaned = re.sub(r"^\s*(what('?s| is)|show( me)?|find|get|give me|where('?s| is))\s+", "",
                     cleaned, flags=re.I)
    return re.sub(r"\s+", " ", cleaned).strip(" ?.!,:")
