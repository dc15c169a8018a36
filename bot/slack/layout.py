"""Block Kit building blocks (section, context, header, button) and `split`, which turns a list
of blocks into messages that each stay within Slack's limits (`bot.slack.limits`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bot.conversation.vocabulary import clip
from bot.render.plain import plain_text
from bot.slack.limits import (
    ACTIONS_ELEMENTS_MAX,
    BUTTON_TEXT_MAX,
    BUTTON_VALUE_MAX,
    CONFIRM_MAX,
    CONTEXT_ELEMENTS_MAX,
    FALLBACK_TEXT_MAX,
    FIELD_TEXT_MAX,
    HEADER_TEXT_MAX,
    ID_MAX,
    MAX_BLOCKS,
    MAX_FIELDS,
    MESSAGE_BLOCKS_MAX,
    SECTION_TEXT_MAX,
)
from bot.slack.mrkdwn import clip_mrkdwn, split_text

Block = dict[str, Any]


@dataclass(frozen=True)
class Message:
    """One chat.postMessage / chat.update: `text` is the plain fallback Slack shows in
    notifications and to screen readers, `blocks` the layout."""

    text: str
    blocks: list[Block]



def text_object(text: str, kind: str = "mrkdwn") -> Block:
    return {"type": kind, "text": text} | ({"emoji": True} if kind == "plain_text" else {})


def section(text: str) -> Block:
    return {"type": "section", "text": text_object(text)}


def context(*texts: str) -> Block:
    return {"type": "context", "elements": [text_object(t) for t in texts]}


def header(text: str) -> Block:
    return {"type": "header", "text": text_object(text, "plain_text")}


def button(text: str, action_id: str, value: str, *, style: str | None = None,
           confirm: Block | None = None) -> Block:
    element: Block = {"type": "button", "text": text_object(text, "plain_text"),
                      "action_id": action_id, "value": value}
    if style:
        element["style"] = style
    if confirm:
        element["confirm"] = confirm
    return element



def split(blocks: list[Block], text: str) -> list[Message]:
    """The blocks as messages within Slack's limits: long section text cut into several sections
    (see `split_text`), over-long texts clipped, over-full context and actions blocks divided, and
    at most 50 blocks (and ~11k characters) a message, never separating a section from the
    context and actions under it when that can be helped. The first message carries `text` as
    its fallback (mrkdwn: Slack reads it for mentions too, so escape what is not yours); the
    others their own blocks' text."""
    groups = _pack([piece for block in blocks for piece in _fit(block)])
    if not groups:
        return [Message(clip_mrkdwn(text, FALLBACK_TEXT_MAX) or "…", [])]
    return [Message(clip_mrkdwn((text if i == 0 else "") or _plain(group) or "…",
                                FALLBACK_TEXT_MAX), group) for i, group in enumerate(groups)]


def _fit(block: Block) -> list[Block]:
    kind = block.get("type")
    if kind == "header":
        return [{**block, "text": text_object(clip(block["text"]["text"], HEADER_TEXT_MAX) or "…",
                                        "plain_text")}]
    if kind == "context":
        elements = [_fit_text(e, SECTION_TEXT_MAX) for e in block["elements"]]
        return _divide(block, "elements", elements, CONTEXT_ELEMENTS_MAX)
    if kind == "actions":
        return _divide(block, "elements", [_fit_element(e) for e in block["elements"]],
                       ACTIONS_ELEMENTS_MAX)
    if kind != "section":
        return [block]
    rest = {k: v for k, v in block.items() if k not in ("text", "fields", "accessory")}
    out: list[Block] = []
    if "text" in block:
        t = block["text"]
        pieces = (split_text(t["text"]) if t["type"] == "mrkdwn"
                  else [clip(t["text"], SECTION_TEXT_MAX)]) or ["…"]
        out = [{**rest, "text": {**t, "text": p}} for p in pieces]
        if "accessory" in block:
            out[0]["accessory"] = _fit_element(block["accessory"])
    fields = [_fit_text(f, FIELD_TEXT_MAX) for f in block.get("fields", [])]
    for batch in _batches(fields, MAX_FIELDS):
        if out and "fields" not in out[-1]:
            out[-1]["fields"] = batch
        else:
            out.append({**rest, "type": "section", "fields": batch})
    return _renumber(out)


def _fit_text(obj: Block, limit: int) -> Block:
    if obj.get("type") not in ("mrkdwn", "plain_text"):
        return obj
    cut = clip_mrkdwn if obj["type"] == "mrkdwn" else clip
    return {**obj, "text": cut(obj["text"], limit) or "…"}


def _fit_element(element: Block) -> Block:
    if element.get("type") != "button":
        return element
    out = {**element, "text": {**element["text"], "text": clip(element["text"]["text"],
                                                                 BUTTON_TEXT_MAX)}}
    for key, limit in (("value", BUTTON_VALUE_MAX), ("action_id", ID_MAX)):
        if key in out:
            out[key] = out[key][:limit]
    if "confirm" in out:
        out["confirm"] = {k: (_fit_text(v, CONFIRM_MAX[k]) if k in CONFIRM_MAX else v)
                          for k, v in out["confirm"].items()}
    return out


def _divide(block: Block, key: str, items: list[Block], most: int) -> list[Block]:
    return _renumber([{**block, key: batch} for batch in _batches(items, most)])


def _batches(items: list[Block], most: int, size: int = MESSAGE_BLOCKS_MAX // 2
             ) -> Iterable[list[Block]]:
    batch: list[Block] = []
    for item in items:
        if batch and (len(batch) == most or _size(batch) + _size(item) > size):
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


def _renumber(blocks: list[Block]) -> list[Block]:
    """Blocks made from one keep its `block_id` unique: `id`, `id-2`, …"""
    for k, b in enumerate(blocks[1:], start=2):
        if "block_id" in b:
            b["block_id"] = f"{b['block_id'][:ID_MAX - 4]}-{k}"
    return blocks


_GROUP_START = ("section", "header", "divider")


def _pack(blocks: list[Block]) -> list[list[Block]]:
    """Blocks into messages of at most MAX_BLOCKS blocks and MESSAGE_BLOCKS_MAX characters; a
    section with the context and actions that follow it moves to the next message whole."""
    messages: list[list[Block]] = []
    current: list[Block] = []
    used = 0
    for block in blocks:
        size = _size(block) + 1
        if current and (len(current) == MAX_BLOCKS or used + size > MESSAGE_BLOCKS_MAX):
            starts = [k for k, b in enumerate(current) if b.get("type") in _GROUP_START]
            k = starts[-1] if starts else 0
            tail = current[k:]
            carry = (0 < k and len(tail) <= 5 and (k < len(current) - 1 or
                                                   current[k]["type"] == "header")
                     and len(tail) < MAX_BLOCKS
                     and _size(tail) + _size(block) <= MESSAGE_BLOCKS_MAX)
            messages.append(current[:k] if carry else current)
            current = tail if carry else []
            used = _size(current)
        current.append(block)
        used += size
    if current:
        messages.append(current)
    return messages


def _size(blocks: Block | list[Block]) -> int:
    return len(json.dumps(blocks, ensure_ascii=False))


def _plain(blocks: list[Block]) -> str:
    """The text of a message's blocks, for its fallback (buttons left out)."""
    return plain_text(blocks, lambda node: node["text"] if node.get("type") in (
        "mrkdwn", "plain_text") and isinstance(node.get("text"), str) else None,
        skip=lambda node: node.get("type") == "actions")

