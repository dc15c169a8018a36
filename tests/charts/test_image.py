"""The image and the chart agree (no image can be built on this machine: no Docker daemon, and
neither Docker Hub nor download.pytorch.org is reachable): the Dockerfile's last stage runs as
the chart's uid, listens on the port the probes and Service use, starts the `serve` command the
pyproject installs, copies every package the wheel is built from, and refuses to build without
the embedding model loadable offline. And what the image would hold runs as the chart runs it:
the wheel built from what the Dockerfile copies, with the image's environment, on a read-only
root filesystem (a mount namespace) with only the data volume and /tmp writable."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy.engine import URL

from tests.conftest import need, url_string
from tests.fakes.alertmanager import alert, notification
from tests.fakes.alertmanager_server import free_port

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
CHART = ROOT / "charts" / "sre-copilot"


def _stages() -> list[list[tuple[str, str]]]:
    """(instruction, arguments) per build stage, continuation lines joined."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[tuple[str, str]]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            stages.append([])
        if stages:
            stages[-1].append((word.upper(), rest.strip()))
    return stages


def test_the_last_stage_runs_serve_as_the_charts_user_on_its_port() -> None:
    build, final = _stages()[0], _stages()[-1]
    assert len(_stages()) == 2 and "AS build" in build[0][1]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    users = [args for word, args in final if word == "USER"]
    assert users == [str(values["podSecurityContext"]["runAsUser"])]
    assert users[0] != "0" and values["podSecurityContext"]["runAsNonRoot"] is True
    deployment = (CHART / "templates" / "deployment.yaml").read_text()
    exposed = [args for word, args in final if word == "EXPOSE"]
    assert exposed == ["8080"] and "containerPort: 8080" in deployment
    entry = json.loads(next(args for word, args in final if word == "ENTRYPOINT"))
    command = json.loads(next(args for word, args in final if word == "CMD"))
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entry == ["sre-copilot"] and "sre-copilot" in scripts
    assert command == ["serve", "--host", "0.0.0.0", "--port", "8080"]
    env = " ".join(args for word, args in final if word == "ENV")
    assert "SRE_COPILOT_DATA_DIR=/data" in env and "HF_HUB_OFFLINE=1" in env
    assert any(word == "COPY" and "--from=build" in args for word, args in final)


def test_the_build_stage_copies_every_package_and_checks_the_model() -> None:
    build = _stages()[0]
    copied = {args.split()[0] for word, args in build if word == "COPY"}
    packages = tomllib.loads((ROOT / "pyproject.toml").read_text())[
        "tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= copied
    assert all((ROOT / c).exists() for c in copied)
    runs = " ".join(args for word, args in build if word == "RUN")
    assert "torch" not in runs and "--index-url" not in runs  # no PyTorch, no CUDA build
    assert "Embedder().encode" in runs and "HF_HUB_OFFLINE=1" in runs


# -- the image's install, run as the chart runs it ----------------------------------------------


def _final_env() -> dict[str, str]:
    """The last stage's ENV settings."""
    pairs = [p for word, args in _stages()[-1] if word == "ENV" for p in shlex.split(args)]
    return dict(p.split("=", 1) for p in pairs)


def _read_only_root(data: Path, home: Path) -> list[str]:
    """A command prefix that runs its command with the root filesystem read-only and only
    `data` and `home` writable — the chart's `readOnlyRootFilesystem` with its data volume and
    `/tmp` — in a mount namespace of its own (the machine's mounts are untouched)."""
    script = ('mount --bind "$1" "$1" && mount --bind "$2" "$2" && mount -o remount,bind,ro / '
              '&& shift 2 && exec "$@"')
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
            str(data), str(home)]


def _can_make_root_read_only(tmp: Path) -> bool:
    probe = tmp / "probe"
    probe.mkdir()
    done = subprocess.run([*_read_only_root(probe, probe), "sh", "-c",
                           f"! touch {tmp}/outside 2>/dev/null && touch {probe}/inside"],
                          capture_output=True, timeout=30, check=False)
    return done.returncode == 0 and (probe / "inside").exists()


