"""Logging for the whole process: `configure_logging(settings)` sets it up once — plain lines
for a terminal (`log_format=text`) or one JSON object per line for a log pipeline (`json`, with
python-json-logger) — and every line carries the ids of the work that logged it.

Those ids live in context variables, which follow the work across `await`s and into the tasks
it starts, and never leak between concurrent requests or chat items: `current_request` is set
by the HTTP middleware (`bot.app.RequestIds`), `current_incident` by whatever works on an
incident (the inbox worker, the chat handlers)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from bot.outgoing import RedactingFilter
from bot.settings import Settings

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

# Per task, not per process: each request and chat item sees only its own ids.
current_request: ContextVar[str | None] = ContextVar("current_request", default=None)
current_incident: ContextVar[int | None] = ContextVar("current_incident", default=None)


def about_incident(incident: int | None) -> None:
    """What the current task does from here on is about `incident` (None changes nothing).
    Code running in a long-lived task (a worker's loop) wraps the work in `incident_scope`
    instead, so the id does not stay on for the next piece of work."""
    if incident is not None:
        current_incident.set(incident)


@contextmanager
def incident_scope(incident: int | None) -> Iterator[None]:
    """Lines logged inside are about `incident` (None: whatever they were about before);
    anything `about_incident` sets inside ends here too."""
    token = current_incident.set(incident if incident is not None else current_incident.get())
    try:
        yield
    finally:
        current_incident.reset(token)


class WorkIds(logging.Filter):
    """Puts `request_id` and `incident_id` on each record, when they are known. On the handler,
    not a logger: a logger's filters do not see what its children propagate."""

    def filter(self, record: logging.LogRecord) -> bool:
        if (request := current_request.get()) is not None:
            record.request_id = request
        if (incident := current_incident.get()) is not None:
            record.incident_id = incident
        return True


class JsonLines(JsonFormatter):
    """time, level, logger, message, then `request_id` / `incident_id` and `exc_info` when
    there are any."""

    def __init__(self) -> None:
        super().__init__(
            ["asctime", "levelname", "name", "message"],
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            # uvicorn's `color_message` repeats the message with terminal colours, and
            # `taskName` (Python 3.12+) is asyncio's own name for the task: neither helps.
            reserved_attrs=[*RESERVED_ATTRS, "color_message", "taskName"])

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")


def configure_logging(settings: Settings, quiet: bool = False) -> None:
    """Log at `settings.log_level` (WARNING when `quiet`: commands that print their own story)
    to stderr, in `settings.log_format`. Like `logging.basicConfig`, it leaves a root logger
    that already has handlers (a test runner's) alone."""
    level = "WARNING" if quiet else settings.log_level.upper()
    handler = logging.StreamHandler()
    # On the handler too: a library that sets its own logger to DEBUG (bm25s does) would
    # otherwise print through it whatever the root's level.
    handler.setLevel(level)
    handler.setFormatter(JsonLines() if settings.log_format == "json"
                         else logging.Formatter(TEXT_FORMAT))
    handler.addFilter(WorkIds())
    handler.addFilter(RedactingFilter())  # every logger's lines, libraries' included
    logging.basicConfig(level=level, handlers=[handler])
    logging.getLogger("alembic").setLevel(max(logging.getLevelName(level), logging.WARNING))
    if settings.log_format == "json":
        logging.captureWarnings(True)  # a warning printed as text would break the stream
