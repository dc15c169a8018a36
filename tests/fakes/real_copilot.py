"""The copilot as it runs beside real exporters, for the real-fault tests and benchmark: a real
stack (tests/fakes/real_stack.py) whose Alertmanager notifies a real `sre-copilot serve`, which
posts into a local Slack Web API; and how to read the briefings it posts there."""

from __future__ import annotations

import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.conftest import ALERT_RULES, need, need_shared
from tests.fakes.alertmanager_server import copilot_server, free_port
from tests.fakes.real_stack import RealStack
from tests.fakes.slack_api import FakeSlack, Message, running_slack

WARM_UP = 10.0  # seconds of scrapes before the first fault: a baseline to compare with
BRIEFING_TIMEOUT = 60.0  # alert fires ≤ 8 s after the fault; the investigation takes seconds


@dataclass
class Copilot:
    stack: RealStack
    slack: FakeSlack
    log: Path

    def briefings(self) -> list[tuple[str, Message, str]]:
        """Every investigation posted in an incident channel's thread: (channel name, the
        message, its text with the blocks' text flattened)."""
        out = []
        for channel in list(self.slack.channels.values()):
            if not channel.name.startswith("inc-"):
                continue
            for m in list(self.slack.messages.get(channel.id, [])):
                if m.thread_ts and (m.text or "").startswith(("Likely cause: ",
                                                               "Investigation of ")):
                    out.append((channel.name, m, flatten(m)))
        return out

    def cards(self) -> list[tuple[str, Message]]:
        return [(c.name, m) for c in list(self.slack.channels.values())
                if c.name.startswith("inc-")
                for m in list(self.slack.messages.get(c.id, []))
                if not m.thread_ts and m.blocks]

    def wait_briefing(self, what: str, check: Callable[[str], bool]) -> tuple[str, str]:
        deadline = time.monotonic() + BRIEFING_TIMEOUT
        while time.monotonic() < deadline:
            for name, _, text in self.briefings():
                if check(text):
                    return name, text
            time.sleep(0.25)
        seen = "\n---\n".join(t[:600] for _, _, t in self.briefings())
        raise AssertionError(f"no briefing {what} within {BRIEFING_TIMEOUT:.0f} s; briefings "
                             f"so far:\n{seen}\n--- copilot log tail:\n"
                             f"{self.log.read_text()[-3000:]}")


def flatten(message: Message) -> str:
    """A message as a reader sees it: its text and every text inside its blocks."""
    parts = [message.text or ""]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "text" and isinstance(value, str):
                    parts.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(message.blocks or [])
    return "\n".join(parts)


def _executable() -> str:
    beside = Path(sys.executable).with_name("sre-copilot")
    found = str(beside) if beside.is_file() else shutil.which("sre-copilot")
    need(found is not None, "the sre-copilot console script is not installed")
    assert found is not None
    return found


@contextmanager
def running_copilot(work: Path, *, warm_up: float = WARM_UP) -> Iterator[Copilot]:
    """A real stack notifying a real `serve` (SQLite, Slack creating incident channels),
    warmed up; everything stopped afterwards. Its rules are kube-prometheus's own, read from
    ../shared: without them (a user's clone) the caller is skipped."""
    need_shared(ALERT_RULES)
    token = secrets.token_urlsafe(16)
    port = free_port()
    stack = RealStack(work / "stack", webhook_url=f"http://127.0.0.1:{port}/webhooks/"
                      "alertmanager", webhook_token=token)
    with running_slack() as slack, copilot_server(
            _executable(), work / "copilot", database_url=f"sqlite:///{work / 'copilot.db'}",
            token=token, port=port, ready_timeout=90, extra_env={
                **slack.copilot_env(), "PROMETHEUS_URL": stack.prometheus_url,
                "SRE_COPILOT_WORKER_POLL_SECONDS": "0.2",
                # The stack's rules and Alertmanager run on an accelerated clock (1 s group
                # interval): the hold is scaled alike.
                "SRE_COPILOT_NOISE_HOLD_SECONDS": "2",
                "SRE_COPILOT_ALERTMANAGER_GROUP_INTERVAL_SECONDS": "1"}), stack:
        time.sleep(warm_up)  # the exporters run a while before anything breaks, as in life
        yield Copilot(stack, slack, work / "copilot" / "copilot.log")
