"""The plain text of a chat message's JSON (Block Kit blocks, an Adaptive Card's body), for the
fallback a platform shows in notifications and to screen readers: each platform says which
nodes hold text and which parts (buttons) to leave out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def plain_text(node: Any, text_of: Callable[[dict[str, Any]], str | None], *,
               skip: Callable[[dict[str, Any]], bool]) -> str:
    """The texts `text_of` finds in `node`, depth first, a line each; nodes `skip` picks
    (buttons) are left out with all they hold."""
    texts: list[str] = []

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            if skip(item):
                return
            found = text_of(item)
            if found is not None:
                texts.append(found)
                return
            for value in item.values():
                walk(value)
        elif isinstance(item, list):
            for value in item:
                walk(value)

    walk(node)
    return "\n".join(texts)
