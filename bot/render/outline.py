"""Reading a post-mortem draft for a chat summary, the same for every chat platform: its
title and the first paragraph under each heading, and text shortened at a word."""

from __future__ import annotations

import re

HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$")  # a Markdown heading's text

def outline(markdown: str) -> tuple[str | None, list[tuple[str, str]]]:
    """The `# title`, and each heading (lowercased) with the first paragraph under it."""
    title: str | None = None
    sections: list[tuple[str, list[str]]] = []
    para: list[str] = []
    done = False
    for line in markdown.splitlines():
        if heading := HEADING.match(line):
            name = heading.group(1).replace("**", "").strip()
            sections.append((name.lower(), para := []))
            done = False
            if title is None and re.match(r"^\s{0,3}#\s", line):
                title = name
        elif not done and sections:
            if line.strip():
                para.append(line)
            elif para:
                done = True
    return title, [(name, "\n".join(lines).strip()) for name, lines in sections]


def shorten(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    cut = text.rfind(" ", 0, limit - 1)
    return text[:cut if cut > limit // 2 else limit - 1].rstrip() + "…"
