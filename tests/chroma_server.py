"""A real Chroma server (`chroma run`, from the chromadb package) on loopback, for the tests that
run several replicas against one index: the runbook CLI and the scale-out scenario."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.conftest import need
from tests.fakes.alertmanager_server import free_port, stop_process

CHROMA = Path(sys.executable).parent / "chroma"




@contextmanager
def running_chroma(directory: Path) -> Iterator[str]:
    """The server's URL, its data under `directory`; stopped afterwards."""
    need(CHROMA.is_file(), f"no chroma command at {CHROMA}")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = directory / "chroma.log"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [str(CHROMA), "run", "--path", str(directory / "data"), "--host", "127.0.0.1",
             "--port", str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    if httpx.get(f"{url}/api/v2/heartbeat", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    need(False, f"the Chroma server did not start: "
                                f"{log_path.read_text()[-2000:]}")
                time.sleep(0.2)
            yield url
        finally:
            stop_process(server, timeout=10)
