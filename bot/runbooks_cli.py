"""`sre-copilot runbooks ingest PATH` and `sre-copilot runbooks search [--json] [QUERY]`.

With no QUERY, search reads one query per line from standard input and answers each as it comes
(one JSON line per query with --json), so a file of alert texts can be piped through: line N of
the output always answers line N of the input, a blank line included (abstained, with a reason).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TextIO

from bot.indexes import open_indexes
from bot.settings import Settings
from skills.runbooks.search import RunbookAnswer, RunbookQuery, search


def ingest(settings: Settings, path: Path, out: TextIO = sys.stdout) -> int:
    if not path.is_dir():
        print(f"sre-copilot runbooks ingest: {path} is not a directory", file=sys.stderr)
        return 2
    index = open_indexes(settings).runbooks
    report = index.ingest(path)
    print(f"{report.root}: {len(report.added)} added, {len(report.updated)} updated, "
          f"{len(report.removed)} removed, {report.unchanged} unchanged", file=out)
    for error in report.errors:
        print(f"  skipped {error}", file=sys.stderr)
    return 1 if report.errors and not report.total else 0


def run_search(settings: Settings, query: str | None, *, json_out: bool, k: int = 3,
               stdin: TextIO = sys.stdin, out: TextIO = sys.stdout) -> int:
    if query is not None and not query.strip():
        print("sre-copilot runbooks search: the query is empty", file=sys.stderr)
        return 2
    index = open_indexes(settings).runbooks
    queries = [query] if query is not None else (line.rstrip("\r\n") for line in stdin)
    asked = 0
    for line in queries:
        asked += 1
        text = line.strip()
        answer = (search(index, RunbookQuery(text=text[:10_000]), k=k) if text
                  else RunbookAnswer(query="", results=[], abstained=True,
                                     reason="empty query", message="Nothing to search for: "
                                     "the line is empty."))
        if json_out:
            out.write(json.dumps(answer.as_json_line()) + "\n")
            out.flush()
        else:
            _print(answer, out)
    if not asked:
        print("sre-copilot runbooks search: no query (give one, or pipe one per line)",
              file=sys.stderr)
        return 2
    return 0


def _print(answer: RunbookAnswer, out: TextIO) -> None:
    print(answer.message, file=out)
    for i, hit in enumerate(answer.results, 1):
        where = f" § {hit.section}" if hit.section else ""
        label = "closest" if answer.abstained else f"{i}."
        print(f"  {label} {hit.path}{where}  score {hit.score:.2f} ({hit.reason})", file=out)
