"""The weekly digest and the noise the intake kept out of the channel: the quiet firings are
listed (which alert, where, how often, why), and the incident figures count posted incidents
only."""

from __future__ import annotations

from datetime import timedelta

from bot.render.digest import digest_sections
from knowledge.correlation import apply_alert
from knowledge.db import Database
from skills.digest.metrics import Period
from skills.digest.report import build_digest
from tests.knowledge.factories import T0, org_id
from tests.knowledge.test_noise_intake import INTAKE, NODE, alert


async def test_the_digest_lists_what_was_kept_quiet_and_counts_only_posted_incidents(
        database: Database) -> None:
    async with database.session() as s, s.begin():
        oid = await org_id(s)
        for i in range(3):  # an info alert firing three times: never posted
            quota = alert("KubeQuotaAlmostFull", at=i * 4000.0, severity="info",
                          namespace="search", job="kube-state-metrics")
            await apply_alert(s, org_id=oid, intake=INTAKE, signal=quota,
                              now=T0 + timedelta(seconds=i * 4000.0))
        node = alert("KubeNodeNotReady", at=100, severity="critical", node=NODE,
                     job="kube-state-metrics")
        await apply_alert(s, org_id=oid, intake=INTAKE, signal=node,
                          now=T0 + timedelta(seconds=130))
        digest = await build_digest(s, org_id=oid, org="acme",
                                    period=Period(T0, T0 + timedelta(days=1)))
    assert digest.incidents.total == 1  # the node, not the quiet quota alert
    assert digest.suppressed_firings == 3
    [quiet] = digest.suppressed
    assert (quiet.alertname, quiet.where, quiet.firings) == (
        "KubeQuotaAlmostFull", "namespace search", 3)
    text = "\n".join(body for _, body in digest_sections(digest))
    assert "3 firings judged noise and never posted" in text
    assert "**KubeQuotaAlmostFull** on namespace search: 3× — info alert on its own" in text
