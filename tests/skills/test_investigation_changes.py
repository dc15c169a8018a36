"""Changes posted to `/webhooks/changes` feed the ranking, as deploys seen in Prometheus do: a
deploy that leaves no trace in Prometheus (no build_info, no rollout) is named as the cause of
the errors it brought once the pipeline reported it, through `sre-copilot investigate` with the
database the webhook writes to. Without the report, the same errors are not called a deploy."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from knowledge.changes import record_change
from knowledge.db import open_database, resolve_url
from knowledge.migrate import upgrade
from knowledge.orgs import ensure_org
from tests.bench.cases_independent import GeneratedCase, generate_case, merge_families
from tests.fakes.prometheus_server import openmetrics, running_prometheus

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
ANCHOR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def _silent_deploy() -> GeneratedCase:
    """A deploy the pipeline reported and Prometheus did not see, that broke its service."""
    for seed in range(40):
        case = generate_case(7000 + seed, prefix="sd-", anchor=ANCHOR,
                             spread=timedelta(hours=2), kind="silent_deploy")
        if any(c["service"] == case.root_service and c["kind"] == "deploy"
               for c in case.changes):
            return case
    raise AssertionError("no silent deploy with its change among 40 seeds")


CASE = _silent_deploy()


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("prom"),
                            openmetrics(merge_families([CASE]))) as url:
        yield url


async def _store_changes(data_dir: Path) -> None:
    url = resolve_url(None, data_dir)
    upgrade(url)
    db = open_database(url)
    try:
        async with db.session() as session, session.begin():
            org = await ensure_org(session, slug="default", name="default")
            assert org.id is not None
            for c in CASE.changes:
                await record_change(
                    session, org_id=org.id, service=c["service"], kind=c["kind"],
                    occurred_at=datetime.fromisoformat(c["occurred_at"].replace("Z", "+00:00")),
                    source="webhook", version=c.get("version"),
                    previous_version=c.get("previous_version"),
                    description=c.get("description", ""))
    finally:
        await db.dispose()


def _investigate(prometheus: str, data_dir: Path) -> dict[str, object]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("SRE_COPILOT_") and k != "DATABASE_URL"}
    env.update(PROMETHEUS_URL=prometheus, SRE_COPILOT_DATA_DIR=str(data_dir),
               PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "investigate", "--service", CASE.alert_service,
         "--at", CASE.alert_at.isoformat(), "--window", "2h", "--json"],
        env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


async def test_a_reported_deploy_is_named_as_the_cause(prometheus: str, tmp_path: Path
                                                       ) -> None:
    await _store_changes(tmp_path / "with")
    data = _investigate(prometheus, tmp_path / "with")
    top = data["hypotheses"][0]  # type: ignore[index]
    assert top["cause"]["service"] == CASE.root_service, (CASE.notes, data["verdict"])
    assert top["cause"]["kind"] == "deploy"
    reported = [e for e in top["evidence"] if e["source"] == "webhook"]
    assert reported and CASE.root_service in reported[0]["summary"]
    assert "before the anomaly began" in reported[0]["summary"]


async def test_without_the_report_the_same_errors_are_no_deploy(prometheus: str,
                                                                tmp_path: Path) -> None:
    data = _investigate(prometheus, tmp_path / "without")
    for h in data["hypotheses"]:  # type: ignore[attr-defined]
        assert h["cause"]["kind"] != "deploy" or h["cause"]["service"] != CASE.root_service
        assert all(e["source"] != "webhook" for e in h["evidence"])
