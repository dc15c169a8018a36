"""Runbook search: the top runbooks for a query, with the matching section and a score in [0, 1],
or an honest abstention when none is about the query.

1. The alert's own `runbook_url` annotation, and an alert name that a runbook covers, win outright.
2. Label values (hosts, pods, paths, percentages, [tags]) are left out of everything else: no
   runbook names them.
3. Order: reciprocal rank fusion of two rankings — the query's sentence vector against every
   section (a runbook's best section counts) and BM25 over the runbooks' words
   (knowledge/runbooks/lexical.py). Nothing fitted.
4. Score, on the five best: mostly relevance — how much of the query's headline (an alert's
   summary, a question's first sentence) the runbook's own description says, word piece by word
   piece (BERTScore recall with all-MiniLM-L6-v2's contextual vectors) — with the cosine and word
   overlap. These weights date from the first round (set on the shared dev queries).
5. Abstention (`answers`): one logistic rule over the best score of the first three, how far the
   best cosine stands out from all runbooks, and whether the query is brief; fitted by
   tests/bench/runbook_calibrate.py on the dev splits. Every caller uses it.
"""

from __future__ import annotations

import asyncio
import math
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

import numpy as np
from pydantic import BaseModel, Field

from knowledge.alerts import Alert
from knowledge.embedding import alignment
from knowledge.runbooks.index import ChunkHit, Corpus, RunbookEntry, RunbookIndex
from knowledge.text import (
    content_words,
    first_sentence,
    identifiers,
    stem,
    without_values,
    words,
)

W_ALIGN, W_DENSE, W_TITLE, W_COVER = 0.8, 0.2, 0.15, 0.1
SCALE = W_ALIGN + W_DENSE + W_TITLE + W_COVER  # final scores land in [0, 1]
W_METRIC = 0.05  # per metric name the query and runbook share (at most two count)
# The abstention rule (`answers`): logistic weights over `features`, its intercept and the bar
# on the logit (P >= 0.70), fitted by tests/bench/runbook_calibrate.py on the dev splits only
# (375 alert texts, 306 questions: kube-prometheus wording, other teams' wording, questions).
# 5-fold cross-validated with an alert's renderings in one fold: alert texts 0.88 answered
# right where a runbook exists, 0.74 abstained where none does; questions 0.77 and 0.94.
ABSTAIN_WEIGHTS = (10.406, 1.456, 1.153, 2.871, -0.702)
ABSTAIN_INTERCEPT = -7.613
ABSTAIN_LOGIT = 0.847
QUESTION_MAX_WORDS = 12  # a brief query: at most this many content words, in one sentence
RERANK = 5  # candidates that get the (costlier) word-level relevance
LEXICAL_RERANK = 5  # the best by BM25 alone join the candidates, when not among the nearest
RRF_K = 60
NEIGHBOURS = 40  # sections fetched from chromadb


class RunbookQuery(BaseModel):
    """What to find a runbook for. `text` is required; the rest sharpen it when known."""

    text: str = Field(min_length=1, max_length=10_000)
    headline: str | None = None  # an alert's summary; default: the text's first sentence
    alertname: str | None = None
    runbook_url: str | None = None
    service: str | None = None


class RunbookHit(BaseModel):
    path: str  # relative to the ingested directory, or the runbook_url when not ingested
    section: str
    score: float = Field(ge=0.0, le=1.0)
    title: str
    reason: str  # runbook_url | alert name | similarity
    root: str | None = None
    url: str | None = None  # where people open it: the alert's runbook_url that named it


class RunbookAnswer(BaseModel):
    query: str
    results: list[RunbookHit]
    abstained: bool
    message: str  # one line for people: what was found, or that nothing was
    reason: str | None = None  # why it abstained, for machines: see `search`

    def as_json_line(self) -> dict[str, object]:
        """The `runbooks search --json` shape (`reason` only when it abstained)."""
        line: dict[str, object] = {
            "query": self.query, "abstained": self.abstained,
            "results": [{"path": h.path, "section": h.section, "score": h.score}
                        for h in self.results]}
        if self.abstained and self.reason:
            line["reason"] = self.reason
        return line


