"""Commands as data: a `Spec` per command (its word, argument rule, incident rule, permission and
what runs it) and the `CommandTable` that finds the command a text is and writes the help. The
copilot's commands are in `bot.conversation.standard`; a platform may add its own (Teams'
`digest here`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from enum import Enum
from typing import Any

from bot.conversation.events import Command

# What runs a command: given the chat (`bot.conversation.chat.Chat`), the command and its
# incident (None for commands that need none).
Run = Callable[[Any, Command, Any], Awaitable[None]]


class Takes(Enum):
    NOTHING = "nothing"
    ARGUMENT = "argument"  # required
    MAYBE = "maybe"  # an optional argument


@dataclass(frozen=True)
class Spec:
    """A command: its word, its argument (named for the help), whether it needs an incident
    (the place's, else the newest open one), whether only responders may run it, and what
    runs it."""

    word: str
    run: Run
    takes: Takes = Takes.NOTHING
    argument: str = ""
    incident: bool = False
    acts: bool = False
    about: str = ""  # a line for the command lists platforms show (Teams' manifest)

    def accepts(self, rest: str) -> bool:
        return {Takes.NOTHING: not rest, Takes.ARGUMENT: bool(rest),
                Takes.MAYBE: True}[self.takes]

    def usage(self, form: str) -> str:
        shown = form.format(self.word)
        return f"{shown} {self.argument}" if self.argument else shown


class CommandTable:
    def __init__(self, specs: Iterable[Spec]) -> None:
        self.specs = {s.word: s for s in specs}

    def find(self, text: str) -> tuple[Spec, str] | None:
        """The command `text` is ("status", "runbook KubePodCrashLooping", "Ack."), with the
        rest; None if it is not one (then it is a question)."""
        word, _, rest = text.strip().partition(" ")
        spec = self.specs.get(word.lower().rstrip(".!?"))
        rest = rest.strip()
        return (spec, rest) if spec is not None and spec.accepts(rest) else None

    def help(self, form: str) -> str:
        return " · ".join(s.usage(form) for s in self.specs.values())
