"""The `sre-copilot` command as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy.engine import URL

from tests.conftest import url_string

CLI = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).resolve().parents[2]


def _run(args: list[str], cwd: Path, timeout: float = 120, **env: str
         ) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("SRE_COPILOT_", "DATABASE_URL", "ALERTMANAGER_", "PAGERDUTY_"))}
    clean["PYTHONPATH"] = str(ROOT)
    clean["COLUMNS"] = "120"
    return subprocess.run([*CLI, *args], cwd=cwd, env={**clean, **env}, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_demo_runs_on_a_fresh_directory_with_nothing_configured(tmp_path: Path) -> None:
    # The runbook step loads the embedding model and ingests the bundled runbooks: ~30 s on a
    # small, busy CPU.
    result = _run(["demo"], tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert (tmp_path / ".sre-copilot" / "demo.sqlite3").exists()
    assert "INC-1 checkout is failing over 10% of requests" in out
    # The evidence engine names the deploy, with numbers and their queries.
    assert "#1 checkout · deploy" in out
    assert "after deploy (version v2.13.2 → v2.14.0)" in out
    assert 'http_requests_total{service="checkout",code=~"5.."}' in out
    assert "💡 INC-1: look at checkout first (deploy" in out
    assert "🚀" in out and "Deploy checkout v2.13.2 → v2.14.0" in out
    chart = tmp_path / ".sre-copilot" / "demo" / "INC-1.png"
    assert chart.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    postmortem = (tmp_path / ".sre-copilot" / "demo" / "INC-1-postmortem.md").read_text()
    assert "## Root cause" in postmortem and "deploy of checkout" in postmortem
    assert "](<INC-1.png>)" in postmortem or "](INC-1.png)" in postmortem
    assert "401 refused (invalid_signature)" in out  # the forged webhook
    assert "0 stored, 2 repeats ignored" in out  # Alertmanager's retry
    assert "time to acknowledge 4m 00s" in out and "time to resolve 14m 00s" in out
    assert "CheckoutHighErrorRate [critical]" in out
    assert "note by Ana Ortiz: Errors started right after checkout v2.14.0" in out
    assert "🔥 INC-1 opened" in out and "✅ INC-1 resolved after 14 min" in out
    # The runbook the alert's runbook_url names, with its Mitigation section, from the demo's
    # own index; and an honest "no runbook" for a question none is about.
    runbook = out[out.index("6 bundled runbooks indexed (6 added)"):]
    assert "the incident's alert CheckoutHighErrorRate" in runbook
    assert "CheckoutHighErrorRate.md" in runbook and "Mitigation" in runbook
    assert "runbook_url — the alert's runbook_url annotation points at it" in runbook
    assert "kubectl -n shop rollout undo deployment/checkout" in runbook
    assert "CheckoutHighLatency → CheckoutHighLatency.md § Mitigation" in runbook
    assert "“the office printer on the third floor is jammed again”" in runbook
    assert "No runbook found for this" in runbook
    assert (tmp_path / ".sre-copilot" / "demo" / "chroma").is_dir()
    assert "Traceback" not in result.stderr
    # Running it again starts from a clean slate: still one incident. Without the embedding
    # model the demo says runbook search is unavailable, and why, and carries on.
    again = _run(["demo"], tmp_path, SRE_COPILOT_EMBEDDING_MODEL=str(tmp_path / "no-model"))
    assert again.returncode == 0, again.stderr
    assert "INC-1" in again.stdout and "INC-2" not in again.stdout
    assert "runbook search is unavailable: no model at" in again.stdout
    assert "bundled runbooks indexed" not in again.stdout
    assert "Next: `sre-copilot serve`" in again.stdout
    assert "Traceback" not in again.stderr


def test_db_upgrade_and_current(tmp_path: Path, db_url: URL) -> None:
    up = _run(["db", "upgrade"], tmp_path, DATABASE_URL=url_string(db_url))
    assert up.returncode == 0, up.stderr
    assert "is at 0012" in up.stdout
    cur = _run(["db", "current"], tmp_path, DATABASE_URL=url_string(db_url))
    assert cur.stdout.strip() == "0012"


def test_sqlite_default_lives_in_the_data_dir(tmp_path: Path) -> None:
    up = _run(["db", "upgrade"], tmp_path, SRE_COPILOT_DATA_DIR=str(tmp_path / "state"))
    assert up.returncode == 0, up.stderr
    assert (tmp_path / "state" / "sre-copilot.sqlite3").exists()


def test_a_bad_database_url_is_a_clear_error(tmp_path: Path) -> None:
    result = _run(["db", "upgrade"], tmp_path, DATABASE_URL="mysql://root@localhost/x")
    assert result.returncode == 2
    assert "only postgresql:// and sqlite:/// are supported" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_setting_is_a_clear_error(tmp_path: Path) -> None:
    result = _run(["db", "current"], tmp_path, SRE_COPILOT_MAX_BODY_BYTES="lots")
    assert result.returncode == 2
    assert "max_body_bytes" in result.stderr