@dataclass
class _Candidate:
    entry: RunbookEntry
    dense: float  # best section's cosine with the query
    section: str
    title_cover: float
    cover: float
    lexical: float  # BM25, as a share of the best runbook's BM25 for this query
    metric_bonus: float
    relevance: float = 0.0
    fused: float = 0.0  # reciprocal rank fusion of the vector and BM25 rankings: the order

    @property
    def score(self) -> float:
        raw = (W_ALIGN * self.relevance + W_DENSE * self.dense + W_TITLE * self.title_cover
               + W_COVER * self.cover) / SCALE + self.metric_bonus
        return max(0.0, min(1.0, raw))


@dataclass(frozen=True)
class Ranking:
    """The reranked candidates, best first, with what the abstention rule reads."""

    candidates: list[_Candidate]
    # How far the best cosine of the first three stands above the runbooks at large, in robust
    # standard deviations (median and MAD of every runbook's best section): an off-topic
    # question is about as close to every runbook, an on-topic one to a few.
    standout: float = 0.0
    # A brief query: one short sentence, as people type a question, rather than an alert's
    # summary and description.
    brief: bool = False


def rank(index: RunbookIndex, query: RunbookQuery) -> Ranking:
    """Candidates from both retrievers (the nearest sections and the best BM25 runbooks) in
    fused order; the first RERANK, with their relevance, are kept."""
    corpus = index.corpus()
    # Label values name no runbook: they are left out of everything the ranking reads.
    text = without_values(query.text)
    headline = without_values(query.headline) if query.headline else first_sentence(text)
    if headline not in text:
        headline = first_sentence(text)
    vector, head_tokens = index.embedder.encode_query(text, headline)
    lexical = _lexical(corpus, text)
    # With the vectors in memory every section is scored (exact and cheap), so a runbook BM25
    # brings in has its true cosine too; above that chromadb answers the nearest only.
    n = len(corpus.rows) if corpus.vectors is not None else NEIGHBOURS
    chunks = index.nearest(vector, n)
    candidates = _candidates(corpus, chunks, lexical, text)
    by_dense = sorted(candidates, key=lambda c: c.dense, reverse=True)
    lexical_rank = {key: i for i, key in enumerate(
        sorted(lexical, key=lexical.__getitem__, reverse=True), start=1)}
    # Reciprocal rank fusion of the two rankings (Cormack et al., 2009, with its k = 60): no
    # weight to fit, and a runbook first in either ranking stays near the top.
    for i, c in enumerate(by_dense, start=1):
        c.fused = 1 / (RRF_K + i) + 1 / (RRF_K + lexical_rank.get(c.entry.key, len(lexical) + 1))
    best = sorted(candidates, key=lambda c: c.fused, reverse=True)[:RERANK]
    for c in best:
        c.relevance = alignment(head_tokens, index.summary_tokens(c.entry))
    return Ranking(candidates=best,
                   standout=_standout(chunks, max(c.dense for c in best[:3])) if best else 0.0,
                   brief=_brief(text))


def _brief(text: str) -> bool:
    return (len(content_words(text)) <= QUESTION_MAX_WORDS
            and first_sentence(text).strip() == text.strip())


def _standout(chunks: list[ChunkHit], top: float) -> float:
    """`top` against every runbook's best section among `chunks` (all of them while the vectors
    are in memory; above EXACT_SEARCH_MAX chunks, the nearest only)."""
    per_runbook: dict[tuple[str, str], float] = {}
    for hit in chunks:
        per_runbook[hit.key] = max(per_runbook.get(hit.key, -1.0), hit.similarity)
    values = np.fromiter(per_runbook.values(), dtype=np.float32)
    if len(values) < 5:
        return 0.0
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826 or 1e-6
    return (top - median) / mad


