"""Digest runs on SQLite and PostgreSQL: one claim per org and period; a claim left by a replica
that died is taken over once its lease is out, and what it already posted is not posted again."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from knowledge.db import Database
from knowledge.digests import claim_run, finish_run, mark_platform_posted
from knowledge.orgs import ensure_org

START, END = datetime(2026, 11, 9, tzinfo=UTC), datetime(2026, 11, 16, tzinfo=UTC)


async def test_one_claim_per_period_and_a_dead_claim_is_taken_over(database: Database) -> None:
    async with database.session() as s, s.begin():
        org = await ensure_org(s, slug="default")
    assert org.id is not None

    async def claim(by: str, lease: timedelta) -> int | None:
        async with database.session() as s, s.begin():
            run = await claim_run(s, org_id=org.id or 0, period_start=START, period_end=END,
                                  by=by, lease=lease)
            return run.id if run is not None else None

    first = await claim("replica-a", timedelta(minutes=10))
    assert first is not None
    assert await claim("replica-b", timedelta(minutes=10)) is None  # lost the race
    # replica-a posted to Slack, then died before Teams; its lease runs out.
    async with database.session() as s, s.begin():
        await mark_platform_posted(s, run_id=first, platform="slack")
    taken = await claim("replica-b", timedelta(0))
    assert taken == first
    async with database.session() as s:
        from knowledge.digests import runs

        [run] = await runs(s, org_id=org.id)
    assert run.claimed_by == "replica-b" and run.slack_posted_at is not None
    assert run.teams_posted_at is None  # left for replica-b to finish
    async with database.session() as s, s.begin():
        await finish_run(s, run_id=first)
    assert await claim("replica-c", timedelta(0)) is None  # finished: nobody posts again
