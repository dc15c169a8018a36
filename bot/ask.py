"""`sre-copilot ask "QUESTION"` and `sre-copilot chat`: the agent graph from a terminal — the
same graph the chat adapters call, so anyone can try it without Slack. Both keep the thread's
memory (`--thread`, default `cli`), so a follow-up keeps its context across invocations."""

from __future__ import annotations

import json
import sys
from typing import TextIO

from rich.console import Console

from bot.agent.calls import ProgressEvent
from bot.agent.runtime import Agent, open_agent
from bot.render.answer import as_json, render
from bot.settings import Settings

EXIT_WORDS = frozenset({"exit", "quit", ":q", "bye"})


def _progress(console: Console):  # type: ignore[no-untyped-def]
    def show(event: ProgressEvent) -> None:
        if event.kind == "start":
            console.print(f"[dim]… {event.tool} {_args(event.args)}[/]")
        else:
            mark = "✓" if event.ok else "✗"
            console.print(f"[dim]{mark} {event.tool} ({event.elapsed_ms or 0:.0f} ms)[/]")
    return show


def _args(args: dict[str, object]) -> str:
    text = json.dumps(args, default=str)
    return text if len(text) <= 100 else text[:97] + "…"


async def ask(settings: Settings, question: str, *, thread: str, json_out: bool) -> int:
    err = Console(stderr=True)
    if not question.strip():
        err.print("sre-copilot ask: the question is empty")
        return 2
    async with open_agent(settings) as agent:
        answer = await agent.turn(thread, question,
                                  progress=None if json_out else _progress(err))
    if json_out:
        print(json.dumps(as_json(answer, thread), default=str))
    else:
        render(answer, Console())
    return 0


async def chat(settings: Settings, *, thread: str, stdin: TextIO | None = None) -> int:
    stdin = stdin or sys.stdin
    console = Console()
    interactive = stdin.isatty()
    async with open_agent(settings) as agent:
        console.print(f"[bold]SRE Copilot[/] — {agent.brain}; thread [cyan]{thread}[/]. "
                      "Ask a question, `/help` for commands, `exit` to leave.")
        while True:
            line = _read(stdin, console, interactive)
            if line is None or line.strip().lower() in EXIT_WORDS:
                break
            if not line.strip():
                continue
            await _one(agent, thread, line.strip(), console)
    return 0


def _read(stdin: TextIO, console: Console, interactive: bool) -> str | None:
    if interactive:
        try:
            return console.input("[bold green]you>[/] ")
        except EOFError:
            return None
    line = stdin.readline()
    return line if line else None


async def _one(agent: Agent, thread: str, text: str, console: Console) -> None:
    answer = await agent.turn(thread, text, progress=_progress(console))
    render(answer, console)
