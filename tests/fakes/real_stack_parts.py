"""The local pieces of the real alerting stack (`tests.fakes.real_stack`) that are not
Prometheus-family servers: finding binaries, a redis-server of its own, a process that a fault
kills and a heal restarts, an HTTP endpoint whose status code a test switches, and a small
filesystem mounted for filling.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from tests.conftest import need
from tests.fakes.alertmanager_server import Process, stop_process


def find_binary(*names: str) -> str | None:
    """The first of `names` on PATH (Debian's `prometheus-*` names, then upstream's)."""
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


def required_binary(package: str, *names: str) -> str:
    found = find_binary(*names)
    need(found is not None, f"{names[0]} is not installed "
                            f"(apt-get install --no-install-recommends {package})")
    assert found is not None
    return found


@contextmanager
def redis_server(binary: str, port: int, workdir: Path, log_path: Path, *,
                 ready_timeout: float = 10.0) -> Iterator[Process]:
    """A redis-server on `port`: no persistence, its own directory, ready once it PONGs."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(workdir), "--daemonize", "no"]
    with log_path.open("w") as log:
        popen = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL)
        proc = Process(name="redis-server", popen=popen, log_path=log_path,
                       base_url=f"redis://127.0.0.1:{port}")
        try:
            deadline = time.monotonic() + ready_timeout
            while not _pongs(port):
                if popen.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"redis-server not ready\n{proc.describe()}")
                time.sleep(0.05)
            yield proc
        finally:
            stop_process(popen, timeout=10)


def _pongs(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class Restartable:
    """A process that a fault kills and a heal starts again, same argv and port; each run
    logs to its own file (`start(n)` gets the run number)."""

    def __init__(self, start: Callable[[int], AbstractContextManager[Process]]) -> None:
        self._start = start
        self._stack = ExitStack()
        self._runs = 0
        self.process: Process | None = None

    def start(self) -> Process:
        if self.process is not None and self.process.popen.poll() is None:
            return self.process
        self.close()
        self._stack = ExitStack()
        self._runs += 1
        self.process = self._stack.enter_context(self._start(self._runs))
        return self.process

    def kill(self) -> None:
        """SIGKILL: a crash, not a clean shutdown."""
        if self.process is not None and self.process.popen.poll() is None:
            self.process.popen.kill()
            self.process.popen.wait(timeout=10)
        self.close()

    def close(self) -> None:
        self._stack.close()
        self.process = None


class EndpointServer(ThreadingHTTPServer):
    """Answers every GET with `status` (a test sets it) and a one-line body."""

    daemon_threads = True
    status = 200


class _EndpointHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        assert isinstance(self.server, EndpointServer)
        body = f"status {self.server.status}\n".encode()
        self.send_response(self.server.status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def endpoint(port: int) -> Iterator[EndpointServer]:
    server = EndpointServer(("127.0.0.1", port), _EndpointHandler)
    thread = threading.Thread(target=server.serve_forever, name="real-stack-endpoint",
                              daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    except OSError as exc:  # e.g. no mkfs.ext4 on this machine
        return subprocess.CompletedProcess(argv, 127, "", str(exc))


@contextmanager
def mounted_filesystem(mountpoint: Path, size_mb: int, image: Path) -> Iterator[str]:
    """Mounts a `size_mb` filesystem on `mountpoint` (needs root): tmpfs, else a loop ext4
    without reserved blocks (so available == free, as on tmpfs). Yields the method used;
    unmounts when done."""
    need(os.geteuid() == 0, "the real stack mounts a test filesystem: run as root")
    mountpoint.mkdir(parents=True, exist_ok=True)
    tried: list[str] = []
    done = _run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(mountpoint)])
    method = "tmpfs" if done.returncode == 0 else ""
    if not method:
        tried.append(f"tmpfs: {done.stderr.strip()}")
        with image.open("wb") as f:
            f.truncate(size_mb * 1024 * 1024)
        for argv in (["mkfs.ext4", "-F", "-q", "-m", "0", str(image)],
                     ["mount", "-o", "loop", str(image), str(mountpoint)]):
            done = _run(argv)
            if done.returncode != 0:
                tried.append(f"{argv[0]}: {done.stderr.strip()}")
                break
        else:
            method = "loop ext4"
    need(bool(method), f"cannot mount a test filesystem (root needed): {'; '.join(tried)}")
    try:
        yield method
    finally:
        if _run(["umount", str(mountpoint)]).returncode != 0:
            _run(["umount", "-l", str(mountpoint)])  # busy: detach now, freed when unused
