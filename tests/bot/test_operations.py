"""What an operator alerts on: `/metrics` after real work (chat posts given up, failed calls to
Prometheus, Slack, Anthropic and Chroma, the model's request times and tokens), and the logs —
one JSON object per line from `sre-copilot serve` with SRE_COPILOT_LOG_FORMAT=json, carrying
the request's and the incident's ids."""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import URL

from bot.agent.runtime import open_agent
from bot.app import create_app
from bot.indexes import CountedChroma
from bot.logs import JsonLines, WorkIds, current_request, incident_scope
from bot.metrics import Metrics
from bot.settings import Settings
from bot.startup import prepare_database
from knowledge.orgs import get_org
from knowledge.outbox import enqueue_message, find_message, mark_failed
from knowledge.vectors import open_chroma
from tests.bot.slack_live import SECRET, until
from tests.conftest import Copilot, url_string
from tests.fakes.alertmanager import alert, notification
from tests.fakes.alertmanager_server import stop_process
from tests.fakes.anthropic_server import overloaded, running_anthropic, tool_use
from tests.fakes.slack_api import FakeSlack, app_mention, running_slack, sign

SRE_COPILOT = Path(sys.executable).parent / "sre-copilot"


def unused_port() -> int:
    """A loopback port nothing listens on: connections to it are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def scrape(client: httpx.AsyncClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """`/metrics` as Prometheus reads it: (sample name, labels) → value."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.text)
            for s in family.samples}


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str,
          **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


def failed_queries(verdict: str) -> int:
    """How many queries an investigation says failed ("… (8 queries failed: …)")."""
    found = re.search(r"\((\d+) queries failed", verdict)
    assert found, verdict
    return int(found.group(1))


# --- metrics -------------------------------------------------------------------------------


async def test_chat_posts_given_up_and_waiting_are_on_metrics(copilot: Copilot) -> None:
    async with copilot.db.session() as s, s.begin():
        org = await get_org(s, slug="default")
        assert org.id is not None
        for key in ("slack:Ev1:answer", "teams:outbox:incident:1:opened", "slack:Ev2:answer"):
            await enqueue_message(s, org_id=org.id, key=key, kind=key.split(":")[0] + "_post",
                                  text="a post")
        # The engine's own message stays pending by design: it is not a post that waits.
        await enqueue_message(s, org_id=org.id, key="incident:1:opened",
                              kind="incident_opened", text="INC-1 opened")
    async with copilot.db.session() as s, s.begin():
        given_up = await find_message(s, org_id=org.id, key="teams:outbox:incident:1:opened")
        assert given_up is not None
        mark_failed(given_up, "the bot is not in that conversation any more")
        s.add(given_up)
        posted = await find_message(s, org_id=org.id, key="slack:Ev2:answer")
        assert posted is not None
        posted.status = "sent"
        s.add(posted)
    samples = await scrape(copilot.client)
    assert value(samples, "sre_copilot_outbox_failed") == 1.0
    assert value(samples, "sre_copilot_outbox_pending") == 1.0
    # Every upstream and token series is there from the start, at 0.
    for system in ("prometheus", "pagerduty", "slack", "teams", "anthropic", "chroma"):
        assert value(samples, "sre_copilot_upstream_errors_total", system=system) == 0.0
    for kind in ("input", "output", "cache_read", "cache_creation"):
        assert value(samples, "sre_copilot_model_tokens_total", kind=kind) == 0.0
    assert value(samples, "sre_copilot_model_request_duration_seconds_count") == 0.0


async def test_an_investigation_with_prometheus_down_counts_its_failed_queries(
        copilot: Copilot) -> None:
    down = copilot.settings.model_copy(update={
        "prometheus_url": f"http://127.0.0.1:{unused_port()}"})
    async with open_agent(down, db=copilot.db, indexes=False, metrics=copilot.metrics) as agent:
        at_start = value(await scrape(copilot.client), "sre_copilot_upstream_errors_total",
                         system="prometheus")
        assert at_start == 1.0  # listing the services for the planner
        answer = await agent.turn("ops:1", "/hypotheses checkout 30m")
    samples = await scrape(copilot.client)
    # Each query the investigation could not run is one failed call.
    assert value(samples, "sre_copilot_upstream_errors_total", system="prometheus") == \
        at_start + failed_queries(answer.text)
    assert value(samples, "sre_copilot_upstream_errors_total", system="slack") == 0.0


