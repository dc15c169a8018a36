"""Markdown → Adaptive Card TextBlocks. Teams' TextBlock renders a Markdown subset (`**bold**`,
`_italic_`, lists, `[t](u)` links) and nothing else is escaped: text cannot ping anyone in Teams
without `msteams.entities`. Headings become bold lines, single line breaks become `\\n\\n`
(Teams ignores a lone `\\n` outside lists), and fenced code and tables become monospace
TextBlocks with their indentation kept."""

from __future__ import annotations

import re
from typing import Any

from bot.render.outline import HEADING
from bot.teams.layout import NBSP, Unit, split_text, text_block

_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_LIST_ITEM = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])\s+(?=\S)")
_AUTOLINK = re.compile(r"<((?:https?://|mailto:)[^\s<>]+)>")
_UNDERSCORE_BOLD = re.compile(r"__(?=\S)(.+?)(?<=\S)__")
_BLANK_EDGES = re.compile(f"^({NBSP}\n\n)+|(\n\n{NBSP})+$")


def markdown_body(markdown: str, **props: Any) -> list[Unit]:
    """Markdown as TextBlocks of at most TEXT_MAX characters: prose cut at line, else word
    boundaries; each fenced block one monospace unit (its pieces kept on one card when they
    fit, else continued, still monospace, on the next); a table a list, a row an item."""
    units: list[Unit] = []
    for code, text in _segments(markdown):
        pieces = [text_block(p, **props, **({"fontType": "Monospace"} if code else {}))
                  for p in split_text(text)]
        units += [tuple(pieces)] if code and pieces else pieces
    return units


def _segments(markdown: str) -> list[tuple[bool, str]]:
    """The Markdown's prose and code (fences, tables) runs, in order, as Teams text."""
    runs: list[tuple[bool, list[str]]] = []

    def add(code: bool, line: str, sep: str = "\n\n") -> None:
        if not runs or runs[-1][0] != code:
            runs.append((code, []))
        lines = runs[-1][1]
        lines.append((sep if lines else "") + line)

    fenced, listed = False, ""  # listed: the list the previous line belongs to ("-", "1.")
    for line in markdown.replace("\x00", "").splitlines():
        if _FENCE_LINE.match(line):
            fenced, listed = not fenced, ""
            runs.append((True, []))  # a new block, even right after another one
            continue
        if fenced:
            add(True, _code_line(line))
            listed = ""
        elif _TABLE_ROW.match(line):
            # Teams' TextBlock has no tables and a monospace grid wraps into a wall of pipes
            # at card width: each row becomes a list item, its cells joined.
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if all(re.fullmatch(r":?-{2,}:?", c) for c in cells if c) or not any(cells):
                continue  # the header's rule
            add(False, "- " + " · ".join(c for c in cells if c), "\n" if listed == "-" else "\n\n")
            listed = "-"
        elif not line.strip():
            continue
        elif heading := HEADING.match(line):
            add(False, f"**{heading.group(1).replace('**', '')}**")
            listed = ""
        else:
            line = _AUTOLINK.sub(r"[\1](\1)", _UNDERSCORE_BOLD.sub(r"**\1**", line))
            kind = listed if listed and line[:1].isspace() else ""  # a continuation
            if item := _LIST_ITEM.match(line):
                marker = "-" if item.group(2) in "-*+" else item.group(2)
                line = f"{item.group(1)}{marker} {_task(line[item.end():])}"
                kind = kind or ("-" if marker == "-" else "1.")
            # Teams breaks a line on `\n` only between items of one list, else on `\n\n`.
            add(False, line if kind else line.strip(), "\n" if kind and kind == listed else "\n\n")
            listed = kind
    texts = [(code, "".join(lines)) for code, lines in runs]
    return [(code, _BLANK_EDGES.sub("", text) if code else text) for code, text in texts
            if text.strip(NBSP + " \n")]


def _code_line(line: str) -> str:
    """A code line whose indentation survives Markdown (non-breaking spaces); blank → NBSP."""
    line = line.expandtabs(4).rstrip()
    body = line.lstrip(" ")
    return NBSP * (len(line) - len(body)) + body if body else NBSP




def _task(item: str) -> str:
    """A task-list item as Teams can show it: `[ ]` → ☐, `[x]` → ☑."""
    return re.sub(r"^\[ \]\s*", "☐ ", re.sub(r"^\[[xX]\]\s*", "☑ ", item))
