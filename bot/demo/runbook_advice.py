"""The demo's runbook step: the bundled runbooks (bot/demo/runbooks/) ingested into an index of
the demo's own, the runbook recommended for the incident's alerts, and the answer to a question
no runbook covers — shown in a "runbook" panel.

The index lives in `<data dir>/demo/`, apart from the data directory's own (and from CHROMA_URL):
the demo never adds its sample runbooks to a real index. Ingestion is idempotent, so a second run
only loads the model and searches. Ingesting and searching are synchronous (ONNX Runtime,
chromadb) and run in a thread.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.indexes import open_indexes
from bot.settings import Settings
from knowledge.alerts import Alert
from knowledge.embedding import EmbeddingModelMissing
from knowledge.runbooks.documents import RunbookParseError, parse
from knowledge.runbooks.index import IngestReport
from skills.runbooks.search import (
    RunbookAnswer,
    RunbookHit,
    RunbookQuery,
    query_for_alert,
    search,
)

RUNBOOKS = Path(__file__).parent / "runbooks"
UNRELATED_QUESTION = "the office printer on the third floor is jammed again"
EXCERPT_LINES = 8
REASONS = {"runbook_url": "the alert's runbook_url annotation points at it",
           "alert name": "the runbook covers the alert's name",
           "similarity": "its text is about the alert"}


@dataclass(frozen=True)
class AlertAsked:
    alertname: str
    answer: RunbookAnswer


@dataclass(frozen=True)
class RunbookAdvice:
    report: IngestReport
    alerts: list[AlertAsked]
    question: RunbookAnswer


def advise(settings: Settings, alerts: list[Alert], question: str = UNRELATED_QUESTION
           ) -> RunbookAdvice:
    """Synchronous: ingest the bundled runbooks into the demo's index and ask it."""
    demo = settings.model_copy(update={"data_dir": settings.data_dir / "demo",
                                       "chroma_url": None})
    indexes = open_indexes(demo)
    report = indexes.runbooks.ingest(RUNBOOKS)
    asked = [AlertAsked(a.alertname, search(indexes.runbooks, query_for_alert(a))) for a in alerts]
    answer = search(indexes.runbooks, RunbookQuery(text=question))
    return RunbookAdvice(report=report, alerts=asked, question=answer)


async def runbook_advice(console: Console, settings: Settings, alerts: list[Alert]
                         ) -> RunbookAdvice | None:
    """The advice, or None (said in one dim line) when the embedding model is missing."""
    try:
        return await asyncio.to_thread(advise, settings, alerts)
    except EmbeddingModelMissing as exc:
        console.print(Text(f"\nrunbook search is unavailable: {exc}", style="dim"))
        return None


def lead_of(advice: RunbookAdvice | None) -> RunbookHit | None:
    """The runbook the investigation cites: the first alert's top hit, unless it abstained."""
    for asked in advice.alerts if advice else []:
        if not asked.answer.abstained and asked.answer.results:
            return asked.answer.results[0]
    return None


def show_runbooks(console: Console, advice: RunbookAdvice | None) -> None:
    if advice is not None:
        console.print()
        console.print(render(advice))


def render(advice: RunbookAdvice) -> Panel:
    report = advice.report
    changes = ", ".join(f"{n} {what}" for n, what in (
        (len(report.added), "added"), (len(report.updated), "updated"),
        (len(report.removed), "removed"), (report.unchanged, "unchanged")) if n)
    parts: list[RenderableType] = [Text(
        f"{report.total} bundled runbooks indexed ({changes or 'none'}) from {report.root}",
        style="dim")]
    for error in report.errors:
        parts.append(Text(f"skipped {error}", style="yellow"))
    for i, asked in enumerate(advice.alerts):
        answer = asked.answer
        top = answer.results[0] if answer.results and not answer.abstained else None
        if i == 0:
            parts += ["", Text.assemble(("the incident's alert ", "bold"),
                                        (asked.alertname, "bold red"))]
            parts += _detail(top, answer)
        elif top is not None:
            parts.append(Text.assemble(("also ", "dim"), (asked.alertname, "bold"), " → ",
                                       (_where(top), "cyan"),
                                       f"  score {top.score:.2f} ({top.reason})"))
        else:
            parts.append(Text.assemble(("also ", "dim"), (asked.alertname, "bold"), " → ",
                                       answer.message))
    question = advice.question
    parts += ["", Text.assemble(("asked ", "bold"), f"“{question.query}”"),
              Text.assemble(("answer ", "bold"),
                            (question.message, "yellow" if question.abstained else ""))]
    return Panel(Group(*parts), title="runbook", border_style="cyan", expand=False)


def _detail(top: RunbookHit | None, answer: RunbookAnswer) -> list[RenderableType]:
    if top is None:
        return [Text(answer.message, style="yellow")]
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="dim")
    facts.add_column()
    facts.add_row("runbook", Text(top.title, style="bold"))
    facts.add_row("path", Text(top.path, style="cyan"))
    facts.add_row("section", Text(top.section or "—"))
    facts.add_row("score", f"{top.score:.2f}")
    facts.add_row("reason", Text(f"{top.reason} — {REASONS.get(top.reason, top.reason)}"))
    out: list[RenderableType] = [facts]
    excerpt = section_excerpt(top)
    if excerpt:
        out += [Text(f"§ {top.section}", style="bold"), Padding(Text(excerpt), (0, 0, 0, 2)), ""]
    return out


def _where(hit: RunbookHit) -> str:
    return hit.path + (f" § {hit.section}" if hit.section else "")


def section_excerpt(hit: RunbookHit, lines: int = EXCERPT_LINES) -> str:
    """The first lines of the hit's section, read from the runbook file ('' when the file is
    not on disk, e.g. a runbook_url that no ingested runbook matches)."""
    if not hit.root or not hit.section:
        return ""
    try:
        doc = parse((Path(hit.root) / hit.path).read_text(encoding="utf-8"), hit.path)
    except (OSError, UnicodeDecodeError, RunbookParseError):
        return ""
    text = next((s.text for s in doc.sections if s.heading == hit.section), "")
    return "\n".join(text.splitlines()[:lines])
