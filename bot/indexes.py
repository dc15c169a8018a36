"""The copilot's vector indexes, built once per process from settings: one embedding model and
one chromadb client shared by the runbook and incident-history indexes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.settings import Settings
from knowledge.embedding import Embedder
from knowledge.history import HistoryIndex
from knowledge.runbooks.index import RunbookIndex
from knowledge.vectors import open_chroma


@dataclass
class Indexes:
    embedder: Embedder
    chroma: Any
    runbooks: RunbookIndex
    history: HistoryIndex


def open_indexes(settings: Settings) -> Indexes:
    """Cheap: the model loads on first use, and chromadb opens its files (or checks that the
    server at CHROMA_URL answers) here."""
    embedder = Embedder(settings.embedding_model)
    chroma = open_chroma(settings.data_dir, settings.chroma_url)
    return Indexes(embedder=embedder, chroma=chroma,
                   runbooks=RunbookIndex(chroma, embedder, settings.data_dir / "vectors"),
                   history=HistoryIndex(chroma, embedder))
