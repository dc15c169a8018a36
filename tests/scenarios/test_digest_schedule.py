"""The scheduled digest with two replicas: two `sre-copilot serve` processes on one PostgreSQL,
both running the digest job every 20 seconds (`DIGEST_CRON="*/20 * * * * *"`, the six-field
form with seconds first), post it to the Slack
channel exactly once per period, over two periods — the local Slack Web API counts. A replica
that loses the race posts nothing. (A replica that dies mid-post, leaving its claim to be taken
over, is tested on the claim itself: tests/knowledge/test_digests.py.)"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import URL

from tests.conftest import url_string
from tests.fakes.alertmanager_server import free_port, stop_process
from tests.fakes.slack_api import FakeSlack, running_slack
from tests.scale import Replica, wait_ready

pytestmark = pytest.mark.slow
SRE_COPILOT = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "sre-copilot"
PERIOD = 20  # seconds: a digest period, so two periods pass in well under a minute


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with running_slack() as fake:
        yield fake


def _serve(url: URL, data_dir: Path, slack: FakeSlack, channel: str, name: str
           ) -> tuple[subprocess.Popen[bytes], int, Path]:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("SRE_COPILOT_", "DIGEST_", "SLACK_", "TEAMS_"))}
    env.update(DATABASE_URL=url_string(url), SRE_COPILOT_DATA_DIR=str(data_dir),
               SRE_COPILOT_HISTORY="false", SRE_COPILOT_LOG_LEVEL="info",
               DIGEST_CRON=f"*/{PERIOD} * * * * *", DIGEST_SLACK_CHANNEL=channel,
               SLACK_BOT_TOKEN="xoxb-test", SLACK_API_URL=slack.base_url + "/api/",
               PROMETHEUS_URL="")
    log = data_dir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen([str(SRE_COPILOT), "serve", "--port", str(port)], env=env,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
    return proc, port, log


def test_two_replicas_post_each_period_once(pg_url: URL, tmp_path: Path,
                                            slack: FakeSlack) -> None:
    assert SRE_COPILOT.exists(), f"{SRE_COPILOT} is missing; pip install -e . first"
    channel = slack.add_channel("sre-weekly", is_member=True).id
    first = _serve(pg_url, tmp_path, slack, channel, "a")
    # The first migrates the schema before the second starts.
    wait_ready(Replica("a", first[0], first[1], first[2]))
    second = _serve(pg_url, tmp_path, slack, channel, "b")
    replicas = [first, second]
    try:
        wait_ready(Replica("b", second[0], second[1], second[2]))
        # Two periods: wait through the first two boundaries both replicas have seen.
        started = time.time()
        boundary = (int(started) // PERIOD + 1) * PERIOD
        deadline = boundary + PERIOD + 45

        def digests() -> list[object]:
            return [c for c in slack.calls_to("chat.postMessage")
                    if (c.params or {}).get("channel") == channel
                    and "Weekly digest" in str(c.params)]

        while time.time() < deadline and len(digests()) < 2:
            time.sleep(0.5)
        assert digests(), "no digest was posted:\n" + first[2].read_text()[-3000:]
        time.sleep(5)  # the loser, if it were to post, would have by now
        posted = [line.split("digest of ", 1)[1] for _, _, log in replicas
                  for line in log.read_text().splitlines() if "digest of default" in line]
        # One post per period, by whichever replica won it: two periods, two posts.
        assert len(posted) == 2 and len(set(posted)) == 2, posted
        assert len(digests()) == 2
        for proc, _, log in replicas:
            assert proc.poll() is None, log.read_text()
            assert "digest scheduled" in log.read_text()
    finally:
        for proc, _, _ in replicas:
            stop_process(proc, timeout=30)
