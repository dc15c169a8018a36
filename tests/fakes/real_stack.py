"""A real alerting stack on loopback, and the real faults that set it off.

`RealStack` owns, for the length of a `with` block: a small test filesystem (tmpfs, or a loop
ext4 where tmpfs cannot be mounted), its own redis-server, a tiny HTTP endpoint whose status
the test switches, the Debian/upstream exporters watching them (node, redis, blackbox),
Prometheus evaluating kube-prometheus's rules (`for:` shortened, expressions unchanged) plus
the community Redis and blackbox alerts every second, and Alertmanager configured like
kube-prometheus's default, notifying the caller's webhook. Its methods inject faults (fill the
filesystem, kill Redis or its exporter, make the endpoint answer 500, saturate the CPU), heal
them, and wait for alerts. Everything it started is stopped, and the filesystem unmounted,
when the block ends, even on failure.

The configuration files are made in `tests.fakes.real_stack_config`; the redis-server, the
switchable endpoint and the filesystem mount in `tests.fakes.real_stack_parts`.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from tests.fakes import real_stack_config as cfg
from tests.fakes.alertmanager_server import Process, _running, free_port
from tests.fakes.real_stack_parts import (
    EndpointServer,
    Restartable,
    endpoint,
    mounted_filesystem,
    redis_server,
    required_binary,
)

# The node exporter's defaults minus the costly or irrelevant ones: what kube-prometheus's node
# rules and recording rules read (cpu, load, memory, filesystems, network, clock, fds, vmstat).
NODE_COLLECTORS = ("conntrack", "cpu", "diskstats", "filefd", "filesystem", "loadavg",
                   "meminfo", "netdev", "pressure", "stat", "time", "timex", "uname", "vmstat")
# Upstream's defaults, stated because Debian's build also excludes /run, /mnt and /media: the
# test filesystem is seen wherever the caller's directory is mounted. tmpfs is not excluded.
MOUNT_POINTS_EXCLUDE = "^/(dev|proc|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)"
FS_TYPES_EXCLUDE = ("^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|"
                    "fusectl|hugetlbfs|iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|"
                    "rpc_pipefs|securityfs|selinuxfs|squashfs|sysfs|tracefs)$")


def _matches(labels: Mapping[str, str], wanted: Mapping[str, str] | None) -> bool:
    return all(labels.get(k) == v for k, v in (wanted or {}).items())


class RealStack:
    """The stack described in the module docstring. Addresses are fixed at construction, so
    they are known before the stack starts; they are the exact `instance` labels."""

    def __init__(self, workdir: Path, *, webhook_url: str, webhook_token: str | None = None,
                 rules_dir: Path = cfg.RULES_DIR, for_cap_seconds: float = 5.0,
                 filesystem_mb: int = 20, ready_timeout: float = 60.0) -> None:
        self.workdir = workdir
        self.webhook_url = webhook_url
        self.webhook_token = webhook_token
        self.rules_dir = rules_dir
        self.for_cap_seconds = for_cap_seconds
        self.filesystem_mb = filesystem_mb
        self.ready_timeout = ready_timeout
        self.mountpoint = workdir / "fs"
        self.mount_method = ""
        self.prometheus_address = f"127.0.0.1:{free_port()}"
        self.alertmanager_address = f"127.0.0.1:{free_port()}"
        self.node_exporter_address = f"127.0.0.1:{free_port()}"
        self.redis_address = f"127.0.0.1:{free_port()}"
        self.redis_exporter_address = f"127.0.0.1:{free_port()}"
        self.blackbox_address = f"127.0.0.1:{free_port()}"
        self._endpoint_port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self._endpoint_port}/"
        self.prometheus_url = f"http://{self.prometheus_address}"
        self.alertmanager_url = f"http://{self.alertmanager_address}"
        self._stack = ExitStack()
        self._endpoint: EndpointServer | None = None
        self._redis: Restartable | None = None
        self._redis_exporter: Restartable | None = None
        self._stressors: list[subprocess.Popen[bytes]] = []
        self._client = httpx.Client(timeout=5.0)

    # --- lifecycle ---------------------------------------------------------------------------

    def __enter__(self) -> RealStack:
        try:
            self._start()
        except BaseException:
            self._stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop()

    def _stop(self) -> None:
        try:
            self.stop_saturating_cpu()
            self._stack.close()
        finally:
            self._client.close()

    def _start(self) -> None:
        # Debian's names first, then upstream's; the Debian package that provides each.
        binaries = {key: required_binary(package, *names) for key, package, names in (
            ("prometheus", "prometheus", ("prometheus",)),
            ("alertmanager", "prometheus-alertmanager",
             ("prometheus-alertmanager", "alertmanager")),
            ("node", "prometheus-node-exporter", ("prometheus-node-exporter", "node_exporter")),
            ("redis_exporter", "prometheus-redis-exporter",
             ("prometheus-redis-exporter", "redis_exporter")),
            ("blackbox", "prometheus-blackbox-exporter",
             ("prometheus-blackbox-exporter", "blackbox_exporter")),
            ("redis", "redis-server", ("redis-server",)),
        )}
        self.workdir.mkdir(parents=True, exist_ok=True)
        enter = self._stack.enter_context
        self.mount_method = enter(mounted_filesystem(self.mountpoint, self.filesystem_mb,
                                                     self.workdir / "fs.img"))
        self._endpoint = enter(endpoint(self._endpoint_port))
        redis_port = int(self.redis_address.rsplit(":", 1)[1])
        self._redis = Restartable(lambda n: redis_server(
            binaries["redis"], redis_port, self.workdir / "redis",
            self.workdir / f"redis-server.{n}.log"))
        self._stack.callback(self._redis.close)
        self._redis.start()
        self._redis_exporter = Restartable(lambda n: self._process(
            f"redis-exporter.{n}", self.redis_exporter_address, "/",
            [binaries["redis_exporter"], f"-redis.addr=redis://{self.redis_address}",
             f"-web.listen-address={self.redis_exporter_address}"]))
        self._stack.callback(self._redis_exporter.close)
        self._redis_exporter.start()
        enter(self._process("node-exporter", self.node_exporter_address, "/metrics", [
            binaries["node"], f"--web.listen-address={self.node_exporter_address}",
            "--collector.disable-defaults", *(f"--collector.{c}" for c in NODE_COLLECTORS),
            f"--collector.filesystem.mount-points-exclude={MOUNT_POINTS_EXCLUDE}",
            f"--collector.filesystem.fs-types-exclude={FS_TYPES_EXCLUDE}"]))
        self._write_yaml("blackbox.yml", cfg.blackbox_config())
        enter(self._process("blackbox-exporter", self.blackbox_address, "/-/healthy", [
            binaries["blackbox"], f"--config.file={self.workdir / 'blackbox.yml'}",
            f"--web.listen-address={self.blackbox_address}"]))
        self._write_yaml("alertmanager.yml", cfg.alertmanager_config(
            webhook_url=self.webhook_url, webhook_token=self.webhook_token))
        (self.workdir / "alertmanager").mkdir(exist_ok=True)
        enter(self._process("alertmanager", self.alertmanager_address, "/-/ready", [
            binaries["alertmanager"], f"--config.file={self.workdir / 'alertmanager.yml'}",
            f"--storage.path={self.workdir / 'alertmanager'}",
            f"--web.listen-address={self.alertmanager_address}",
            f"--web.external-url={self.alertmanager_url}/", "--cluster.listen-address="]))
        enter(self._process("prometheus", self.prometheus_address, "/-/ready", [
            binaries["prometheus"], f"--config.file={self._write_prometheus_config()}",
            f"--storage.tsdb.path={self.workdir / 'prometheus'}",
            f"--web.listen-address={self.prometheus_address}",
            # generatorURL and the UI's links are built from it.
            f"--web.external-url={self.prometheus_url}/",
            # Alerts that fire before Alertmanager is discovered (up to 5 s in) are dropped
            # and, by default, sent again only a minute later; resending every 2 s (alerts
            # then expire 8 s after the last evaluation) makes Alertmanager current at once.
            "--rules.alert.resend-delay=2s"]))
        self._wait_until_watching()

    def _process(self, name: str, address: str, ready_path: str,
                 argv: list[str]) -> AbstractContextManager[Process]:
        return _running(name, argv, log_path=self.workdir / f"{name}.log",
                        base_url=f"http://{address}", ready_path=ready_path,
                        ready_timeout=self.ready_timeout)

    def _write_yaml(self, name: str, data: Mapping[str, Any]) -> Path:
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(dict(data), sort_keys=False, width=100))
        return path

    def _write_prometheus_config(self) -> Path:
        rule_paths = [self._write_yaml(f"rules/{name}", groups) for name, groups in
                      cfg.rule_files(self.rules_dir, self.for_cap_seconds).items()]
        rule_paths.append(self._write_yaml("rules/community.yaml", cfg.community_rules()))
        return self._write_yaml("prometheus.yml", cfg.prometheus_config(
            rule_paths=rule_paths, alertmanager=self.alertmanager_address,
            node_exporter=self.node_exporter_address,
            redis_exporter=self.redis_exporter_address, blackbox=self.blackbox_address,
            probe_targets=[self.endpoint_url], prometheus=self.prometheus_address))

    def _wait_until_watching(self) -> None:
        """Until every target is scraped healthy, the test filesystem is seen, and Watchdog
        has gone all the way to Alertmanager (target and Alertmanager discovery hand over
        only every 5 s)."""
        checks = [f'up{{job="{job}"}} == 1' for job in cfg.NAMESPACES]
        checks += ["redis_up == 1", "probe_success == 1",
                   f'node_filesystem_size_bytes{{mountpoint="{self.mountpoint}"}}']
        for expr in checks:
            self.wait_for_query(expr, timeout=self.ready_timeout)
        deadline = time.monotonic() + self.ready_timeout
        while not self.alertmanager_alerts(alertname="Watchdog"):
            if time.monotonic() > deadline:
                raise TimeoutError("Watchdog never reached Alertmanager")
            time.sleep(0.2)

    # --- faults ------------------------------------------------------------------------------

    def fill_filesystem(self, percent: float = 97.0) -> float:
        """Writes a file so the test filesystem is at least `percent` full; returns the
        percentage used."""
        st = os.statvfs(self.mountpoint)
        size, avail = st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize
        # A few blocks' margin so "at least" holds after metadata rounding.
        to_write = avail - int(size * (100 - percent) / 100) + 4 * st.f_frsize
        chunk = b"\0" * (1024 * 1024)
        path = self.mountpoint / f"filler-{time.monotonic_ns()}.bin"
        try:
            with path.open("wb") as f:
                while to_write > 0:
                    to_write -= f.write(chunk[:min(len(chunk), to_write)])
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:  # full already: that is the fault
            if exc.errno != errno.ENOSPC:
                raise
        return self.filesystem_used_percent()

    def filesystem_used_percent(self) -> float:
        """As the rules see it: 100 - avail/size*100."""
        st = os.statvfs(self.mountpoint)
        return 100.0 - st.f_bavail / st.f_blocks * 100.0

    def free_filesystem(self) -> None:
        for path in self.mountpoint.glob("filler-*.bin"):
            path.unlink()

    def stop_redis(self) -> None:
        """Kills redis-server (SIGKILL): its exporter reports `redis_up 0`."""
        assert self._redis is not None, "the stack is not running"
        self._redis.kill()

    def restart_redis(self) -> None:
        assert self._redis is not None, "the stack is not running"
        self._redis.start()

    def stop_redis_exporter(self) -> None:
        """Kills the redis exporter (SIGKILL): `up{job="redis"} == 0`, TargetDown."""
        assert self._redis_exporter is not None, "the stack is not running"
        self._redis_exporter.kill()

    def restart_redis_exporter(self) -> None:
        assert self._redis_exporter is not None, "the stack is not running"
        self._redis_exporter.start()

    def fail_endpoint(self, status: int = 500) -> None:
        """The probed endpoint answers `status` from now on."""
        assert self._endpoint is not None, "the stack is not running"
        self._endpoint.status = status

    def heal_endpoint(self) -> None:
        self.fail_endpoint(200)

    def saturate_cpu(self, seconds: float, workers: int | None = None
                     ) -> subprocess.Popen[bytes]:
        """`stress-ng --cpu N` for `seconds` (N: one per core unless given), in the background;
        stopped by `stop_saturating_cpu()` or when the stack stops. For benchmarks: it takes
        the machine."""
        binary = required_binary("stress-ng", "stress-ng")
        n = workers or os.cpu_count() or 1
        log = (self.workdir / "stress-ng.log").open("ab")
        try:
            # Its own process group, so stopping it reaches every stressor it forked.
            popen = subprocess.Popen([binary, "--cpu", str(n), "--timeout", f"{seconds:g}s"],
                                     stdout=log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        finally:
            log.close()
        self._stressors.append(popen)
        return popen

    def stop_saturating_cpu(self) -> None:
        for popen in self._stressors:
            if popen.poll() is None:
                os.killpg(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(popen.pid, signal.SIGKILL)
                popen.wait(timeout=10)
        self._stressors.clear()

    # --- observing ---------------------------------------------------------------------------

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        response = self._client.get(f"{self.prometheus_url}/api/v1/query",
                                    params={"query": expr})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def wait_for_query(self, expr: str, *, timeout: float = 30.0) -> list[dict[str, Any]]:
        """Polls until `expr` returns something; returns it."""
        deadline = time.monotonic() + timeout
        while not (result := self.query(expr)):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{expr!r} returned nothing within {timeout:g} s")
            time.sleep(0.2)
        return result

    def alerts(self) -> list[dict[str, Any]]:
        """Prometheus' active (pending and firing) alerts."""
        response = self._client.get(f"{self.prometheus_url}/api/v1/alerts")
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()["data"]["alerts"]
        return alerts

    def wait_for_alert(self, name: str, *, state: str = "firing",
                       labels: Mapping[str, str] | None = None,
                       timeout: float = 30.0) -> dict[str, Any]:
        """Polls Prometheus until alert `name` (with these labels) is in `state` ("pending"
        or "firing"); returns it: labels, annotations, state, activeAt, value."""
        deadline = time.monotonic() + timeout
        while True:
            alerts = self.alerts()
            for alert in alerts:
                if (alert["labels"].get("alertname") == name and alert["state"] == state
                        and _matches(alert["labels"], labels)):
                    return alert
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {dict(labels or {})} not {state} within "
                                   f"{timeout:g} s. {self._explain(name, alerts)}")
            time.sleep(0.2)

    def wait_for_no_alert(self, name: str, *, labels: Mapping[str, str] | None = None,
                          timeout: float = 30.0) -> None:
        """Polls Prometheus until alert `name` (with these labels) is neither pending nor
        firing: resolved."""
        deadline = time.monotonic() + timeout
        while any(a["labels"].get("alertname") == name and _matches(a["labels"], labels)
                  for a in self.alerts()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} {dict(labels or {})} still active after "
                                   f"{timeout:g} s")
            time.sleep(0.2)

    def alertmanager_alerts(self, **labels: str) -> list[dict[str, Any]]:
        """Alertmanager's alerts (API v2) whose labels include `labels`, with their
        `receivers` and `status` (active, suppressed by inhibition…)."""
        filters = [f'{k}="{v}"' for k, v in labels.items()]
        response = self._client.get(f"{self.alertmanager_url}/api/v2/alerts",
                                    params={"filter": filters})
        response.raise_for_status()
        alerts: list[dict[str, Any]] = response.json()
        return alerts

    def _explain(self, name: str, alerts: list[dict[str, Any]]) -> str:
        active = sorted({f"{a['labels'].get('alertname')}({a['state']})" for a in alerts})
        response = self._client.get(f"{self.prometheus_url}/api/v1/rules",
                                    params={"type": "alert"})
        rules = [f"health={r.get('health')} error={r.get('lastError') or '-'} "
                 f"expr={r.get('query')!r}"
                 for g in response.json()["data"]["groups"] for r in g["rules"]
                 if r.get("name") == name]
        return (f"Active: {', '.join(active) or 'none'}. "
                f"Rule: {'; '.join(rules) or 'not loaded'}.")


def real_stack(workdir: Path, *, webhook_url: str, webhook_token: str | None = None,
               **options: Any) -> RealStack:
    """`with real_stack(tmp_path, webhook_url=...) as stack:` — see `RealStack`."""
    return RealStack(workdir, webhook_url=webhook_url, webhook_token=webhook_token, **options)
