"""Text for Slack: Markdown → mrkdwn with everything untrusted escaped (so it can neither ping
`<!channel>` nor forge links; only Markdown links `[t](http…)` become Slack links), clipping that
breaks no link or entity, splitting at paragraphs outside code fences, and dates every reader
sees in their own time zone."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime

from bot.render.outline import HEADING
from bot.slack.limits import SECTION_TEXT_MAX
from skills.types import utc

FENCE = "```"


def escape(text: str) -> str:
    """The three characters Slack requires escaped in any text it should show as is."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


_FENCE_LINE = re.compile(r"^\s*(```|~~~)")
_TABLE_ROW = re.compile(r"^\s*\|.*\|\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(?=\S)")
_CODE_SPAN = re.compile(r"(`+)(.+?)\1")
_LINK = re.compile(r"\[([^\]\n]+)\]\(\s*<?([^)\s<>]+)>?(?:\s+\"[^\"]*\")?\s*\)"
                   r"|<((?:https?://|mailto:)[^\s<>]+)>")
_MENTION = re.compile(r"<(?:@[UW][A-Z0-9]+|#C[A-Z0-9]+(?:\|[\w-]*)?)>")
_BOLD = re.compile(r"\*\*(?=\S)(.+?)(?<=\S)\*\*|__(?=\S)(.+?)(?<=\S)__")
_STRIKE = re.compile(r"~~(?=\S)(.+?)(?<=\S)~~")
_KEPT = re.compile("\x00(\\d+)\x00")


def mrkdwn(markdown: str, *, mentions: bool = False) -> str:
    """Markdown → Slack mrkdwn: `**b**` → `*b*`, `[t](u)` → `<u|t>`, `# h` → `*h*`, `- item` →
    `• item`, fences without a language, tables fenced; everything else escaped. `*b*` stays
    (bold in Slack). `mentions` keeps user and channel mentions (`<@U…>`, `<#C…>`): only for text
    the copilot itself wrote, never the model's or an alert's."""
    out: list[str] = []
    fenced = table = False
    for line in markdown.replace("\x00", "").splitlines():
        if _FENCE_LINE.match(line) or fenced:
            if table:
                out.append(FENCE)
                table = False
            if _FENCE_LINE.match(line):
                fenced = not fenced
                out.append(FENCE)
            else:
                out.append(escape(line))
            continue
        if bool(_TABLE_ROW.match(line)) != table:
            table = not table
            out.append(FENCE)
        if table:
            out.append(escape(line))
        elif heading := HEADING.match(line):
            out.append(f"*{inline(heading.group(1).replace('**', ''), mentions)}*")
        elif bullet := _BULLET.match(line):
            out.append(f"{bullet.group(1)}• {inline(line[bullet.end():], mentions)}")
        else:
            out.append(inline(line, mentions))
    if fenced or table:
        out.append(FENCE)
    return "\n".join(out)


def inline(text: str, mentions: bool = False) -> str:
    kept: list[str] = []

    def keep(markup: str) -> str:
        kept.append(markup)
        return f"\x00{len(kept) - 1}\x00"

    def restore(s: str) -> str:
        return _KEPT.sub(lambda m: kept[int(m.group(1))], s)

    def link(m: re.Match[str]) -> str:
        label, url = (m.group(1), m.group(2)) if m.group(2) else (None, m.group(3))
        if not url.startswith(("https://", "http://", "mailto:")):
            return m.group(0)  # escaped with the text around it
        target = url.replace("&", "&amp;").replace("|", "%7C")
        shown = restore(_emphasis(escape(label))) if label else None
        return keep(f"<{target}|{shown}>" if shown else f"<{target}>")

    text = _CODE_SPAN.sub(lambda m: keep(f"`{escape(m.group(2))}`"), text)
    if mentions:
        text = _MENTION.sub(lambda m: keep(m.group(0)), text)
    text = _LINK.sub(link, text)
    return restore(_emphasis(escape(text)))


def _emphasis(text: str) -> str:
    text = _BOLD.sub(lambda m: f"*{m.group(1) or m.group(2)}*", text)
    return _STRIKE.sub(r"~\1~", text)


def clip_mrkdwn(text: str, limit: int) -> str:
    """`clip` for mrkdwn: the cut breaks no `<…>` link or `&…;` entity and closes an open code
    fence."""
    if len(text) <= limit:
        return text
    head = text[:_safe_cut(text, limit - 1)] + "…"
    if head.count(FENCE) % 2:
        head = text[:_safe_cut(text, limit - 2 - len(FENCE))] + "…\n" + FENCE
    return head


def _safe_cut(text: str, at: int) -> int:
    """`at`, moved back so the cut is not inside a `<…>` link or an `&…;` entity."""
    lt = text.rfind("<", 0, at)
    if lt > text.rfind(">", 0, at) and lt > 0:
        at = lt
    amp = text.rfind("&", max(0, at - 5), at)
    if amp >= 0 and ";" not in text[amp:at]:
        at = amp
    return at


def split_text(text: str, limit: int = SECTION_TEXT_MAX) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, else a line, else a word, outside
    code fences and `<…>` links if at all possible; a fence that must be cut is closed at the end
    of one piece and reopened at the start of the next."""
    pieces: list[str] = []
    rest = text
    while len(rest) > limit:
        cut, resume = _cut(rest, limit)
        head, rest = rest[:cut], rest[resume:]
        if head.count(FENCE) % 2:
            head, rest = head + "\n" + FENCE, FENCE + "\n" + rest
        else:
            head, rest = head.rstrip(), rest.lstrip("\n")
        if head.strip():
            pieces.append(head)
    if rest.strip():
        pieces.append(rest)
    return pieces


def _cut(s: str, limit: int) -> tuple[int, int]:
    """Where to cut `s` (the piece is `s[:cut]`) and where the rest resumes."""
    def fenced(j: int) -> bool:
        return s.count(FENCE, 0, j) % 2 == 1

    def in_link(j: int) -> bool:
        return s.rfind("<", 0, j) > s.rfind(">", 0, j)

    for sep in ("\n\n", "\n", " "):
        j = _last(s, sep, limit, 1, lambda j: not fenced(j) and not in_link(j))
        if j is not None:
            return j, j + len(sep)
    # Inside a fence (4 characters kept to close it), and far enough in to make progress.
    low, budget = limit // 4, limit - len(FENCE) - 1
    for sep in ("\n", " "):
        j = _last(s, sep, budget, low, lambda j: not in_link(j))
        if j is not None:
            return j, j + 1
    at = _safe_cut(s, budget)
    return (at, at) if at >= low else (budget, budget)


def _last(s: str, sep: str, budget: int, low: int, ok: Callable[[int], bool]) -> int | None:
    j = s.rfind(sep, low, budget + len(sep))
    while j >= max(low, 1):
        if ok(j):
            return j
        j = s.rfind(sep, low, j + len(sep) - 1)
    return None


def slack_date(at: datetime, token: str = "{date_short_pretty} {time}") -> str:
    """A time every reader sees in their own time zone, with a UTC fallback."""
    at = utc(at)
    return f"<!date^{int(at.timestamp())}^{token}|{at:%Y-%m-%d %H:%M} UTC>"

