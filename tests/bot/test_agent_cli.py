"""`sre-copilot ask` and `sre-copilot chat` as a user runs them: without a key (the evidence
engine, against the live Prometheus) and with one (Claude, through the fake Messages API)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fakes.anthropic_server import running_anthropic, tool_use

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def _cli(args: list[str], cwd: Path, *, stdin: str | None = None, **env: str
         ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SRE_COPILOT_", "DATABASE_URL", "PAGERDUTY_", "ANTHROPIC_",
                                  "PROMETHEUS_"))}
    clean.update(PYTHONPATH=str(ROOT), COLUMNS="120", SRE_COPILOT_HISTORY="false",
                 SRE_COPILOT_DATA_DIR=str(cwd / "data"))
    return subprocess.run([sys.executable, "-m", "bot.cli", *args], cwd=cwd,
                          env={**clean, **env}, input=stdin, capture_output=True, text=True,
                          timeout=120, check=False)


def test_ask_without_a_key_answers_from_prometheus(tmp_path: Path, live_prom: str) -> None:
    done = _cli(["ask", "--json", "what's the error rate of checkout right now?"], tmp_path,
                PROMETHEUS_URL=live_prom)
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    assert answer["brain"] == "evidence engine"
    [ev] = answer["evidence"]
    assert 'service="checkout"' in ev["query"] and abs(ev["values"]["value"] - 0.1) < 0.02


def test_ask_with_a_key_goes_through_claude(tmp_path: Path, live_prom: str) -> None:
    def final(body: dict[str, object]) -> object:
        return tool_use("submit_answer", {"answer": "Checkout fails ~10% of requests."})

    with running_anthropic(tool_use("prometheus_series", {"label": "service"}), final) as fake:
        done = _cli(["ask", "which services are failing?"], tmp_path,
                    PROMETHEUS_URL=live_prom, ANTHROPIC_API_KEY=fake.api_key,
                    ANTHROPIC_BASE_URL=fake.base_url, ANTHROPIC_MODEL="claude-sonnet-4-6")
        fake.assert_script_done()
    assert done.returncode == 0, done.stderr
    assert "Checkout fails ~10% of requests." in done.stdout
    assert "claude" in done.stdout
    assert fake.requests[0].body["model"] == "claude-sonnet-4-6"
    assert fake.requests[0].headers["authorization"] == f"Bearer {fake.api_key}"
    assert "checkout" in json.dumps(fake.requests[1].body["messages"])  # the tool's answer


def test_chat_keeps_the_conversation(tmp_path: Path, live_prom: str) -> None:
    done = _cli(["chat"], tmp_path, PROMETHEUS_URL=live_prom,
                stdin="error rate of checkout over the last 10 minutes\nand for payments?\n"
                      "exit\n")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "evidence engine" in out
    assert out.count("prometheus_range") >= 2
    assert 'service="payments"' in out.replace("\n", "")
    assert "chart:" in out
    # `ask` continues the same default thread from another process.
    again = _cli(["ask", "--json", "what about latency?"], tmp_path, PROMETHEUS_URL=live_prom)
    [call] = json.loads(again.stdout)["tools"]
    assert "http_request_duration_seconds_bucket" in call["args"]["query"]
    assert 'service="payments"' in call["args"]["query"]


def test_ask_with_an_empty_question_is_a_usage_error(tmp_path: Path) -> None:
    done = _cli(["ask", "  "], tmp_path)
    assert done.returncode == 2 and "empty" in done.stderr
