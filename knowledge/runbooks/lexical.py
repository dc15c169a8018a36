"""Lexical retrieval over runbooks: BM25 (bm25s) on word stems, titles weighing extra.

The vector ranking knows meaning but blurs rare, exact words ("conntrack", "inodes", "fsync",
"pvc"); BM25 weighs exactly those by their rarity. Terms are the project's tokens (CamelCase and
snake_case split, stop words out) cut to a five-letter stem, so `CrashLooping`, `crashloopbackoff`
and "crash looping" meet on `crash`.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise

import bm25s
import numpy as np

from knowledge.text import content_words, stem, words


def terms(text: str) -> list[str]:
    return [stem(w) for w in content_words(text)]


def title_terms(title: str) -> list[str]:
    """A title's terms, twice (a title says what the runbook is for; the text holds it once
    more), and each pair of adjacent words run together: people type "notready", "crashloop",
    "imagepull" as one word."""
    parts = words(title)
    joined = [stem(a + b) for a, b in pairwise(parts)]
    return terms(title) * 2 + joined


class LexicalIndex:
    """BM25 scores of a query against a fixed list of documents (one per runbook)."""

    def __init__(self, documents: Sequence[tuple[str, str]]) -> None:
        """`documents`: (title, text) of each runbook."""
        self._bm25 = bm25s.BM25()
        # An empty document list still makes an index (bm25s wants at least one token).
        tokens = [title_terms(t) + terms(d) or ["\u2205"] for t, d in documents] or [["\u2205"]]
        self._bm25.index(tokens, show_progress=False)
        self._size = len(documents)

    def scores(self, query: str) -> np.ndarray:
        """One BM25 score per document, in the order given; zeros when no term is known."""
        words = [t for t in terms(query) if t in self._bm25.vocab_dict]
        if not words or not self._size:
            return np.zeros(self._size, dtype=np.float32)
        return np.asarray(self._bm25.get_scores(words), dtype=np.float32)[: self._size]
