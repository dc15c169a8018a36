"""The runbook index: chunks of every ingested runbook in one chromadb collection, with what a
search needs beside the vectors (each runbook's words, title and alerts) loaded once per version.

Ingesting a directory is idempotent: a file whose digest is unchanged is left alone, a changed one
has its chunks replaced, and a runbook that is gone from the directory is removed. Each ingested
directory is its own source (`root`), so ingesting a second one never deletes the first.
chromadb is synchronous: async callers use `asyncio.to_thread`.
"""

from __future__ import annotations

import hashlib
import math
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.embedding import Embedder, TokenVectors
from knowledge.runbooks.documents import (
    MAX_FILE_BYTES,
    RunbookDocument,
    RunbookParseError,
    discover,
    parse,
)
from knowledge.runbooks.lexical import LexicalIndex
from knowledge.text import content_words, identifiers, stem, words
from knowledge.vectors import cosine_collection

COLLECTION = "sre-copilot-runbooks"
INGEST_BATCH = 32  # runbooks embedded per model call while ingesting
# Up to this many chunks (≈ 4,000 runbooks, 75 MB) a search multiplies the query by every chunk
# vector in memory: exact, and ~0.5 ms where a chromadb query costs ~7 ms of API overhead.
EXACT_SEARCH_MAX = 50_000
VERSION_TTL = 1.0  # s: how long a search trusts the index version it last read


@dataclass
class IngestReport:
    root: str
    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.added) + len(self.updated) + self.unchanged


@dataclass
class RunbookEntry:
    """One runbook as the search sees it."""

    root: str
    path: str
    title: str
    headline: str
    alerts: list[str]
    services: list[str]
    summary: str
    digest: str
    stems: frozenset[str]  # stems of every word in the runbook
    title_words: list[str]  # content words of the title
    identifiers: frozenset[str]  # alert names covered, lower-case
    mentions: frozenset[str]  # alert and metric names anywhere in its text, lower-case
    sections: list[str] = field(default_factory=list)  # headings, in order

    @property
    def key(self) -> tuple[str, str]:
        return (self.root, self.path)


@dataclass
class Corpus:
    """The runbooks of one index version with inverse document frequencies of their words."""

    version: str
    entries: dict[tuple[str, str], RunbookEntry]
    idf: dict[str, float]
    # Every chunk's vector with its (runbook key, section), for exact search in memory while
    # the index is small enough (None above EXACT_SEARCH_MAX chunks: chromadb's HNSW answers).
    vectors: np.ndarray | None = None
    rows: list[tuple[tuple[str, str], str]] = field(default_factory=list)
    # BM25 over each runbook's title and text, in the order of `entries`.
    lexical: LexicalIndex | None = None


@dataclass(frozen=True)
class ChunkHit:
    key: tuple[str, str]
    section: str
    similarity: float


