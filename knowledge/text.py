"""Word-level text handling shared by the runbook and incident indexes: tokens with CamelCase and
snake_case split (alert and metric names are words too), and the identifiers kept whole."""

from __future__ import annotations

import re

# Words that say nothing about which runbook fits: function words and the filler of alert texts.
STOPWORDS = frozenset(
    "a an the is are was were be been being has have had of in on at to for by with from and "
    "or not no this that these those it its as than more less over last within into out up "
    "x so if then there their which what when where who how can could should would may might "
    "will do does did about any all some one".split())

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
# An identifier worth matching exactly: a CamelCase alert name or a snake_case metric name.
_IDENT = re.compile(r"\b(?:[A-Za-z][a-z0-9]*[A-Z][A-Za-z0-9]*|[a-z][a-z0-9]*(?:_[a-z0-9]+)+)\b")


def split_camel(text: str) -> str:
    """`KubePodCrashLooping` → `Kube Pod Crash Looping`; other text is left alone."""
    return _CAMEL.sub(" ", text)


def words(text: str) -> list[str]:
    """Lower-case word tokens, with CamelCase and snake_case split into their parts."""
    return _WORD.findall(split_camel(text).lower())


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if w not in STOPWORDS and not w.isdigit()]


def stem(word: str) -> str:
    """A crude stem: the first five letters (`looping`/`loops`, `reloads`/`reloading`). Enough to
    compare an alert's words with a runbook's; a real stemmer buys little on these short texts."""
    return word[:5]


def identifiers(text: str) -> set[str]:
    """Alert and metric names in `text`, lower-cased, e.g. `kubepodcrashlooping`,
    `node_filesystem_avail_bytes`."""
    return {m.group(0).lower() for m in _IDENT.finditer(text)}


def first_sentence(text: str) -> str:
    """An alert text's headline (its summary) is its first sentence."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)
    return parts[0] if parts else text
