"""PostgreSQL taken away through a TCP proxy, as an operator would see it: down or hung mid-run,
a webhook is answered 503 with Retry-After within seconds (so Alertmanager and PagerDuty retry)
and nothing it had accepted is lost; `serve` started while the database is down comes up
not-ready and starts serving once the database returns."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import httpx
from sqlalchemy.engine import URL

from bot.app import create_app
from bot.settings import Settings
from knowledge import migrate
from knowledge.alerts import list_alerts
from knowledge.db import open_database
from knowledge.inbox import InboxStatus, items
from knowledge.orgs import get_org
from tests.bot.test_operations import SRE_COPILOT, unused_port
from tests.conftest import url_string
from tests.fakes.alertmanager import alert, notification
from tests.fakes.alertmanager_server import stop_process
from tests.fakes.tcp_proxy import tcp_proxy

TOKEN = "am-token"


def _through(url: URL, port: int) -> URL:
    return url.set(host="127.0.0.1", port=port)


async def _applied_alerts(url: URL) -> set[str]:
    db = open_database(url)
    try:
        async with db.session() as s:
            org = await get_org(s, slug="default")
            assert await items(s, org_id=org.id or 0, status=InboxStatus.FAILED) == []
            return {a.alertname for a in await list_alerts(s, org_id=org.id or 0)}
    finally:
        await db.dispose()


async def test_a_database_cut_or_hung_mid_run_is_a_503_and_loses_nothing(
        pg_url: URL, tmp_path: Path) -> None:
    migrate.upgrade(pg_url)
    with tcp_proxy("127.0.0.1", pg_url.port or 5432) as proxy:
        settings = Settings(data_dir=tmp_path, database_url=url_string(_through(pg_url,
                                                                                proxy.port)),
                            alertmanager_webhook_token=TOKEN, history=False, worker=True,
                            worker_poll_seconds=0.1)
        app = create_app(settings)
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://copilot") as client:

            async def send(name: str) -> tuple[httpx.Response, float]:
                started = time.monotonic()
                response = await client.post(
                    "/webhooks/alertmanager", json=notification([alert(name)]),
                    headers={"Authorization": f"Bearer {TOKEN}"})
                return response, time.monotonic() - started

            first, _ = await send("BeforeTheCut")
            assert first.status_code == 202
            for how in ("cut", "stall"):
                getattr(proxy, how)()
                refused, took = await send(f"During{how}")
                assert refused.status_code == 503, (how, refused.text)
                assert refused.headers["retry-after"] == "30" and took < 12, (how, took)
                assert (await client.get("/readyz")).status_code == 503
                started = time.monotonic()
                scraped = await client.get("/metrics")  # never held by the database
                assert scraped.status_code == 200 and time.monotonic() - started < 6
            proxy.restore()
            back = None
            for _ in range(50):  # the pool's stale connections are replaced within a try or two
                back, _ = await send("AfterTheReturn")
                if back.status_code == 202:
                    break
                await asyncio.sleep(0.2)
            assert back is not None and back.status_code == 202, back.text if back else None
            for _ in range(100):
                if {"BeforeTheCut", "AfterTheReturn"} <= await _applied_alerts(pg_url):
                    break
                await asyncio.sleep(0.1)
    assert await _applied_alerts(pg_url) == {"BeforeTheCut", "AfterTheReturn"}


async def test_serve_with_the_database_down_starts_not_ready_and_recovers(
        pg_url: URL, tmp_path: Path) -> None:
    assert SRE_COPILOT.exists(), f"{SRE_COPILOT} is missing; pip install -e . first"
    with tcp_proxy("127.0.0.1", pg_url.port or 5432, listening=False) as proxy:
        port = unused_port()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("SRE_COPILOT_", "DIGEST_", "SLACK_", "TEAMS_",
                                    "ANTHROPIC_"))}
        env.update(DATABASE_URL=url_string(_through(pg_url, proxy.port)),
                   SRE_COPILOT_DATA_DIR=str(tmp_path), SRE_COPILOT_HISTORY="false",
                   SRE_COPILOT_DATABASE_RETRY_SECONDS="0.5",
                   SRE_COPILOT_WORKER_POLL_SECONDS="0.1", ALERTMANAGER_WEBHOOK_TOKEN=TOKEN,
                   PROMETHEUS_URL="")
        output = tmp_path / "serve.log"
        with output.open("wb") as out:
            proc = subprocess.Popen(  # noqa: ASYNC220 - starts it, does not wait
                [str(SRE_COPILOT), "serve", "--port", str(port)], env=env,
                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            async with httpx.AsyncClient(base_url=base, timeout=15) as client:
                for _ in range(300):
                    assert proc.poll() is None, output.read_text()
                    try:
                        if (await client.get("/healthz")).status_code == 200:
                            break
                    except httpx.HTTPError:
                        await asyncio.sleep(0.1)
                ready = await client.get("/readyz")
                assert ready.status_code == 503 and "database" in ready.json()["detail"]
                waiting = await client.post("/webhooks/alertmanager",
                                            json=notification([alert("WhileDown")]),
                                            headers={"Authorization": f"Bearer {TOKEN}"})
                assert waiting.status_code == 503 and waiting.headers["retry-after"] == "30"
                proxy.restore()
                for _ in range(300):
                    if (await client.get("/readyz")).status_code == 200:
                        break
                    await asyncio.sleep(0.1)
                else:
                    raise AssertionError("never ready:\n" + output.read_text())
                sent = await client.post("/webhooks/alertmanager",
                                         json=notification([alert("AfterStart")]),
                                         headers={"Authorization": f"Bearer {TOKEN}"})
                assert sent.status_code == 202
                for _ in range(100):
                    if "AfterStart" in await _applied_alerts(pg_url):
                        break
                    await asyncio.sleep(0.1)
            log = output.read_text()
            assert "Traceback" not in log
            assert "the database is unavailable at start" in log
        finally:
            stop_process(proc, timeout=20)
    assert await _applied_alerts(pg_url) == {"AfterStart"}
