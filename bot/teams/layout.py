"""Adaptive Card building blocks (TextBlock, FactSet, Action.Execute), Teams' size limits, and
`split_cards`, which turns a body of elements into cards that each fit in a Teams message."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from botbuilder.schema import Activity

from bot.conversation.vocabulary import clip
from bot.render.plain import plain_text

Element = dict[str, Any]
Unit = Element | tuple[Element, ...]  # a tuple is kept on one card when it fits on one
NBSP = "\u00a0"

SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
VERSION = "1.5"
CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
# Teams refuses a message over ~28 KB; a card's JSON stays under this many bytes, measured
# ASCII-escaped (`\ud83d\ude00`, as Python's and aiohttp's json.dumps send it: never less than
# its UTF-8).
CARD_BYTES_MAX = 25_000
CARD_ELEMENTS_MAX = 100  # body elements, counting those inside containers and columns
TEXT_MAX = 3_000  # characters a TextBlock (fewer when escaping would outgrow a card)
FACTS_MAX = 40  # facts a FactSet
SUMMARY_MAX = 1_000  # Card.text
IMAGE_URL_MAX = CARD_BYTES_MAX - 1_500  # an image's URL (data URI) and the card around it
DATA_URI_PREFIX = "data:image/png;base64,"


@dataclass(frozen=True)
class Card:
    """One Teams message: `text` the plain summary (notifications, screen readers), `content`
    the Adaptive Card."""

    text: str
    content: dict[str, Any]


def attachment(card: Card) -> dict[str, Any]:
    """The Bot Framework attachment carrying the card."""
    return {"contentType": CONTENT_TYPE, "content": card.content}


# ---- elements ------------------------------------------------------------------------------

def text_block(text: str, **props: Any) -> Element:
    return {"type": "TextBlock", "text": text, "wrap": True, **props}


def subtle(text: str, **props: Any) -> Element:
    return text_block(text, **({"isSubtle": True, "size": "Small", "spacing": "None"} | props))


def execute(title: str, verb: str, data: dict[str, Any], *, style: str | None = None
            ) -> Element:
    action: Element = {"type": "Action.Execute", "title": title, "verb": verb, "data": data}
    return action | ({"style": style} if style else {})


def fact_set(facts: Sequence[tuple[str, str]]) -> Element:
    return {"type": "FactSet", "facts": [{"title": t, "value": v} for t, v in facts]}



def split_text(text: str, limit: int = TEXT_MAX) -> list[str]:
    """Pieces of at most `limit` characters, cut at a paragraph, else a line, else a word
    boundary (a hard cut only for a word longer than a quarter of `limit`)."""
    pieces: list[str] = []
    rest = text.strip("\n ")
    while len(rest) > limit:
        for sep in ("\n\n", "\n", " "):
            j = rest.rfind(sep, limit // 4, limit + len(sep))
            if 0 < j <= limit:
                cut, resume = j, j + len(sep)
                break
        else:
            cut = resume = limit
        pieces.append(rest[:cut].rstrip("\n "))
        rest = rest[resume:].lstrip("\n ")
    if rest.strip(NBSP + " \n"):
        pieces.append(rest)
    return [p for p in pieces if p.strip(NBSP + " \n")]



# ---- limits --------------------------------------------------------------------------------

def split_cards(body: Sequence[Unit], text: str, *, actions: Sequence[Element] = ()
                ) -> list[Card]:
    """The body as cards, in order, each under CARD_BYTES_MAX bytes of JSON and
    CARD_ELEMENTS_MAX elements: over-long TextBlocks cut (see `split_text`), FactSets divided,
    anything still too big for a card clipped. A unit (a tuple of elements: a code block, a
    TextBlock that had to be cut) that does not fit on the current card starts the next one if
    it fits there whole. The first card carries `actions` and `text` as its summary; the others
    their own text."""
    skeleton = _size(_content([], list(actions)))
    room = CARD_BYTES_MAX - skeleton - 2
    cards: list[list[Element]] = [[]]
    used = count = 0
    for unit in body:
        elements = [piece for element in (unit if isinstance(unit, tuple) else (unit,))
                    for piece in _fit(element, room)]
        sizes = [_size(e) + 2 for e in elements]
        counts = [_count(e) for e in elements]
        whole, many = sum(sizes), sum(counts)
        if cards[-1] and (used + whole > room or count + many > CARD_ELEMENTS_MAX) \
                and whole <= room and many <= CARD_ELEMENTS_MAX:
            cards.append([])
            used = count = 0
        for element, size, n in zip(elements, sizes, counts, strict=True):
            if cards[-1] and (used + size > room or count + n > CARD_ELEMENTS_MAX):
                cards.append([])
                used = count = 0
            cards[-1].append(element)
            used, count = used + size, count + n
    if not cards[-1]:
        cards[-1].append(text_block(clip(text, TEXT_MAX) or "…"))
    return [Card(clip((text if i == 0 else "") or _plain(elements) or "…", SUMMARY_MAX),
                 _content(elements, list(actions) if i == 0 else []))
            for i, elements in enumerate(cards)]


def _content(body: list[Element], actions: list[Element]) -> dict[str, Any]:
    return {"type": "AdaptiveCard", "$schema": SCHEMA, "version": VERSION, "body": body,
            "actions": actions, "msteams": {"width": "Full"}}


def _fit(element: Element, room: int) -> list[Element]:
    kind = element.get("type")
    if kind == "TextBlock" and (len(element["text"]) > TEXT_MAX or _size(element) > room):
        text = element["text"]
        limit = min(TEXT_MAX, max(len(text) // 2, 1))
        return [fitted for piece in split_text(text, limit)
                for fitted in _fit(element | {"text": piece}, room)]
    if kind == "FactSet" and (len(element["facts"]) > FACTS_MAX or _size(element) > room):
        batches: list[list[Any]] = [[]]
        for fact in element["facts"]:
            if batches[-1] and (len(batches[-1]) == FACTS_MAX
                                or _size(batches[-1]) + _size(fact) > room // 2):
                batches.append([])
            batches[-1].append(fact)
        return [_shrink(element | {"facts": b}, room) for b in batches]
    return [_shrink(element, room)]


def _shrink(element: Element, room: int) -> Element:
    """The element with its texts clipped shorter until it fits on a card."""
    limit = TEXT_MAX
    while _size(element) > room and limit > 20:
        limit //= 2
        element = _clip_texts(element, limit)
    return element if _size(element) <= room else subtle("(too large to show here)")


def _clip_texts(node: Any, limit: int) -> Any:
    if isinstance(node, list):
        return [_clip_texts(n, limit) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _clip_texts(v, limit) for k, v in node.items()}
    for key in ("text", "value", "title"):
        if isinstance(out.get(key), str) and node.get("type") != "Action.Execute":
            out[key] = clip(out[key], limit)
    return out


def _count(element: Element) -> int:
    return 1 + sum(_count(e) for key in ("items", "columns") for e in element.get(key, ()))


def _size(node: Any) -> int:
    return len(json.dumps(node))


def _plain(body: list[Element]) -> str:
    """The text of a card's TextBlocks and facts, for its summary (actions left out)."""

    def text_of(node: dict[str, Any]) -> str | None:
        if node.get("type") == "TextBlock":
            return str(node["text"]).replace(NBSP, " ")
        if "value" in node and "title" in node and "type" not in node:  # a fact
            return f"{node['title']} {node['value']}"
        return None

    return plain_text(body, text_of, skip=lambda node: node.get("type") == "ActionSet")


def card_activity(card: Card) -> Activity:
    """The message activity that carries a card (its text as the notification summary)."""
    return Activity(type="message", summary=card.text[:250], attachments=[attachment(card)])