async def test_a_claude_turn_is_timed_and_its_tokens_counted(copilot: Copilot) -> None:
    with running_anthropic() as fake:
        claude = copilot.settings.model_copy(update={
            "anthropic_api_key": fake.api_key, "anthropic_base_url": fake.base_url,
            "anthropic_max_retries": 0})
        async with open_agent(claude, db=copilot.db, indexes=False,
                              metrics=copilot.metrics) as agent:
            fake.push(tool_use("submit_answer", {"answer": "Nothing points at a cause yet."}))
            answer = await agent.turn("ops:2", "why is checkout failing?")
            assert answer.brain == "claude"
            samples = await scrape(copilot.client)
            assert value(samples, "sre_copilot_model_request_duration_seconds_count") == 1.0
            assert 0 < value(samples, "sre_copilot_model_request_duration_seconds_sum") < 10
            usage = answer.usage  # what the fake's one response said it used
            assert usage["input_tokens"] > 0 and usage["cache_creation_input_tokens"] > 0
            for field, kind in (("input_tokens", "input"), ("output_tokens", "output"),
                                ("cache_read_input_tokens", "cache_read"),
                                ("cache_creation_input_tokens", "cache_creation")):
                assert value(samples, "sre_copilot_model_tokens_total", kind=kind) == \
                    usage.get(field, 0), kind
            assert value(samples, "sre_copilot_upstream_errors_total", system="anthropic") == 0

            fake.push(overloaded())  # no retries left: the evidence engine answers
            fallback = await agent.turn("ops:3", "why is checkout failing?")
        fake.assert_script_done()
    assert any("Claude was unavailable" in n for n in fallback.notes)
    samples = await scrape(copilot.client)
    assert value(samples, "sre_copilot_upstream_errors_total", system="anthropic") == 1.0
    assert value(samples, "sre_copilot_model_request_duration_seconds_count") == 2.0


@dataclass
class Served:
    client: httpx.AsyncClient
    slack: FakeSlack
    metrics: Metrics


@pytest.fixture
async def served(settings: Settings) -> AsyncIterator[Served]:
    """`serve`'s app with its workers, Slack on the local Web API, and Prometheus down."""
    with running_slack() as slack:
        configured = settings.model_copy(update={
            "prometheus_url": f"http://127.0.0.1:{unused_port()}",
            "slack_bot_token": "xoxb-test", "slack_signing_secret": SECRET,
            "slack_api_url": slack.base_url + "/api/", "worker": True,
            "worker_poll_seconds": 0.1})
        db = await prepare_database(configured)
        metrics = Metrics()
        app = create_app(configured, db=db, metrics=metrics)
        try:
            async with app.router.lifespan_context(app), httpx.AsyncClient(
                    transport=httpx.ASGITransport(app=app), base_url="http://copilot") as c:
                yield Served(c, slack, metrics)
        finally:
            await db.dispose()


async def _mention(served: Served, channel: str, text: str) -> str:
    asked = served.slack.add_message(channel, f"<@U0BOT> {text}", user="U0ANA")
    body = served.slack.event_callback(app_mention(asked.text, channel, asked.ts, "U0ANA"))
    response = await served.client.post("/slack/events", content=body, headers={
        **sign(body, SECRET), "Content-Type": "application/json"})
    assert response.status_code == 200
    return asked.ts


async def test_serve_counts_what_fails_upstream_of_a_slack_answer(served: Served) -> None:
    before = await scrape(served.client)
    assert value(before, "sre_copilot_upstream_errors_total", system="prometheus") >= 1
    ops = served.slack.add_channel("ops", is_member=True, members=["U0ANA"])
    asked = await _mention(served, ops.id, "/hypotheses checkout 30m")
    answered = await until("the answer", lambda: [
        m for m in served.slack.messages[ops.id] if m.thread_ts == asked and m.user == "U0BOT"
        and "queries failed" in (m.text or "") + json.dumps(m.blocks or [])])
    after = await scrape(served.client)
    shown = (answered[0].text or "") + json.dumps(answered[0].blocks or [])
    assert value(after, "sre_copilot_upstream_errors_total", system="prometheus") == \
        value(before, "sre_copilot_upstream_errors_total", system="prometheus") + \
        failed_queries(shown)
    assert value(after, "sre_copilot_upstream_errors_total", system="slack") == 0.0

    # A channel the bot was never invited to: Slack refuses the post (not_in_channel).
    private = served.slack.add_channel("secret", is_member=False, members=["U0ANA"])
    await _mention(served, private.id, "what's firing?")
    await until("the refused post", lambda: served.metrics.registry.get_sample_value(
        "sre_copilot_upstream_errors_total", {"system": "slack"}))
    assert value(await scrape(served.client), "sre_copilot_upstream_errors_total",
                 system="slack") == 1.0
    assert not served.slack.messages[private.id][1:]  # only the question: nothing was posted


def test_a_failing_chroma_call_is_counted(tmp_path: Path) -> None:
    metrics = Metrics()
    chroma = CountedChroma(open_chroma(tmp_path), metrics)
    collection = chroma.get_or_create_collection("vectors", embedding_function=None)
    collection.add(ids=["a"], embeddings=[[1.0, 0.0]])
    assert collection.count() == 1 and collection.name == "vectors"
    with pytest.raises(Exception, match="dimension"):
        collection.query(query_embeddings=[[1.0, 0.0, 0.0]], n_results=1)
    assert metrics.registry.get_sample_value("sre_copilot_upstream_errors_total",
                                             {"system": "chroma"}) == 1.0


