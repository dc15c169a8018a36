"""An alert about a Kubernetes resource, briefed in Teams: a kube-prometheus `TargetDown` that
names only the job and namespace of a service whose one pod stopped answering, delivered as
Alertmanager delivers it (its rule's expression in `generatorURL`) against a Prometheus holding
the cluster's series (tests/bench/cases_alerts.py, written apart from the engine). The briefing
in the incident's Teams thread names the pod that failed, with the alert expression's breakdown
— query and numbers — as evidence."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote_plus

import pytest

from bot.settings import Settings
from tests.bench.cases_alerts import AlertCase, generate_case, merge_families
from tests.bot.slack_live import until
from tests.bot.teams_live import TOKEN, card, teams_copilot
from tests.bot.test_teams_scenario import installed
from tests.conftest import ALERT_RULES, need_shared
from tests.fakes.alertmanager import notification
from tests.fakes.prometheus_server import openmetrics, running_prometheus

pytestmark = pytest.mark.slow

ANCHOR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


@pytest.fixture(scope="module")
def case() -> AlertCase:
    need_shared(ALERT_RULES)  # the case's alert is kube-prometheus's own rule
    return generate_case(4242, prefix="tb-", anchor=ANCHOR, spread=timedelta(hours=2),
                         kind="target_down")


@pytest.fixture(scope="module")
def cluster_prom(tmp_path_factory: pytest.TempPathFactory, case: AlertCase) -> Iterator[str]:
    with running_prometheus(tmp_path_factory.mktemp("cluster"),
                            openmetrics(merge_families([case])), ready_timeout=60) as url:
        yield url


async def test_target_down_is_briefed_with_the_pod_that_failed(
        settings: Settings, case: AlertCase, cluster_prom: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pod = case.truth_labels["pod"]
    assert pod not in json.dumps(case.alert["labels"])  # the alert itself does not say
    # The case's warning may have started a moment ago (its time follows the clock): no hold,
    # this test is about what the briefing says, not about when a warning is posted.
    settings = settings.model_copy(update={"noise_hold_seconds": 0})
    async with teams_copilot(settings, cluster_prom, monkeypatch) as live:
        await installed(live)
        sent = await live.client.post(
            "/webhooks/alertmanager", headers={"Authorization": f"Bearer {TOKEN}"},
            json=notification([case.alert]))
        assert sent.status_code == 202

        def briefing() -> str | None:
            for call in live.teams.calls:
                text = json.dumps(card(call)) if call.body else ""
                if "what the rule watches" in text and pod in text:
                    return text
            return None

        text = await until("the briefing naming the pod", briefing, seconds=60)
    # The breakdown's query, as evidence: behind the line's link to Prometheus.
    assert "TargetDown" in text and "up{" in unquote_plus(text)
    assert "1 \\u2192 0" in text or "1 → 0" in text  # the numbers: up fell from 1 to 0
    assert "runbooks.prometheus-operator.dev/runbooks/general/targetdown" in text
