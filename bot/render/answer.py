"""An agent answer in the terminal (rich) and as JSON: the text, the hypotheses with the
evidence each cites (query, time range, numbers), charts, and how the answer was made."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markdown import Markdown
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from bot.agent.calls import evidence_line
from bot.agent.state import Answer


def as_json(answer: Answer, thread: str) -> dict[str, Any]:
    return {"thread": thread, "route": answer.route, "brain": answer.brain,
            "text": answer.text,
            "hypotheses": [c.model_dump(mode="json") for c in answer.claims],
            "evidence": [e.model_dump(mode="json") for e in answer.evidence],
            "images": [str(p) for p in answer.images], "notes": answer.notes,
            "tools": [t.model_dump(mode="json") for t in answer.tools], "usage": answer.usage}


def render(answer: Answer, console: Console) -> None:
    parts: list[RenderableType] = [Markdown(answer.text)]
    by_id = {e.id: e for e in answer.evidence}
    if answer.claims:
        table = Table(show_header=True, header_style="bold", expand=True, box=None)
        table.add_column("#", width=2)
        table.add_column("hypothesis", ratio=3)
        table.add_column("evidence", ratio=4)
        for i, c in enumerate(answer.claims, start=1):
            conf = f" [bold]{c.confidence:.0%}[/]" if c.confidence is not None else ""
            next_check = f"\n[dim]next: {c.next_check}[/]" if c.next_check else ""
            cites = "\n".join(evidence_line(by_id[e]) if e in by_id else f"[{e}] (earlier)"
                              for e in c.evidence_ids)
            table.add_row(str(i), Text.from_markup(f"{c.statement}{conf}{next_check}"),
                          Text(cites, style="cyan"))
        parts.append(table)
    elif answer.evidence and len(answer.evidence) <= 12:
        parts.append(Text("\n".join(evidence_line(e) for e in answer.evidence), style="dim"))
    for image in answer.images:
        parts.append(Text(f"📈 chart: {image}", style="green"))
    for note in answer.notes:
        parts.append(Text(f"⚠ {note}", style="yellow"))
    footer = answer.brain + (f" · {len(answer.tools)} tool call(s)" if answer.tools else "")
    console.print(Panel(Group(*parts), title=f"[bold]SRE Copilot[/] · {answer.route}",
                        subtitle=footer, subtitle_align="right", border_style="blue"))
