"""One redaction pass on everything that leaves the process, with `bot.agent.safety`'s patterns:
log records of every logger (ours and the libraries': slack_sdk's debug lines carry whole
request bodies), the Slack Web API client's requests and file uploads, the Teams connector's
activities, and the CLI's standard output. Claude's requests are redacted where they are built
(`bot.agent.claude`). Alert text may carry a password or a cloud key; it may be stored, but it
is never sent or printed as it came."""

from __future__ import annotations

import copy
import io
import logging
import sys
from typing import Any, TextIO

from bot.agent.safety import redact

# Slack Web API arguments that are credentials or ids, never content: left exactly as given.
_NOT_CONTENT = frozenset({"token", "client_id", "client_secret", "code", "refresh_token",
                          "channel", "channels", "ts", "thread_ts", "user", "users", "team_id",
                          "file", "files", "upload_url", "file_id"})
# Methods that carry credentials and no content at all.
_AUTH_METHODS = ("oauth.", "auth.", "openid.", "apps.")


def scrub(value: Any) -> Any:
    """A copy of a JSON-like value with every string passed through `redact` (keys kept)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: scrub(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(scrub(item) for item in value)
    return value


def scrub_arguments(method: str, arguments: dict[str, Any] | None) -> dict[str, Any] | None:
    """A Web API call's arguments with the content redacted (text, blocks, attachments, file
    content, titles…); credentials, ids and auth methods untouched."""
    if not arguments or method.startswith(_AUTH_METHODS):
        return arguments
    return {key: value if key in _NOT_CONTENT else scrub(value)
            for key, value in arguments.items()}


class RedactingFilter(logging.Filter):
    """On a handler: the record's message, arguments merged in, and its traceback, redacted
    before any formatter sees them. A handler's filter sees every logger's records that reach
    it, libraries' included."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        safe = redact(message)
        if safe != message:
            record.msg, record.args = safe, None
        if record.exc_info and not record.exc_text:
            record.exc_text = self._formatter.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
            record.exc_info = None  # formatters would format it again, unredacted
        return True


class RedactingStream(io.TextIOBase):
    """Standard output for the CLI: whole lines are redacted and written through (a secret is
    never split across two writes); what is left is written on `flush` and at exit."""

    def __init__(self, target: TextIO) -> None:
        super().__init__()
        self.target = target
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            lines, _, self._pending = self._pending.rpartition("\n")
            self.target.write(redact(lines + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.target.write(redact(self._pending))
            self._pending = ""
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")

    def fileno(self) -> int:
        return self.target.fileno()


def unredacted_stdout() -> TextIO:
    """Standard output without the redaction: for a command whose output is a secret the
    operator asked for (`orgs add` printing a new token)."""
    out = sys.stdout
    return out.target if isinstance(out, RedactingStream) else out


def scrub_activity(activity: Any) -> Any:
    """A copy of a Bot Framework activity with its text, summary and attachments redacted."""
    safe = copy.copy(activity)
    if getattr(safe, "text", None):
        safe.text = redact(safe.text)
    if getattr(safe, "summary", None):
        safe.summary = redact(safe.summary)
    if getattr(safe, "attachments", None):
        attachments = []
        for attachment in safe.attachments:
            if isinstance(attachment, dict):  # an attachment may be given as plain JSON
                attachments.append(scrub(attachment))
                continue
            copied = copy.copy(attachment)
            copied.content = scrub(copied.content)
            attachments.append(copied)
        safe.attachments = attachments
    return safe
