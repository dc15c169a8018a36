"""The image and the chart agree (no image can be built on this machine: no Docker daemon, no
registry): the Dockerfile's last stage runs as the chart's uid, listens on the port the probes
and Service use, starts the `serve` command the pyproject installs, copies every package the
wheel is built from, and refuses to build without the embedding model loadable offline."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import yaml

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
    assert "download.pytorch.org/whl/cpu" in runs  # not the multi-GB CUDA build
    assert "Embedder().encode" in runs and "HF_HUB_OFFLINE=1" in runs
