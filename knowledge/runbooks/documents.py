"""Runbook documents: a Markdown file parsed into a title, the alerts and services it covers and
its sections (chunked by headings), with a digest for change detection."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from knowledge.text import split_camel

# Files in a runbook folder that are not runbooks: site indexes and repository boilerplate.
NOT_RUNBOOKS = frozenset({"readme", "source", "license", "changelog", "contributing", "index"})
SECTION_CHARS = 1500  # the model reads 256 word pieces; longer sections are cut for embedding
SUMMARY_CHARS = 1000
FRONT_MATTER_CHARS = 10_000  # title, alerts, services, tags: a few lines in practice
MAX_FILE_BYTES = 1_000_000  # a runbook is a page or two; anything larger is not one

_FRONT = re.compile(r"\A---\s*\n(.*?)\n---\s*\n", re.S)
_ALERT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*[A-Z][A-Za-z0-9]*$|^[A-Z][a-z0-9]+$")


@dataclass(frozen=True)
class Section:
    heading: str
    text: str


@dataclass
class RunbookDocument:
    path: str  # relative to the ingested directory, with forward slashes
    title: str
    alerts: list[str]
    services: list[str]
    sections: list[Section]
    digest: str
    headline: str = ""  # the title spelled out for reading (CamelCase split)

    @property
    def summary(self) -> str:
        """What the runbook is for: its title and first non-empty section (usually "Meaning")."""
        first = next((s.text for s in self.sections if s.text), "")
        return f"{self.headline}. {first[:SUMMARY_CHARS]}".strip()

    def chunks(self) -> Iterator[tuple[str, str]]:
        """(section heading, text to embed): the title alone, then each section with the title
        in front so a section keeps its context."""
        yield "", self.headline
        for s in self.sections:
            if s.text:
                yield s.heading, f"{self.headline}. {s.heading}: {s.text[:SECTION_CHARS]}"


class RunbookParseError(ValueError):
    pass


def is_runbook_file(path: Path) -> bool:
    name = path.stem.lower().lstrip("_")
    return path.suffix.lower() in {".md", ".markdown"} and name not in NOT_RUNBOOKS


def discover(root: Path) -> list[Path]:
    """The runbook files under `root`: regular files only, found without following a symlink
    (to a file or a folder), so nothing outside the folder is read; hidden paths skipped."""
    found: list[Path] = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            path = Path(folder, name)
            if not name.startswith(".") and is_runbook_file(path) and path.is_file() \
                    and not path.is_symlink():
                found.append(path)
    return sorted(found)


class _FrontMatterLoader(yaml.SafeLoader):
    """YAML's safe loader without aliases: front matter never needs one, and a few hundred
    bytes of nested aliases expand to gigabytes (the "billion laughs")."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            raise yaml.YAMLError("aliases (*name) are not allowed in front matter")
        return super().compose_node(parent, index)


def parse(text: str, path: str) -> RunbookDocument:
    digest = hashlib.sha256(text.encode()).hexdigest()
    front: dict[str, object] = {}
    m = _FRONT.match(text)
    if m:
        if len(m.group(1)) > FRONT_MATTER_CHARS:
            raise RunbookParseError(f"{path}: front matter is over {FRONT_MATTER_CHARS} "
                                    "characters")
        try:
            loaded = yaml.load(m.group(1), Loader=_FrontMatterLoader)  # a SafeLoader
        except yaml.YAMLError as exc:
            raise RunbookParseError(f"{path}: front matter is not valid YAML: {exc}") from exc
        front = loaded if isinstance(loaded, dict) else {}
        text = text[m.end():]
    h1 = re.search(r"^#\s+(.+?)\s*#*\s*$", text, re.M)
    stem = Path(path).stem
    title = (h1.group(1).strip() if h1 else None) or str(front.get("title") or stem)
    alerts = _list(front.get("alerts") or front.get("alert"))
    for candidate in (title, stem):
        if _ALERT_NAME.match(candidate) and candidate not in alerts:
            alerts.append(candidate)
    services = _list(front.get("services") or front.get("service") or front.get("tags"))
    return RunbookDocument(path=path, title=title, alerts=alerts, services=services,
                           sections=_sections(text), digest=digest, headline=split_camel(title))


def _sections(body: str) -> list[Section]:
    """Split at second- and third-level headings; text before the first is an "Overview"."""
    sections: list[Section] = []
    heading, lines = "Overview", list[str]()
    in_code = False
    for line in body.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^(#{2,3})\s+(.+?)\s*#*\s*$", line)
        if m:
            sections.append(Section(heading, "\n".join(lines).strip()))
            heading, lines = m.group(2), []
        elif not (not in_code and re.match(r"^#\s", line)):
            lines.append(line)
    sections.append(Section(heading, "\n".join(lines).strip()))
    return [s for s in sections if s.text or s.heading != "Overview"]


def _list(value: object) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [str(value)]
