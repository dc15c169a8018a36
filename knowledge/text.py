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


# A label value in an alert's text: a [tag], a path, or a word mixing digits with punctuation or
# with more letters than an abbreviation has (db-7, 93%, 10.2.3.4:9100, checkout-7d9f8b6c5-x2x9q,
# nvme1n1). Short ones (k8s, 5xx, p99) are words people search by, and stay.
_VALUE = re.compile(r"^\[.*\]$|/"  # a [tag], a path
                    r"|^\S*\d\S*[-.:%]\S*$|^\S*[-.:%]\S*\d\S*$"  # digits with punctuation
                    r"|^\S*\d\S{3,}$|^\S{3,}\d\S*$")  # digits in a long word


def without_values(text: str) -> str:
    """`text` without its label values (hosts, pods, addresses, paths, percentages, [tags]): no
    runbook names them, so they only dilute the match — and an alert that puts them in its
    summary ("[prod] db-7 /data 93% full") would otherwise score far below one that does not
    ("Filesystem is almost full"). Sentence ends survive; a text of values only is kept."""
    kept: list[str] = []
    for word in text.split():
        bare = word.strip(",;()\"'")
        end = word[len(word.rstrip(".!?")):]
        if bare and _VALUE.search(bare.rstrip(".!?")):
            if end and kept:
                kept[-1] = kept[-1].rstrip(".!?") + end
            continue
        kept.append(word)
    return " ".join(kept) or text


def first_sentence(text: str) -> str:
    """An alert text's headline (its summary) is its first sentence."""
    parts = re.split(r"(?<=[.!?])\s+", text.strip(), maxsplit=1)
    return parts[0] if parts else text
