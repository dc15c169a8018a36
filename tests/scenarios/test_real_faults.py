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
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from tests.fakes.real_copilot import Copilot, running_copilot

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def copilot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Copilot]:
    with running_copilot(tmp_path_factory.mktemp("real-faults")) as running:
        yield running


def investigate_cli(copilot: Copilot, *args: str) -> dict[str, Any]:
    """`sre-copilot investigate … --json` against the stack's Prometheus, as a user runs it."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRE_COPILOT_") and k != "DATABASE_URL"}
    env.update(PROMETHEUS_URL=copilot.stack.prometheus_url,
               SRE_COPILOT_DATA_DIR=str(copilot.log.parent.parent / "cli"))
    done = subprocess.run([str(Path(sys.executable).with_name("sre-copilot")), "investigate",
                           *args, "--json"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout)
    return found


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
        # The query behind the evidence is a link to Prometheus, not text.
        assert "down" in text and evidence_of(text) and "up{" in unquote_plus(text)
        assert "runbooks.prometheus-operator.dev/runbooks/general/targetdown" in text
        # The same from a terminal: the alert by name and a label, no service.
        found = investigate_cli(copilot, "--alert", "TargetDown", "--match", "job=redis")
        top = found["hypotheses"][0]
        assert top["cause"]["resource"]["instance"] == stack.redis_exporter_address
        assert top["cause"]["kind"] == "down" and top["confidence"] >= 0.5
        first = found["evidence"][0]
        assert first["query"] and "up" in first["query"] and first["values"]["current"] == 100
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
