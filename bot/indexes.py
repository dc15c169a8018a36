"""The copilot's vector indexes, built once per process from settings: one embedding model and
one chromadb client shared by the runbook and incident-history indexes — with `metrics`, a
client whose failed calls are counted as Chroma upstream errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bot.metrics import Metrics
from bot.settings import Settings
from knowledge.embedding import Embedder, EmbeddingModelMissing
from knowledge.history import HistoryIndex
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import ChromaURLError, open_chroma

log = logging.getLogger(__name__)


@dataclass
class Indexes:
    embedder: Embedder
    chroma: Any
    runbooks: RunbookIndex
    history: HistoryIndex


def open_indexes(settings: Settings, *, metrics: Metrics | None = None) -> Indexes:
    """Cheap: the model loads on first use, and chromadb opens its files (or checks that the
    server at CHROMA_URL answers) here."""
    embedder = Embedder(settings.embedding_model)
    chroma = open_chroma(settings.data_dir, settings.chroma_url)
    if metrics is not None:
        chroma = CountedChroma(chroma, metrics)
    return Indexes(embedder=embedder, chroma=chroma,
                   runbooks=RunbookIndex(chroma, embedder, settings.data_dir / "vectors"),
                   history=HistoryIndex(chroma, embedder))


def try_open_indexes(settings: Settings, *, metrics: Metrics | None = None) -> Indexes | None:
    """The indexes, or None with the reason logged (no model installed, a bad CHROMA_URL): the
    copilot then works without runbooks and similar past incidents."""
    try:
        return open_indexes(settings, metrics=metrics)
    except (EmbeddingModelMissing, ChromaURLError) as exc:
        log.warning("runbooks and incident history are off: %s", exc)
        return None


class CountedChroma:
    """The chromadb client as the indexes use it (`knowledge.vectors.cosine_collection` asks it
    for collections), counting each call on it or on its collections that raises. Here rather
    than in `knowledge`: the indexes stay unaware of metrics, and this is the one place that
    sees every Chroma call of the process."""

    def __init__(self, client: Any, metrics: Metrics) -> None:
        self.client = client
        self.metrics = metrics

    def get_or_create_collection(self, *args: Any, **kwargs: Any) -> Any:
        collection = _counted(self.client.get_or_create_collection, self.metrics)(*args,
                                                                                   **kwargs)
        return _CountedCollection(collection, self.metrics)


class _CountedCollection:
    """A chromadb collection whose method calls are counted when they raise; its attributes
    (`metadata`, `name`) pass through."""

    def __init__(self, collection: Any, metrics: Metrics) -> None:
        self._collection = collection
        self._metrics = metrics

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._collection, name)
        return _counted(found, self._metrics) if callable(found) else found


def _counted(call: Callable[..., Any], metrics: Metrics) -> Callable[..., Any]:
    def counting(*args: Any, **kwargs: Any) -> Any:
        try:
            return call(*args, **kwargs)
        except Exception:
            metrics.upstream_failed("chroma")
            raise

    return counting