class RunbookIndex:
    def __init__(self, client: Any, embedder: Embedder, cache_dir: Path | None = None) -> None:
        self.client = client
        self.embedder = embedder
        # Word-piece vectors of each runbook's summary, by content digest: derived data (the
        # index can always recompute them), kept on disk so a new process answers its first
        # search as fast as its hundredth.
        self.cache_dir = cache_dir
        self._collection: Any = None
        self._corpus: Corpus | None = None
        self._summaries: dict[str, TokenVectors] = {}
        self._lock = threading.Lock()
        self._version: tuple[float, str] | None = None

    @property
    def collection(self) -> Any:
        if self._collection is None:
            self._collection = cosine_collection(self.client, COLLECTION)
        return self._collection

    # --- ingestion -------------------------------------------------------------------------

    def ingest(self, directory: Path) -> IngestReport:
        root_path = directory.resolve()
        if not root_path.is_dir():
            raise NotADirectoryError(f"{directory} is not a directory")
        root = str(root_path)
        report = IngestReport(root=root)
        existing = self._digests(root)
        seen: set[str] = set()
        pending: list[RunbookDocument] = []
        for file in discover(root_path):
            rel = file.relative_to(root_path).as_posix()
            # Seen even when it fails to parse: a typo in front matter keeps the last good
            # version searchable until the file is fixed, rather than deleting it.
            seen.add(rel)
            try:
                if file.stat().st_size > MAX_FILE_BYTES:
                    raise RunbookParseError(f"over {MAX_FILE_BYTES} bytes, not read")
                doc = parse(file.read_text(encoding="utf-8"), rel)
            except Exception as exc:  # one bad file never costs the others: it is reported
                report.errors.append(f"{rel}: {exc}")
                continue
            if existing.get(rel) == doc.digest:
                report.unchanged += 1
                continue
            pending.append(doc)
            (report.updated if rel in existing else report.added).append(rel)
            if len(pending) >= INGEST_BATCH:
                self._replace(root, pending, existing)
                pending = []
        if pending:
            self._replace(root, pending, existing)
        for rel in sorted(set(existing) - seen):
            self.collection.delete(where={"$and": [{"root": root}, {"path": rel}]})
            report.removed.append(rel)
        if report.added or report.updated or report.removed:
            self.collection.modify(metadata={"version": uuid.uuid4().hex})
            self._version = None
        return report

    def _digests(self, root: str) -> dict[str, str]:
        got = self.collection.get(where={"$and": [{"root": root}, {"kind": "title"}]},
                                  include=["metadatas"])
        return {m["path"]: m["digest"] for m in got["metadatas"] or []}

    def _replace(self, root: str, docs: list[RunbookDocument], existing: dict[str, str]
                 ) -> None:
        """Index `docs` (replacing their old chunks): one model call for all their chunks, so
        padding and per-call overhead are paid once per batch, not once per runbook."""
        for doc in docs:
            if doc.path in existing:
                self.collection.delete(where={"$and": [{"root": root}, {"path": doc.path}]})
        chunks = [(doc, order, heading, text) for doc in docs
                  for order, (heading, text) in enumerate(doc.chunks())]
        vectors = self.embedder.encode([text for _, _, _, text in chunks])
        missing = [d for d in docs if self._cached_summary(d.digest) is None]
        for doc, tokens in zip(missing, self.embedder.encode_tokens([d.summary for d in missing]),
                               strict=True):
            self._store_summary(doc.digest, tokens)
        ids: list[str] = []
        metadatas: list[dict[str, Any]] = []
        for doc, order, heading, _ in chunks:
            base = hashlib.sha1(f"{root}\0{doc.path}".encode()).hexdigest()[:16]
            ids.append(f"{base}-{order}")
            meta: dict[str, Any] = {"root": root, "path": doc.path, "section": heading,
                                    "order": order,
                                    "kind": "section" if heading else "title",
                                    "digest": doc.digest, "title": doc.title}
            if not heading:  # the title record carries the runbook's own metadata
                meta |= {"alerts": ",".join(doc.alerts), "services": ",".join(doc.services),
                         "summary": doc.summary}
            metadatas.append(meta)
        self.collection.add(ids=ids, embeddings=vectors.tolist(),
                            documents=[text for _, _, _, text in chunks], metadatas=metadatas)

    # --- what a search reads ---------------------------------------------------------------

    def version(self) -> str:
        """The index version, re-read from chromadb at most once a VERSION_TTL: another
        process's ingest shows within a second, without a round trip per search."""
        now = time.monotonic()
        if self._version is None or now - self._version[0] > VERSION_TTL:
            self._collection = None  # read the collection (and its metadata) anew
            meta = self.collection.metadata or {}
            self._version = (now, str(meta.get("version", "empty")))
        return self._version[1]

    def corpus(self) -> Corpus:
        """The current runbooks; rebuilt only when the index version changed."""
        version = self.version()
        with self._lock:
            if self._corpus is not None and self._corpus.version == version:
                return self._corpus
            small = self.collection.count() <= EXACT_SEARCH_MAX
            got = self.collection.get(include=["metadatas", "documents", "embeddings"] if small
                                      else ["metadatas", "documents"])
            texts: dict[tuple[str, str], list[str]] = {}
            heads: dict[tuple[str, str], dict[str, Any]] = {}
            headings: dict[tuple[str, str], list[tuple[int, str]]] = {}
            for meta, text in zip(got["metadatas"] or [], got["documents"] or [], strict=True):
                key = (str(meta["root"]), str(meta["path"]))
                if meta.get("kind") == "title":
                    heads[key] = dict(meta)
                    texts.setdefault(key, []).insert(0, text or "")
                else:
                    texts.setdefault(key, []).append(text or "")
                    headings.setdefault(key, []).append((int(meta.get("order", 0)),
                                                         str(meta["section"])))
            entries: dict[tuple[str, str], RunbookEntry] = {}
            documents: list[tuple[str, str]] = []
            for key, meta in heads.items():
                body = "\n".join(texts[key])
                documents.append((str(meta["title"]), body))
                alerts = [a for a in str(meta.get("alerts", "")).split(",") if a]
                entries[key] = RunbookEntry(
                    root=key[0], path=key[1], title=str(meta["title"]),
                    headline=texts[key][0] if texts[key] else str(meta["title"]),
                    alerts=alerts,
                    services=[s for s in str(meta.get("services", "")).split(",") if s],
                    summary=str(meta.get("summary", "")), digest=str(meta["digest"]),
                    stems=frozenset(stem(w) for w in words(body)),
                    title_words=content_words(str(meta["title"])),
                    identifiers=frozenset(a.lower() for a in alerts),
                    mentions=frozenset(identifiers(body)),
                    sections=[h for _, h in sorted(headings.get(key, []))])
            df = Counter(w for e in entries.values() for w in {s for s in e.stems})
            n = len(entries)
            idf = {w: math.log((n + 1) / (c + 0.5)) for w, c in df.items()}
            corpus = Corpus(version=version, entries=entries, idf=idf,
                            lexical=LexicalIndex(documents))
            if small and got["embeddings"] is not None and len(got["embeddings"]):
                corpus.vectors = np.asarray(got["embeddings"], dtype=np.float32)
                corpus.rows = [((str(m["root"]), str(m["path"])), str(m["section"]))
                               for m in got["metadatas"] or []]
            self._corpus = corpus
            return corpus

    def nearest(self, vector: np.ndarray, n: int = 60) -> list[ChunkHit]:
        """The `n` chunks most similar to `vector` (cosine), best first."""
        corpus = self.corpus()
        if corpus.vectors is not None:
            sims = corpus.vectors @ vector
            top = np.argsort(-sims)[:n]
            return [ChunkHit(key=corpus.rows[i][0], section=corpus.rows[i][1],
                             similarity=float(sims[i])) for i in top]
        count = self.collection.count()
        if count == 0:
            return []
        got = self.collection.query(query_embeddings=[vector.tolist()], n_results=min(n, count),
                                    include=["metadatas", "distances"])
        return [ChunkHit(key=(str(m["root"]), str(m["path"])), section=str(m["section"]),
                         similarity=1.0 - float(d))
                for m, d in zip(got["metadatas"][0], got["distances"][0], strict=True)]

    def summary_tokens(self, entry: RunbookEntry) -> TokenVectors:
        return self.summary_tokens_of(entry.digest, entry.summary)

    def summary_tokens_of(self, digest: str, summary: str) -> TokenVectors:
        """Word-piece vectors of a runbook's summary: memory, then the disk cache, then the
        model (and both caches are filled)."""
        cached = self._cached_summary(digest)
        if cached is None:
            cached = self.embedder.encode_tokens([summary])[0]
            self._store_summary(digest, cached)
        return cached

    def _cached_summary(self, digest: str) -> TokenVectors | None:
        cached = self._summaries.get(digest)
        file = self.cache_dir / f"{digest}.npy" if self.cache_dir else None
        if cached is None and file is not None and file.is_file():
            try:
                cached = TokenVectors([], np.load(file).astype(np.float32))
            except (OSError, ValueError):
                return None  # a torn write: the caller recomputes it
            self._summaries[digest] = cached
        return cached

    def _store_summary(self, digest: str, tokens: TokenVectors) -> None:
        self._summaries[digest] = tokens
        if self.cache_dir is not None:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            file = self.cache_dir / f"{digest}.npy"
            tmp = file.with_suffix(f".{uuid.uuid4().hex}.tmp")
            with tmp.open("wb") as fh:
                np.save(fh, tokens.vectors.astype(np.float16))
            tmp.replace(file)
