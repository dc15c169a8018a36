"""What the intake knows of the cluster: kube-state-metrics' placement of pods on nodes and
under workloads, read from Prometheus and kept for a fifth of the correlation window (pods
move slowly next to a window of minutes; a storm of alerts costs one query, not one each);
and which alerts Prometheus shows firing, read when a held warning's wait could end early.

Without Prometheus, or when it fails, the topology is empty and alerts are related by their
labels alone — the intake never waits on it for longer than Prometheus' timeout."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

from bot.settings import Settings
from knowledge.relate import Topology
from knowledge.types import utcnow
from skills.kube_relations import placement, topology
from skills.prometheus.client import PrometheusClient

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TopologyCache:
    settings: Settings
    _topology: Topology = field(default_factory=Topology, init=False)
    _read_at: float | None = field(default=None, init=False)
    _refreshing: asyncio.Task[None] | None = field(default=None, init=False, repr=False)

    @property
    def max_age(self) -> float:
        return self.settings.correlation_window_seconds / 5

    async def current(self) -> Topology:
        """The topology: read once before the first alert is placed, then refreshed in the
        background when stale — the intake never waits on Prometheus again."""
        if self.settings.prometheus_url is None:
            return self._topology
        if self._read_at is None:
            await self._refresh()
        elif time.monotonic() - self._read_at >= self.max_age and (
                self._refreshing is None or self._refreshing.done()):
            self._refreshing = asyncio.create_task(self._refresh(), name="topology")
        return self._topology

    async def _refresh(self) -> None:
        self._read_at = time.monotonic()
        end = utcnow()
        found = await self._ask("the cluster's topology", lambda prom: placement(
            prom, start=end - timedelta(minutes=15), end=end))
        if found is not None:
            self._topology = topology(found)

    async def firing(self) -> list[dict[str, str]] | None:
        """The alerts Prometheus itself shows firing now (their labels), read fresh; None
        without Prometheus or when it fails (then held alerts wait for Alertmanager)."""
        shown = await self._ask("Prometheus' firing alerts", lambda prom: prom.alerts())
        if shown is None:
            return None
        return [{str(k): str(v) for k, v in (a.get("labels") or {}).items()}
                for a in shown if a.get("state") == "firing"]

    async def _ask(self, what: str, read: Callable[[PrometheusClient], Awaitable[T]]
                   ) -> T | None:
        """One read of Prometheus; None without it or when it fails — a failing Prometheus
        must not stop the intake."""
        if self.settings.prometheus_url is None:
            return None
        try:
            async with PrometheusClient(self.settings.prometheus_url,
                                        timeout=self.settings.prometheus_timeout_seconds
                                        ) as prom:
                return await read(prom)
        except Exception as exc:
            log.warning("reading %s failed: %s", what, exc)
            return None