# --- logs ----------------------------------------------------------------------------------


def test_a_json_line_has_the_ids_of_its_work_and_the_exception() -> None:
    lines: list[str] = []

    class Lines(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            lines.append(self.format(record))

    handler = Lines()
    handler.setFormatter(JsonLines())
    handler.addFilter(WorkIds())
    log = logging.getLogger("tests.operations")
    log.addHandler(handler)
    log.propagate = False
    try:
        log.warning("before any work")
        token = current_request.set("req-1")
        with incident_scope(7):
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("could not post to %s", "C1")
        current_request.reset(token)
    finally:
        log.removeHandler(handler)
        log.propagate = True
    first, second = (json.loads(line) for line in lines)
    assert list(first) == ["time", "level", "logger", "message"]
    assert first["level"] == "WARNING" and first["logger"] == "tests.operations"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+00:00", first["time"])
    assert second["message"] == "could not post to C1"
    assert second["request_id"] == "req-1" and second["incident_id"] == 7
    assert "ValueError: boom" in second["exc_info"]


@contextmanager
def serving(url: URL, data_dir: Path, log_format: str, **more_env: str
            ) -> Iterator[tuple[str, Path]]:
    """`sre-copilot serve` on a free port, its stdout and stderr in one file; `more_env` adds
    to (or overrides) its environment."""
    port = unused_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRE_COPILOT_", "DIGEST_", "SLACK_", "TEAMS_", "ANTHROPIC_"))}
    env.update(DATABASE_URL=url_string(url), SRE_COPILOT_DATA_DIR=str(data_dir),
               SRE_COPILOT_HISTORY="false", SRE_COPILOT_LOG_LEVEL="info",
               SRE_COPILOT_LOG_FORMAT=log_format, SRE_COPILOT_WORKER_POLL_SECONDS="0.1",
               ALERTMANAGER_WEBHOOK_TOKEN="am-token", PROMETHEUS_URL="", **more_env)
    output = data_dir / f"serve-{log_format}.log"
    with output.open("wb") as out:
        proc = subprocess.Popen([str(SRE_COPILOT), "serve", "--port", str(port)], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, output.read_text()
            assert time.monotonic() < deadline, "serve never became ready:\n" + output.read_text()
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        yield base, output
    finally:
        stop_process(proc, timeout=20)


def _open_incident(base: str, **headers: str) -> httpx.Response:
    return httpx.post(base + "/webhooks/alertmanager", timeout=10,
                      json=notification([alert("CheckoutHighErrorRate")]),
                      headers={"Authorization": "Bearer am-token", **headers})


def _wait_for(output: Path, text: str) -> None:
    deadline = time.monotonic() + 15
    while text not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert text in output.read_text(), output.read_text()


def test_serve_logs_one_json_object_per_line_with_request_and_incident_ids(
        sqlite_url: URL, tmp_path: Path) -> None:
    assert SRE_COPILOT.exists(), f"{SRE_COPILOT} is missing; pip install -e . first"
    with serving(sqlite_url, tmp_path, "json") as (base, output):
        sent = _open_incident(base, **{"X-Request-Id": "abc123"})
        assert sent.status_code == 202 and sent.headers["x-request-id"] == "abc123"
        anonymous = httpx.get(base + "/healthz", timeout=5)
        generated = anonymous.headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        _wait_for(output, "INC-1 opened")
    records: list[dict[str, Any]] = []
    for line in output.read_text().splitlines():
        record = json.loads(line)  # every line, uvicorn's and ours, is one JSON object
        assert isinstance(record, dict) and {"time", "level", "logger", "message"} <= set(record)
        records.append(record)
    webhook = [r for r in records if r.get("request_id") == "abc123"]
    assert webhook and all(r["logger"] == "uvicorn.access" for r in webhook)
    assert "POST /webhooks/alertmanager" in webhook[0]["message"]
    assert any(r.get("request_id") == generated and "GET /healthz" in r["message"]
               for r in records)
    opened = next(r for r in records if "INC-1 opened" in r["message"])
    assert opened["incident_id"] == 1 and opened["logger"] == "bot.worker"
    assert "request_id" not in opened  # the worker's own task, not the request's
    assert any(r["message"] == "Application startup complete." for r in records)


def test_serve_logs_plain_lines_in_text_mode(sqlite_url: URL, tmp_path: Path) -> None:
    with serving(sqlite_url, tmp_path, "text") as (base, output):
        assert _open_incident(base).status_code == 202
        _wait_for(output, "INC-1 opened")
    lines = output.read_text().splitlines()
    plain = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (DEBUG|INFO|WARNING|ERROR) \S+: ")
    assert lines and all(plain.match(line) for line in lines), lines
    assert any("bot.worker: INC-1 opened by alertmanager item 2" in line for line in lines)
    assert any("uvicorn.access" in line and "POST /webhooks/alertmanager" in line
               for line in lines)