@pytest.mark.slow
def test_the_image_install_serves_on_a_read_only_root(tmp_path: Path, pg_url: URL) -> None:
    """What the image holds, run as the chart runs it: a wheel built from exactly what the
    Dockerfile copies, installed apart from the source tree, started with the image's
    environment by the migration Job's command and then `serve`, with the root filesystem
    read-only and only the data directory and HOME writable. It must migrate, load the
    embedding model offline, say ready, take an alert, open an incident, log JSON only and
    stop cleanly on SIGTERM."""
    need(shutil.which("unshare") is not None and _can_make_root_read_only(tmp_path),
         "this machine cannot make a read-only root in a mount namespace (unshare)")
    src, site = tmp_path / "src", tmp_path / "site"
    for word, args in _stages()[0]:
        if word == "COPY":
            *sources, _dest = args.split()
            for name in sources:
                if (ROOT / name).is_dir():
                    shutil.copytree(ROOT / name, src / name,
                                    ignore=shutil.ignore_patterns("__pycache__"))
                else:
                    src.mkdir(exist_ok=True)
                    shutil.copy2(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "wheel"), str(src)], check=True, timeout=300)
    [wheel] = (tmp_path / "wheel").glob("sre_copilot-*.whl")
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)],
                   check=True, timeout=300)
    data, home = tmp_path / "data", tmp_path / "home"
    data.mkdir()
    home.mkdir()
    inside = {"/data": str(data), "/tmp": str(home)}  # the image's paths, here
    image = {k: inside.get(v, v) for k, v in _final_env().items() if k != "PATH"}
    assert image["SRE_COPILOT_DATA_DIR"] == str(data) and image["HOME"] == str(home)
    token = "image-token"
    env = {**{k: v for k, v in os.environ.items()
              if not k.startswith(("SRE_COPILOT_", "DATABASE_", "SLACK_", "TEAMS_", "CHROMA_",
                                   "PROMETHEUS_", "ANTHROPIC_", "PAGERDUTY_", "DIGEST_"))},
           **image, "PYTHONPATH": str(site), "DATABASE_URL": url_string(pg_url),
           "ALERTMANAGER_WEBHOOK_TOKEN": token, "SRE_COPILOT_HISTORY": "true",
           # The chart mounts an emptyDir on /tmp; here `home` stands for it (SQLite, under
           # embedded Chroma, puts its temporary files there).
           "TMPDIR": str(home)}
    assert env["SRE_COPILOT_LOG_FORMAT"] == "json" and env["HF_HUB_OFFLINE"] == "1"
    jail = _read_only_root(data, home)
    python = [*jail, sys.executable]
    where = subprocess.run([*python, "-c", "import bot; print(bot.__file__)"], env=env,
                           cwd=data, capture_output=True, text=True, timeout=60, check=True)
    assert where.stdout.strip().startswith(str(site))  # the wheel's code, not the source tree

    # The chart's migration Job, then the pod with migrations off.
    job = subprocess.run([*python, "-m", "bot.cli", "db", "upgrade"], env=env, cwd=data,
                         capture_output=True, text=True, timeout=300, check=False)
    assert job.returncode == 0, job.stderr
    port = free_port()
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        server = subprocess.Popen([*python, "-m", "bot.cli", "serve", "--host", "127.0.0.1",
                                   "--port", str(port)],
                                  env={**env, "SRE_COPILOT_AUTO_MIGRATE": "false"}, cwd=data,
                                  stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, "never ready:\n" + log.read_text()[-3000:]
            try:
                if httpx.get(base + "/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        sent = httpx.post(base + "/webhooks/alertmanager", timeout=10,
                          headers={"Authorization": f"Bearer {token}"},
                          json=notification([alert("DiskFull", service="checkout")]))
        assert sent.status_code == 202
        deadline = time.monotonic() + 60
        while "INC-1 opened" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        code = server.wait(timeout=60)
    assert code in (0, -signal.SIGTERM), log.read_text()[-3000:]
    lines = [json.loads(line) for line in log.read_text().splitlines()]  # JSON, every line
    messages = " ".join(str(line.get("message")) for line in lines)
    assert "Read-only file system" not in messages and "Traceback" not in messages
    assert not [line for line in lines if line.get("levelname") in ("ERROR", "CRITICAL")]
    assert "Finished server process" in messages
    assert any(p.is_file() for p in data.rglob("*"))  # it wrote where it may: the data volume