def features(ranking: Ranking) -> list[float]:
    """What the abstention rule reads: the best score of the first three candidates, how far
    their best cosine stands out from the runbooks at large, and whether the query is brief (a
    chat question says less than an alert's summary and description, so the same runbook scores
    lower for it) — with the two signals again for brief queries, so the bar can differ."""
    short = float(ranking.brief)
    if not ranking.candidates:
        return [0.0, 0.0, short, 0.0, 0.0]
    # The question is whether any of the first three is right: the best of their scores.
    score = max(c.score for c in ranking.candidates[:3])
    standout = math.log1p(max(0.0, ranking.standout))
    return [score, standout, short, score * short, standout * short]


def answers(ranking: Ranking) -> bool:
    """The abstention rule: P(a right runbook is among the first three) from a logistic model
    over `features`, against a bar; below it the search abstains. Fitted by
    tests/bench/runbook_calibrate.py on the dev splits of alert texts and questions together."""
    if not ranking.candidates:
        return False
    logit = ABSTAIN_INTERCEPT + sum(w * x for w, x in zip(ABSTAIN_WEIGHTS, features(ranking),
                                                           strict=True))
    return logit >= ABSTAIN_LOGIT


def search(index: RunbookIndex, query: RunbookQuery, k: int = 3) -> RunbookAnswer:
    """Synchronous (ONNX Runtime, chromadb): async callers use `search_async`."""
    corpus = index.corpus()
    if not corpus.entries:
        return RunbookAnswer(query=query.text, results=[], abstained=True,
                             reason="no runbooks indexed",
                             message="No runbooks are indexed yet: run `sre-copilot runbooks "
                                     "ingest PATH`.")
    pinned = _pinned(corpus, query)
    ranking = rank(index, query)
    best = ranking.candidates
    hits = list(pinned)
    taken = {(h.root, h.path) for h in hits}
    for c in best:
        if len(hits) >= k:
            break
        if c.entry.key not in taken:
            hits.append(RunbookHit(path=c.entry.path, section=c.section,
                                   score=round(c.score, 3), title=c.entry.title,
                                   reason="similarity", root=c.entry.root))
            taken.add(c.entry.key)
    abstained = not pinned and not answers(ranking)
    if abstained:
        closest = ", ".join(h.path for h in hits)
        message = ("No runbook found for this"
                   + (f" (closest: {closest}, none close enough to be sure)" if hits else "")
                   + ".")
    else:
        top = hits[0]
        message = f"Runbook: {top.title} — {top.path}" + (f" § {top.section}" if top.section
                                                            else "")
    return RunbookAnswer(query=query.text, results=hits[:k], abstained=abstained,
                         message=message,
                         reason="no runbook is close enough" if abstained else None)


def query_for_alert(alert: Alert) -> RunbookQuery:
    """What to search for an alert: its summary (the headline) and description, with its name
    and runbook_url so a runbook the alert itself names is pinned."""
    notes = alert.annotations or {}
    summary = str(notes.get("summary") or alert.alertname)
    description = str(notes.get("description") or "")
    url = notes.get("runbook_url")
    return RunbookQuery(text=f"{summary}. {description}".strip()[:10_000], headline=summary,
                        alertname=alert.alertname, runbook_url=str(url) if url else None,
                        service=alert.service)


async def search_async(index: RunbookIndex, query: RunbookQuery, k: int = 3) -> RunbookAnswer:
    return await asyncio.to_thread(search, index, query, k)


def _pinned(corpus: Corpus, query: RunbookQuery) -> list[RunbookHit]:
    """Runbooks the alert itself names: its runbook_url, then a runbook covering its name."""
    hits: list[RunbookHit] = []
    if query.runbook_url:
        entry = _by_url(corpus, query.runbook_url)
        if entry is not None:
            hits.append(RunbookHit(path=entry.path, section=_first_section(entry), score=1.0,
                                   title=entry.title, reason="runbook_url", root=entry.root,
                                   url=query.runbook_url))
        else:
            hits.append(RunbookHit(path=query.runbook_url, section="", score=1.0,
                                   title=query.runbook_url, reason="runbook_url",
                                   url=query.runbook_url))
    names = identifiers(query.text) | ({query.alertname.lower()} if query.alertname else set())
    for entry in corpus.entries.values():
        if entry.identifiers & names and entry.key not in {(h.root, h.path) for h in hits}:
            hits.append(RunbookHit(path=entry.path, section=_first_section(entry), score=1.0,
                                   title=entry.title, reason="alert name", root=entry.root))
    return hits


