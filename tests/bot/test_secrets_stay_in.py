"""Secrets planted in an alert never leave the process: not in the Slack incident card and its
thread (nor slack_sdk's debug log of them), not in Teams' cards, not in what the CLI prints,
and not in any log line, a library's included."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.outgoing import RedactingFilter, RedactingStream
from tests.bot.slack_live import TOKEN, Live, until
from tests.bot.teams_live import TeamsLive
from tests.bot.test_teams_scenario import installed, open_incident
from tests.fakes.alertmanager import alert, notification
from tests.fakes.slack_api import channel_created

ROOT = Path(__file__).resolve().parents[2]
SECRETS = ("hunter2", "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
           "xoxb-1234567890-abcdefghijklmnop")
SUMMARY = ("Checkout 5xx ratio above 5% after deploy with password=hunter2 "
           "aws_access_key_id=AKIAIOSFODNN7EXAMPLE "
           "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")


def _leaks(text: str) -> list[str]:
    return [s for s in SECRETS if s in text]


ONE_DATABASE = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # redaction is
# the same whatever the database: once is enough for the live Slack and Teams runs


@ONE_DATABASE
async def test_the_slack_card_and_thread_carry_no_secret(live: Live) -> None:
    slack = live.slack
    with_secrets = alert("CheckoutHighErrorRate", service="checkout", summary=SUMMARY)
    sent = await live.client.post("/webhooks/alertmanager",
                                  headers={"Authorization": f"Bearer {TOKEN}"},
                                  json=notification([with_secrets]))
    assert sent.status_code == 202
    channel = slack.add_channel("inc-1-checkout", is_member=False)
    event = slack.event_callback(channel_created(channel.id, channel.name, "U0ANA"))
    assert (await live.slack_post(event, form=False)).status_code == 200
    card = await until("the incident card", lambda: next(
        (m for m in slack.messages.get(channel.id, []) if "INC-1" in (m.text or "")
         and not m.thread_ts), None))
    await until("the investigation in the thread", lambda: any(
        m.thread_ts == card.ts for m in slack.messages.get(channel.id, [])), seconds=60)
    shown = json.dumps([c.params for c in slack.calls])
    assert "[REDACTED]" in shown  # the summary was there, with its secrets replaced
    assert _leaks(shown) == []


@ONE_DATABASE
async def test_teams_cards_carry_no_secret(teams_live: TeamsLive) -> None:
    await installed(teams_live)
    created = await open_incident(teams_live, alert("CheckoutHighErrorRate",
                                                    service="checkout", summary=SUMMARY))
    thread = f"{created.body['channelData']['channel']['id']};messageid=" \
             f"{created.response['activityId']}"
    await until("the investigation in the thread",
                lambda: teams_live.calls_in(thread, "send"), seconds=60)
    shown = json.dumps([c.body for c in teams_live.teams.calls])
    assert "[REDACTED]" in shown
    assert _leaks(shown) == []


def test_every_logger_is_redacted_through_the_process_handler() -> None:
    """slack_sdk logs whole request bodies at DEBUG; a traceback may quote a secret too."""
    code = """
import logging
from bot.logs import configure_logging
from bot.settings import Settings
configure_logging(Settings(log_level="DEBUG"))
logging.getLogger("slack_sdk.web.async_base_client").debug(
    "Sending a request - body: %s", {"text": "password=hunter2", "token": "SLACK_TOKEN"})
try:
    raise RuntimeError("connect failed for postgresql://app:hunter2@db:5432/prod")
except RuntimeError:
    logging.getLogger("sqlalchemy.pool").exception("pool error")
print("logged")
""".replace("SLACK_TOKEN", SECRETS[3])
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_COPILOT_")}
    result = subprocess.run([sys.executable, "-c", code], env={**env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=60, check=True)
    assert "Sending a request" in result.stderr and "pool error" in result.stderr
    assert "Traceback" in result.stderr and "[REDACTED]" in result.stderr
    assert _leaks(result.stderr) == []


def test_the_cli_prints_no_secret(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SRE_COPILOT_")}
    env |= {"PYTHONPATH": str(ROOT), "SRE_COPILOT_DATA_DIR": str(tmp_path / "data"),
            "PROMETHEUS_URL": "http://127.0.0.1:9"}
    searched = subprocess.run(
        [sys.executable, "-m", "bot.cli", "runbooks", "search", "--json", SUMMARY],
        env=env, capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(searched.stdout)["query"].startswith("Checkout 5xx ratio")
    failed = subprocess.run(
        [sys.executable, "-m", "bot.cli", "investigate", "--service", "checkout", "--at",
         "password=hunter2"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert failed.returncode == 2 and "[REDACTED]" in failed.stderr
    assert _leaks(searched.stdout + searched.stderr + failed.stdout + failed.stderr) == []


def test_a_secret_split_across_writes_is_still_caught() -> None:
    class Sink(list[str]):
        def write(self, text: str) -> int:
            self.append(text)
            return len(text)

        def flush(self) -> None:
            pass

    sink = Sink()
    stream = RedactingStream(sink)  # type: ignore[arg-type]
    for piece in ("password=hun", "ter2 and more", "\nlast line AKIAIOSFODNN7EXA", "MPLE"):
        stream.write(piece)
    stream.flush()
    assert _leaks("".join(sink)) == [] and "".join(sink).count("[REDACTED]") == 2


def test_the_filter_keeps_ordinary_lines_as_they_are() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1,
                               "INC-%d opened: %s", (7, "checkout 5xx above 5%"), None)
    assert RedactingFilter().filter(record)
    assert record.getMessage() == "INC-7 opened: checkout 5xx above 5%"
