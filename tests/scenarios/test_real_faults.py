"""Real faults, end to end, as an on-call engineer meets them: real exporters (node_exporter,
redis_exporter, the blackbox exporter) scraped by a real Prometheus with kube-prometheus's own
rules (`for:` shortened), a real Alertmanager notifying a real `sre-copilot serve`, which opens
the incident, creates its Slack channel and posts the investigation in the card's thread.

For each fault — a filesystem filling, the redis exporter killed (TargetDown over the `redis`
job), a probed endpoint answering 500, redis-server killed — the briefing must name the failing
resource (the mountpoint on its instance, the exporter's address, the URL, redis behind its
exporter), with the alert expression's breakdown as evidence (query and numbers) and the
alert's own runbook. CPU saturation (`stress-ng`) runs in the benchmark, not here.
"""

from __future__ import annotations

import json
import secrets
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import need
from tests.fakes.alertmanager_server import copilot_server, free_port
from tests.fakes.real_stack import RealStack
from tests.fakes.slack_api import FakeSlack, Message, running_slack

pytestmark = pytest.mark.slow

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
                if m.thread_ts and (m.text or "").startswith("Investigation of "):
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


@pytest.fixture(scope="module")
def copilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copilot]:
    work = tmp_path_factory.mktemp("real-faults")
    token = secrets.token_urlsafe(16)
    port = free_port()
    stack = RealStack(work / "stack", webhook_url=f"http://127.0.0.1:{port}/webhooks/"
                      "alertmanager", webhook_token=token)
    with running_slack() as slack, copilot_server(
            _executable(), work / "copilot", database_url=f"sqlite:///{work / 'copilot.db'}",
            token=token, port=port, ready_timeout=90, extra_env={
                "PROMETHEUS_URL": stack.prometheus_url, "SLACK_BOT_TOKEN": "xoxb-test",
                "SLACK_SIGNING_SECRET": "secret", "SLACK_API_URL": slack.base_url + "/api/",
                "SRE_COPILOT_SLACK_CREATE_CHANNELS": "true",
                "SRE_COPILOT_WORKER_POLL_SECONDS": "0.2"}), stack:
        time.sleep(WARM_UP)  # the exporters run a while before anything breaks, as in life
        yield Copilot(stack, slack, work / "copilot" / "copilot.log")


def evidence_of(text: str) -> bool:
    """The briefing shows the alert expression's breakdown with its query and numbers."""
    return "what the rule watches" in text and "→" in text


def test_a_filling_filesystem_is_named_with_its_mountpoint_and_host(copilot: Copilot) -> None:
    stack = copilot.stack
    mount = str(stack.mountpoint)
    stack.fill_filesystem(97)
    try:
        _, text = copilot.wait_briefing(
            f"naming {mount}", lambda t: "NodeFilesystem" in t and mount in t)
        top = text.split("\n", 2)[:2]
        assert mount in top[0] and stack.node_exporter_address in text, top
        assert "disk" in text and evidence_of(text)
        assert "node_filesystem_avail_bytes" in text  # the query, as evidence
        assert "runbooks.prometheus-operator.dev/runbooks/node/nodefilesystem" in text
        assert "no signal of node-exporter left its baseline" not in text
        assert any(mount.replace("/", "-").strip("-") in n or "filesystem" in n
                   for n, _ in copilot.cards()), [n for n, _ in copilot.cards()]
    finally:
        stack.free_filesystem()


def test_a_target_down_names_the_instance_that_stopped_answering(copilot: Copilot) -> None:
    stack = copilot.stack
    stack.stop_redis_exporter()
    try:
        _, text = copilot.wait_briefing(
            "for TargetDown naming the exporter",
            lambda t: "TargetDown" in t and stack.redis_exporter_address in t)
        head = text.split("\n", 1)[0]
        assert stack.redis_exporter_address in head, head
        assert "down" in text and evidence_of(text) and "up{" in text
        assert "runbooks.prometheus-operator.dev/runbooks/general/targetdown" in text
    finally:
        stack.restart_redis_exporter()


def test_an_endpoint_answering_500_is_named_with_its_status(copilot: Copilot) -> None:
    stack = copilot.stack
    stack.fail_endpoint(500)
    try:
        _, text = copilot.wait_briefing(
            "naming the failing URL", lambda t: "Blackbox" in t and stack.endpoint_url in t)
        head = text.split("\n", 1)[0]
        assert stack.endpoint_url in head, head
        assert "500" in text and evidence_of(text) and "probe_" in text
    finally:
        stack.heal_endpoint()


def test_redis_killed_is_named_behind_its_exporter(copilot: Copilot) -> None:
    stack = copilot.stack
    stack.stop_redis()
    try:
        _, text = copilot.wait_briefing(
            "for RedisDown", lambda t: "RedisDown" in t and stack.redis_exporter_address in t)
        head = text.split("\n", 1)[0]
        assert stack.redis_exporter_address in head and "redis" in head.lower(), head
        assert "redis_up" in text and evidence_of(text)
    finally:
        stack.restart_redis()


def test_no_incident_for_the_watchdog_and_every_briefing_has_evidence(copilot: Copilot
                                                                      ) -> None:
    names = [n for n, _ in copilot.cards()]
    assert names and not any("watchdog" in n for n in names), names
    for name, _, text in copilot.briefings():
        assert "what the rule watches" in text, (name, text[:500])
    assert json.dumps(names)  # the channels, for the failure message above
