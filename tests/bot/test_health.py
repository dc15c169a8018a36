"""Health, readiness and the copilot's own metrics."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx

from bot.app import create_app
from bot.settings import Settings
from tests.conftest import Copilot
from tests.fakes.alertmanager import alert, notification


async def test_healthz_and_readyz(copilot: Copilot) -> None:
    assert (await copilot.client.get("/healthz")).json() == {"status": "ok"}
    ready = await copilot.client.get("/readyz")
    assert ready.status_code == 200 and ready.json() == {"status": "ready"}


async def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, auto_migrate=False, worker=False,
                        database_url="postgresql://postgres@127.0.0.1:1/nowhere")
    from knowledge.db import open_database

    db = open_database(settings.db_url())
    app = create_app(settings, db=db, run_worker=False)
    app.state.db = db  # the lifespan would fail creating the default org: skip it
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://copilot") as client:
        response = await client.get("/readyz")
    await db.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "unavailable"
    assert "database unreachable" in response.json()["detail"]


async def test_serve_is_ready_only_once_the_embedding_model_is_loaded(
        settings: Settings) -> None:
    """`serve` warms the model at start: a replica that says ready answers its first question
    at full speed (an alert storm's first investigation once waited 11 s for the model)."""
    from bot.startup import prepare_database

    warm = settings.model_copy(update={"history": True})
    db = await prepare_database(warm)
    app = create_app(warm, db=db, run_worker=False, warm_up=True)
    answers = []
    try:
        async with app.router.lifespan_context(app), httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://copilot") as client:
            for _ in range(1200):
                response = await client.get("/readyz")
                loaded = app.state.indexes.embedder._model is not None
                answers.append((response.status_code, response.json(), loaded))
                if response.status_code == 200:
                    break
                await asyncio.sleep(0.05)
    finally:
        await db.dispose()
    assert answers[-1] == (200, {"status": "ready"}, True)
    assert all(answer == (503, {"status": "starting", "detail": "loading the embedding model"},
                          answer[2]) for answer in answers[:-1])


async def test_metrics_show_requests_inbox_depth_and_processing(copilot: Copilot) -> None:
    headers = {"authorization": f"Bearer {copilot.settings.alertmanager_webhook_token}",
               "content-type": "application/json"}
    payload = json.dumps(notification([alert("A"), alert("B"), alert("C")]))
    await copilot.client.post("/webhooks/alertmanager", content=payload, headers=headers)
    await copilot.client.post("/webhooks/alertmanager", content=payload, headers=headers)
    before = (await copilot.client.get("/metrics")).text
    # The three alerts, and each notification's listing (two items; a repeat's too).
    assert "sre_copilot_inbox_depth 7.0" in before
    assert 'sre_copilot_inbox_accepted_total{source="alertmanager"} 3.0' in before
    assert 'sre_copilot_inbox_duplicates_total{source="alertmanager"} 3.0' in before
    assert ('sre_copilot_http_requests_total{method="POST",route="/webhooks/alertmanager",'
            'status="202"} 2.0') in before
    await copilot.worker.drain()
    after = (await copilot.client.get("/metrics")).text
    assert "sre_copilot_inbox_depth 0.0" in after
    assert 'sre_copilot_inbox_processed_total{outcome="done",source="alertmanager"} 3.0' in after
    assert 'sre_copilot_inbox_processing_seconds_count{source="alertmanager"} 3.0' in after
