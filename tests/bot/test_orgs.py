"""Orgs with their own credentials, made as an operator does (`sre-copilot orgs add|rotate|
list`), on SQLite and PostgreSQL: each org's tokens and PagerDuty secret open that org only —
`?org=` cannot carry them elsewhere, and the same signed PagerDuty bytes replayed to another org
are refused; the environment's tokens open the default org only; each org's weekly digest goes
to its own Slack channel."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.cli import main
from bot.digest import run_digests
from bot.webhooks import intake as intake_module
from skills.digest.metrics import Period
from tests.conftest import Copilot
from tests.fakes import pagerduty as pd
from tests.fakes.alertmanager import alert, notification
from tests.fakes.slack_api import running_slack


@dataclass
class Ran:
    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def cli(copilot: Copilot, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
        ) -> Callable[..., Awaitable[Ran]]:
    """`sre-copilot orgs ARGS` as a user runs it (the CLI's `main`, its own event loop, in a
    thread), against the test's database; what it printed and its exit code."""
    for name in list(os.environ):
        if name.startswith(("SRE_COPILOT_", "DIGEST_", "SLACK_", "ALERTMANAGER_", "PAGERDUTY_",
                            "CHANGES_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SRE_COPILOT_DATA_DIR", str(copilot.settings.data_dir))
    monkeypatch.setenv("DATABASE_URL", copilot.settings.database_url or "")
    monkeypatch.setenv("SRE_COPILOT_LOG_LEVEL", "warning")

    async def run(*args: str) -> Ran:
        capsys.readouterr()
        code = await asyncio.to_thread(main, ["orgs", *args])
        out = capsys.readouterr()
        return Ran(code, out.out, out.err)

    return run


Cli = Callable[..., Awaitable[Ran]]


async def added(cli: Cli, slug: str, *args: str) -> dict[str, Any]:
    made = await cli("add", slug, "--json", *args)
    assert made.returncode == 0, made.stderr
    data: dict[str, Any] = json.loads(made.stdout)
    assert data["slug"] == slug and len(data["alertmanager_token"]) >= 40
    return data


async def am(copilot: Copilot, token: str, org: str | None = None) -> httpx.Response:
    return await copilot.client.post(
        "/webhooks/alertmanager", params={"org": org} if org else None,
        json=notification([alert("HighErrorRate")]),
        headers={"Authorization": f"Bearer {token}"})


async def changes(copilot: Copilot, token: str, org: str) -> httpx.Response:
    return await copilot.client.post(
        "/webhooks/changes", params={"org": org},
        json={"service": "checkout", "kind": "deploy", "version": "v2",
              "occurred_at": "2026-11-20T03:00:00Z"},
        headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(autouse=True)
def _fresh_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rotation reaches running replicas within ORG_TTL_S; here, at once."""
    monkeypatch.setattr(intake_module, "ORG_TTL_S", 0.0)


async def test_each_org_is_opened_by_its_own_credentials_only(copilot: Copilot,
                                                                cli: Cli) -> None:
    a = await added(cli, "acme", "--pagerduty-secret", "pd-acme")
    b = await added(cli, "globex", "--pagerduty-secret", "pd-globex")
    env_token = copilot.settings.alertmanager_webhook_token or ""
    # Alertmanager: each token opens its org; not the other, not the default.
    assert (await am(copilot, a["alertmanager_token"], "acme")).status_code == 202
    assert (await am(copilot, b["alertmanager_token"], "globex")).status_code == 202
    refused = await am(copilot, a["alertmanager_token"], "globex")
    assert refused.status_code == 401 and "globex" in refused.json()["detail"]
    assert (await am(copilot, a["alertmanager_token"])).status_code == 401
    # The environment's token: the default org only.
    assert (await am(copilot, env_token)).status_code == 202
    assert (await am(copilot, env_token, "acme")).status_code == 401
    # Changes: the same.
    assert (await changes(copilot, a["changes_token"], "acme")).status_code == 202
    assert (await changes(copilot, a["changes_token"], "globex")).status_code == 401
    assert (await changes(copilot, a["alertmanager_token"], "acme")).status_code == 401
    # PagerDuty: signed bytes for acme, replayed to globex and to the default org: refused.
    raw = pd.body(pd.incident_event("incident.triggered"))
    headers = {"X-PagerDuty-Signature": pd.sign(raw, "pd-acme"),
               "Content-Type": "application/json"}
    for org, status in (("acme", 202), ("globex", 401), (None, 401)):
        sent = await copilot.client.post("/webhooks/pagerduty", content=raw, headers=headers,
                                         params={"org": org} if org else None)
        assert sent.status_code == status, (org, sent.text)


async def test_rotation_retires_the_old_token_and_list_shows_no_secret(
        copilot: Copilot, cli: Cli) -> None:
    a = await added(cli, "acme")
    rotated = await cli("rotate", "acme", "--alertmanager", "--pagerduty-secret", "new-s",
                   "--json")
    assert rotated.returncode == 0, rotated.stderr
    new = json.loads(rotated.stdout)
    assert "changes_token" not in new and new["pagerduty_secrets"] == 1
    assert (await am(copilot, a["alertmanager_token"], "acme")).status_code == 401
    assert (await am(copilot, new["alertmanager_token"], "acme")).status_code == 202
    assert (await changes(copilot, a["changes_token"], "acme")).status_code == 202  # kept
    listed = await cli("list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["slug"]: row for row in json.loads(listed.stdout)}
    assert rows["acme"]["alertmanager_token"] is True and rows["acme"]["pagerduty_secrets"] == 1
    for secret in (a["alertmanager_token"], a["changes_token"], new["alertmanager_token"],
                   "new-s"):
        assert secret not in listed.stdout
    # Mistakes are refused with exit 2 and a reason.
    again = await cli("add", "acme")
    assert again.returncode == 2 and "exists" in again.stderr
    unknown = await cli("rotate", "nobody", "--changes")
    assert unknown.returncode == 2 and "orgs add nobody" in unknown.stderr
    nothing = await cli("rotate", "acme")
    assert nothing.returncode == 2 and "say what to rotate" in nothing.stderr
    bad = await cli("add", "../etc")
    assert bad.returncode == 2


async def test_an_org_without_its_own_token_says_how_to_get_one(copilot: Copilot,
                                                                 cli: Cli) -> None:
    made = await cli("add", "acme", "--json")
    assert made.returncode == 0
    async with copilot.db.session() as s, s.begin():
        from knowledge.orgs import get_org

        org = await get_org(s, slug="acme")
        org.alertmanager_token_sha256 = None
        s.add(org)
    refused = await am(copilot, "anything", "acme")
    assert refused.status_code == 401
    assert "orgs rotate acme --alertmanager" in refused.json()["detail"]


async def test_each_orgs_digest_goes_to_its_own_channel(copilot: Copilot, cli: Cli) -> None:
    with running_slack() as slack:
        own = slack.add_channel("globex-weekly", is_member=True).id
        shared = slack.add_channel("sre-weekly", is_member=True).id
        await added(cli, "acme")  # no destination: its digest goes nowhere
        await added(cli, "globex", "--digest-slack-channel", own)
        settings = copilot.settings.model_copy(update={
            "slack_bot_token": "xoxb-test", "slack_api_url": slack.base_url + "/api/",
            "digest_slack_channel": shared, "prometheus_url": None})
        end = datetime.now(UTC).replace(microsecond=0)
        posted = await run_digests(settings, copilot.db,
                                   period=Period(start=end - timedelta(days=7), end=end))
        assert posted == 3  # each org's digest made once, posted where it has a place

        def digests_in(channel: str) -> list[str]:
            return [str(c.params.get("text")) for c in slack.calls_to("chat.postMessage")
                    if c.params.get("channel") == channel]

        assert digests_in(own) and all("globex" in t for t in digests_in(own))
        # The default org's digest names no org: a lone team has no use for "default".
        assert digests_in(shared) and not any("globex" in t or "acme" in t or "· default ·" in t
                                              for t in digests_in(shared))
        everything = json.dumps([c.params for c in slack.calls_to("chat.postMessage")])
        assert "acme" not in everything
