"""Claude as the reasoning engine: a tool-use loop over the skill registry through the anthropic
SDK, with prompt caching on the system prompt and tool definitions, parallel tool calls, and
caps on rounds, tokens and wall time — the last round forces the `submit_answer` tool, so there
is always an answer.

Retries on 429/529/5xx/timeouts are the SDK's own (exponential backoff honouring
`retry-after`); when they are spent, `ClaudeUnavailable` tells the graph to fall back to the
evidence engine and say so. Everything sent is redacted: the question, the thread's earlier
turns and every tool result (which is also fenced as untrusted). Given `metrics`, each call's
time and tokens are measured and each failure counted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bot.agent.safety import UNTRUSTED_RULE, fence, redact, redact_json
from bot.agent.state import ToolCall, Turn
from bot.metrics import TOKEN_KINDS, Metrics
from skills.types import Claim

if TYPE_CHECKING:
    # Imported where used: the SDK's types take over a second to import, which every offline
    # `ask` would pay for nothing.
    import anthropic

DEFAULT_MODEL = "claude-sonnet-5-5"
SUBMIT = "submit_answer"

SYSTEM_PROMPT = f"""You are SRE Copilot, the teammate in an incident channel. On-call engineers \
ask you about production: metrics, alerts, incidents, runbooks, who is on call, and what caused \
an outage. Answer with facts the tools return; never invent a number, a time, a name or a cause.

How to work:
- Call tools to get facts; call several at once when they are independent.
- Every tool result lists evidence as [ev-N] lines: cite those ids for every claim you make.
- When you have enough, call `{SUBMIT}` with a short answer for someone woken at 3 a.m. \
(lead with what matters, then the numbers) and, if the question is about a cause, your ranked \
hypotheses, each with the evidence ids it rests on. A hypothesis without evidence ids is \
discarded.
- If the tools cannot answer, say what is missing (e.g. a metric that does not exist) instead \
of guessing.
- You can only read: no tool changes anything, and you cannot page, restart or roll back.

{UNTRUSTED_RULE}"""

SUBMIT_TOOL: dict[str, Any] = {
    "name": SUBMIT,
    "description": "Give the final answer to the user, with hypotheses that cite evidence ids.",
    "input_schema": {
        "type": "object",
        "properties": {
            "answer": {"type": "string", "description": "The answer, in Markdown."},
            "hypotheses": {
                "type": "array",
                "items": {"type": "object", "properties": {
                    "statement": {"type": "string"},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "evidence_ids": {"type": "array", "items": {"type": "string"}},
                    "next_check": {"type": "string"}},
                    "required": ["statement", "evidence_ids"]},
            },
        },
        "required": ["answer"],
    },
}


class ClaudeUnavailable(Exception):
    """The model could not be reached or refused the request after the SDK's retries; `reason`
    is what the user is told."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Limits:
    max_rounds: int = 6  # model calls per turn; the last one must answer
    max_tokens: int = 2048  # per response
    token_budget: int = 150_000  # input + output over the turn; past it, the next round answers
    wall_seconds: float = 90.0  # past it (less a margin for the answer), the next round answers


@dataclass
class BrainAnswer:
    text: str
    claims: list[Claim]
    rounds: int
    usage: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


Execute = Callable[[list[ToolCall]], Awaitable[list[str]]]