def _by_url(corpus: Corpus, url: str) -> RunbookEntry | None:
    """An ingested runbook the URL points at: the URL's path ends with the runbook's path
    (without extension), or its last segment is the runbook's file name or alert name."""
    tail = urlsplit(url).path.rstrip("/").lower()
    tail = re.sub(r"\.(md|markdown|html?)$", "", tail)
    last = tail.rsplit("/", 1)[-1]
    for entry in corpus.entries.values():
        stemmed = re.sub(r"\.(md|markdown)$", "", entry.path.lower())
        if tail.endswith("/" + stemmed) or tail == stemmed:
            return entry
    for entry in corpus.entries.values():
        if last and (last == entry.path.lower().rsplit("/", 1)[-1].rsplit(".", 1)[0]
                     or last in entry.identifiers):
            return entry
    return None


def _first_section(entry: RunbookEntry) -> str:
    """Where to send someone whose alert names the runbook: what to do, else the top."""
    for wanted in ("mitigation", "remediation", "resolution", "fix"):
        for heading in entry.sections:
            if wanted in heading.lower():
                return heading
    return entry.sections[0] if entry.sections else ""


def _lexical(corpus: Corpus, text: str) -> dict[tuple[str, str], float]:
    """BM25 of every runbook, as a share of the best one's (so it reads alike across queries)."""
    if corpus.lexical is None:
        return {}
    scores = corpus.lexical.scores(text)
    top = float(scores.max()) if len(scores) else 0.0
    if top <= 0:
        return {}
    return {key: float(s) / top for key, s in zip(corpus.entries, scores, strict=True)}


def _candidates(corpus: Corpus, chunks: list[ChunkHit], lexical: dict[tuple[str, str], float],
                text: str) -> list[_Candidate]:
    lexical_best = set(sorted(lexical, key=lexical.__getitem__, reverse=True)[:LEXICAL_RERANK])
    dense: dict[tuple[str, str], float] = {}
    section: dict[tuple[str, str], tuple[float, str]] = {}
    for i, hit in enumerate(chunks):
        if i >= NEIGHBOURS and hit.key not in dense and hit.key not in lexical_best:
            continue  # only the nearest sections bring a runbook in, or BM25 does
        if hit.key not in corpus.entries:
            continue
        dense[hit.key] = max(dense.get(hit.key, -1.0), hit.similarity)
        if hit.section and hit.similarity > section.get(hit.key, (-2.0, ""))[0]:
            section[hit.key] = (hit.similarity, hit.section)
    q_words = [w for w in set(content_words(text)) if stem(w) in corpus.idf]
    q_stems = {stem(w) for w in words(text)}
    q_metrics = {i for i in identifiers(text) if "_" in i}
    weight = sum(corpus.idf[stem(w)] for w in q_words) or 1.0
    # The best BM25 runbooks join even when no section of theirs was among the nearest.
    for key in lexical_best:
        dense.setdefault(key, 0.0)
    out: list[_Candidate] = []
    for key, sim in dense.items():
        entry = corpus.entries[key]
        cover = sum(corpus.idf[stem(w)] for w in q_words if stem(w) in entry.stems) / weight
        title_cover = (sum(stem(w) in q_stems for w in entry.title_words)
                       / max(1, len(entry.title_words)))
        metric_bonus = W_METRIC * min(2, len(q_metrics & entry.mentions))
        out.append(_Candidate(entry=entry, dense=sim, section=section.get(key, (0.0, ""))[1],
                              title_cover=title_cover, cover=cover,
                              lexical=lexical.get(key, 0.0), metric_bonus=metric_bonus))
    return out
