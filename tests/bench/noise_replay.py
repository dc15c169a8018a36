"""The noise benchmark on the product itself: a generator's stream replayed through a real
Alertmanager (kube-prometheus-stack's configuration) into a real `sre-copilot serve` posting to
the local Slack fake, on an accelerated clock, then scored from `sre-copilot incidents --json`
as `tests/bench/noise.py` scores its simulation — printed beside that simulation's score for
the same seed, so a difference between the product and the benchmark's model of it shows.

The copilot runs as the held-back check is described: labels only (no `PROMETHEUS_URL`), on
SQLite in a temporary directory, a fresh one per seed. Notifications are
Alertmanager's own count (Watchdog's, routed to the copilot for the dead man's switch,
included); cards are the Slack fake's incident cards (a card later merged into another counts).

    .venv/bin/python -m tests.bench.noise_replay --generator noise_third --seeds 2 4 --scale 60

A 6-hour stream takes 6 minutes at `--scale 60`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import secrets
import subprocess
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests.bench.noise import Card, Score, alertmanager, correlated, score
from tests.fakes.alertmanager_replay import Replayer, kube_prometheus_config, settings_env
from tests.fakes.alertmanager_server import alertmanager as real_alertmanager
from tests.fakes.alertmanager_server import copilot_server, find_alertmanager, free_port
from tests.fakes.real_copilot import _executable
from tests.fakes.slack_api import running_slack


def replayed(stream: Any, scale: float, workdir: Path, database_url: str
             ) -> tuple[list[dict[str, Any]], float, int, Replayer]:
    """The incidents the copilot listed, Alertmanager's notification count, the Slack cards
    and the replayer (its clock maps the incidents' times back to the stream's)."""
    binary = find_alertmanager()
    if binary is None:
        raise SystemExit("the Alertmanager binary is not installed "
                         "(apt-get install prometheus-alertmanager)")
    token, port = secrets.token_urlsafe(16), free_port()
    config = kube_prometheus_config(f"http://127.0.0.1:{port}/webhooks/alertmanager", token,
                                    scale)
    with running_slack() as slack, real_alertmanager(binary, workdir / "am", config) as am, \
            copilot_server(_executable(), workdir / "copilot", database_url=database_url,
                           token=token, port=port, ready_timeout=90, extra_env={
                               **slack.copilot_env(), "SRE_COPILOT_HISTORY": "false",
                               "SRE_COPILOT_WORKER_POLL_SECONDS": "0.1",
                               **settings_env(scale)}):
        replay = Replayer(am.base_url, stream, datetime.now(UTC) + timedelta(seconds=1), scale)
        replay.run(stream.duration_s + 60)
        if replay.errors:
            raise SystemExit(f"Alertmanager refused alerts: {replay.errors[:3]}")
        # The last held warnings and lone warnings' cards are due at most a short span and a
        # group interval (900 s of the stream) after their alert.
        time.sleep(1200 / scale + 5)
        done = subprocess.run([_executable(), "incidents", "--json"], capture_output=True,
                              text=True, timeout=120, check=True,
                              env={"DATABASE_URL": database_url, "PATH": "/usr/bin:/bin",
                                   "SRE_COPILOT_DATA_DIR": str(workdir / "cli")})
        metrics = httpx.get(f"{am.base_url}/metrics", timeout=10).text
        sent = sum(float(line.rsplit(" ", 1)[1]) for line in metrics.splitlines()
                   if line.startswith("alertmanager_notifications_total")
                   and 'integration="webhook"' in line)
        return json.loads(done.stdout), sent, len(slack.incident_cards()), replay


def product_cards(stream: Any, listed: list[dict[str, Any]], replay: Replayer
                  ) -> list[tuple[str, Card]]:
    """The incidents the copilot posted, by id, as the stream's alerts they hold: each listed
    alert is the stream's alert with its labels that started nearest its start."""
    def index(alert: dict[str, Any]) -> int | None:
        at = replay.stream_seconds(datetime.fromisoformat(alert["starts_at"]))
        same = [i for i, a in enumerate(stream.alerts) if a.labels == alert["labels"]]
        return min(same, key=lambda i: abs(stream.alerts[i].starts_at - at)) if same else None

    cards = []
    for incident in listed:
        if incident["noise"] or incident["merged_into"] \
                or incident["title"].startswith("No Watchdog"):
            continue
        found = {i for a in incident["alerts"] if (i := index(a)) is not None}
        cards.append((incident["id"], Card(alerts=found, posted_at=0.0,
                                           placed_at=dict.fromkeys(found, 0.0))))
    return cards


def misjudged(stream: Any, cards: list[tuple[str, Card]]) -> list[str]:
    """The posted incidents that hold noise or more than one real incident, in words."""
    said = []
    for incident_id, card in cards:
        alerts = [stream.alerts[i] for i in sorted(card.alerts)]
        truths = sorted({a.truth for a in alerts if a.truth})
        noise = [f"{a.labels['alertname']} ({a.noise}, {a.starts_at:.0f}–"
                 f"{'' if a.ends_at is None else f'{a.ends_at:.0f}'} s)"
                 for a in alerts if a.noise]
        if noise or len(truths) > 1:
            said.append(f"{incident_id}: incidents {truths or 'none'}; noise {noise}")
    return said


def line(label: str, s: Score) -> str:
    return (f"{label:<30}{s.notifications:>6}{s.cards:>6}{s.reduction:>7.0%}"
            f"{s.detected:>4}/{s.incidents:<2}{s.fragmented:>5}{s.merged:>7}"
            f"{s.noise_posted:>7}/{s.noise_alerts:<6}  {'pass' if s.passes() else 'FAIL'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--generator", default="noise_third",
                        choices=["noise_cases", "noise_independent", "noise_third", "noise_fourth"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[2])
    parser.add_argument("--scale", type=float, default=60.0,
                        help="stream seconds per wall-clock second")
    parser.add_argument("--show", action="store_true",
                        help="list the product's cards that hold noise or two incidents")
    parser.add_argument("--keep", default="",
                        help="keep each seed's database and logs under this directory")
    args = parser.parse_args()
    module = importlib.import_module(f"tests.bench.{args.generator}")
    print(f"{'seed  run':<30}{'notes':>6}{'cards':>6}{'fewer':>7}{'found':>7}{'frag':>5}"
          f"{'merged':>7}{'noise posted':>14}  gate")
    for seed in args.seeds:
        stream = module.generate(seed)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(args.keep) / f"{args.generator}-{seed}" if args.keep else Path(tmp)
            workdir.mkdir(parents=True, exist_ok=True)
            url = f"sqlite:///{workdir / 'copilot.sqlite3'}"
            listed, sent, slack_cards, replay = replayed(stream, args.scale, workdir, url)
        posted = product_cards(stream, listed, replay)
        product = replace(score(stream, [], [card for _, card in posted]),
                          notifications=int(sent))
        notes = alertmanager(stream)
        model = score(stream, notes, correlated(stream, notes, use_topology=False))
        print(line(f"{seed:<6}product (Slack: {slack_cards})", product))
        print(line(f"{seed:<6}simulation", model), flush=True)
        if args.show:
            for said in misjudged(stream, posted):
                print(f"      {said}")


if __name__ == "__main__":
    main()