class ClaudeBrain:
    """One per process: holds the SDK client (its connection pool) and the settings."""

    def __init__(self, client: anthropic.AsyncAnthropic, *, model: str = DEFAULT_MODEL,
                 limits: Limits | None = None, call_timeout: float = 60.0,
                 metrics: Metrics | None = None) -> None:
        self.client = client
        self.model = model
        self.limits = limits or Limits()
        self.call_timeout = call_timeout
        self.metrics = metrics

    @classmethod
    def from_settings(cls, *, api_key: str, base_url: str | None, model: str,
                      max_retries: int, timeout: float, limits: Limits | None = None,
                      metrics: Metrics | None = None) -> ClaudeBrain:
        import anthropic

        client = anthropic.AsyncAnthropic(api_key=api_key, base_url=base_url,
                                          max_retries=max_retries, timeout=timeout)
        return cls(client, model=model, limits=limits, call_timeout=timeout, metrics=metrics)

    async def aclose(self) -> None:
        await self.client.close()

    async def answer(self, *, question: str, history: Sequence[Turn], context: str | None,
                     tools: list[dict[str, Any]], execute: Execute) -> BrainAnswer:
        """Run the tool loop for one turn. `question` is the user's text (untrusted), `context`
        what the graph already gathered (already fenced), `execute` runs tool calls and returns
        each result's text for the model."""
        limits = self.limits
        started = time.monotonic()
        tool_defs = [*tools, SUBMIT_TOOL]
        tool_defs[-1] = {**tool_defs[-1], "cache_control": {"type": "ephemeral"}}
        system = [{"type": "text", "text": SYSTEM_PROMPT,
                   "cache_control": {"type": "ephemeral"}}]
        messages = _history_messages(history)
        user = fence("chat message from the user", question)
        if context:
            user = context + "\n\n" + user
        messages.append({"role": "user", "content": user})
        usage: dict[str, int] = {}
        notes: list[str] = []
        for round_no in range(1, limits.max_rounds + 1):
            spent = sum(usage.values())  # cached input counts: the model still reads it
            elapsed = time.monotonic() - started
            last = (round_no == limits.max_rounds or spent >= limits.token_budget
                    or elapsed >= limits.wall_seconds * 0.75)
            if last and round_no < limits.max_rounds:
                notes.append("The answer was cut short by the "
                             + ("token budget." if spent >= limits.token_budget
                                else "time limit."))
            response = await self._create(
                system=system, tools=tool_defs, messages=messages,
                tool_choice={"type": "tool", "name": SUBMIT} if last else {"type": "auto"},
                # One call may take what is left of the turn, but never more than the setting.
                seconds=min(self.call_timeout, max(1.0, limits.wall_seconds - elapsed)))
            _add_usage(usage, response.usage)
            blocks = [b.model_dump(exclude_none=True) for b in response.content]
            submit = next((b for b in response.content
                           if b.type == "tool_use" and b.name == SUBMIT), None)
            if submit is not None:
                return _submitted(submit.input, round_no, usage, notes)
            calls = [b for b in response.content if b.type == "tool_use"]
            if not calls:
                text = "\n".join(b.text for b in response.content if b.type == "text").strip()
                return BrainAnswer(text=text or "(no answer)", claims=[], rounds=round_no,
                                   usage=usage, notes=notes)
            messages.append({"role": "assistant", "content": blocks})
            outputs = await execute([ToolCall(name=c.name, args=dict(c.input))
                                     for c in calls])
            messages.append({"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": c.id, "content": out}
                for c, out in zip(calls, outputs, strict=True)]})
        raise AssertionError("unreachable: the last round forces an answer")

    async def _create(self, *, system: list[dict[str, Any]], tools: list[dict[str, Any]],
                      messages: list[dict[str, Any]], tool_choice: dict[str, Any],
                      seconds: float) -> Any:
        import anthropic

        # Belt and braces: everything leaving the process is redacted once more here.
        safe_messages = redact_json(messages)
        started = time.perf_counter()
        try:
            response = await self.client.messages.create(  # type: ignore[call-overload]
                model=self.model, max_tokens=self.limits.max_tokens, system=system,
                tools=tools, messages=safe_messages, tool_choice=tool_choice, timeout=seconds)
        except (anthropic.APIStatusError, anthropic.APIConnectionError) as exc:
            self._measure(started, usage=None)
            raise _unavailable(exc) from exc
        self._measure(started, usage=response.usage)
        return response

    def _measure(self, started: float, *, usage: Any) -> None:
        """One call's time, and its tokens by kind (`usage` None: it failed)."""
        if self.metrics is None:
            return
        self.metrics.model_latency.observe(time.perf_counter() - started)
        if usage is None:
            self.metrics.upstream_failed("anthropic")
            return
        for field_name, kind in TOKEN_KINDS.items():
            value = getattr(usage, field_name, None)
            if isinstance(value, int) and value > 0:
                self.metrics.model_tokens.labels(kind).inc(value)


def _unavailable(exc: anthropic.APIStatusError | anthropic.APIConnectionError
                 ) -> ClaudeUnavailable:
    """What the user is told when the model failed (after the SDK's retries)."""
    import anthropic

    if isinstance(exc, anthropic.APIStatusError):
        return ClaudeUnavailable(f"HTTP {exc.status_code} {_error_type(exc)}".strip())
    if isinstance(exc, anthropic.APITimeoutError):  # a kind of APIConnectionError
        return ClaudeUnavailable("timed out")
    return ClaudeUnavailable(f"connection failed ({exc})")


def _error_type(exc: anthropic.APIStatusError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error") if isinstance(body.get("error"), dict) else body
    return str(error.get("type", "")) if isinstance(error, dict) else ""


def _history_messages(history: Sequence[Turn]) -> list[dict[str, Any]]:
    """Earlier turns as alternating user/assistant messages (the API requires the first to be
    the user's and roles to alternate); user turns are untrusted and fenced."""
    messages: list[dict[str, Any]] = []
    for turn in history:
        text = (fence("earlier chat message from the user", turn["text"])
                if turn["role"] == "user" else redact(turn["text"]))
        if messages and messages[-1]["role"] == turn["role"]:
            messages[-1]["content"] += "\n\n" + text
        elif messages or turn["role"] == "user":
            messages.append({"role": turn["role"], "content": text})
    if messages and messages[-1]["role"] == "user":  # a turn that got no answer
        messages.append({"role": "assistant", "content": "(no answer was given)"})
    return messages


def _add_usage(total: dict[str, int], usage: Any) -> None:
    for key in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                "cache_read_input_tokens"):
        value = getattr(usage, key, None)
        if isinstance(value, int):
            total[key] = total.get(key, 0) + value


def _submitted(raw: Any, rounds: int, usage: dict[str, int], notes: list[str]) -> BrainAnswer:
    data = raw if isinstance(raw, dict) else {}
    claims = []
    for h in data.get("hypotheses") or []:
        if not isinstance(h, dict) or not str(h.get("statement", "")).strip():
            continue
        confidence = h.get("confidence")
        ids = [str(i) for i in h.get("evidence_ids") or [] if isinstance(i, str | int)]
        claims.append(Claim(
            statement=str(h["statement"]).strip(), evidence_ids=ids,
            confidence=min(1.0, max(0.0, float(confidence)))
            if isinstance(confidence, int | float) else None,
            next_check=str(h["next_check"]) if h.get("next_check") else None))
    text = str(data.get("answer") or "").strip() or json.dumps(data)[:2000]
    return BrainAnswer(text=text, claims=claims, rounds=rounds, usage=usage, notes=notes)
