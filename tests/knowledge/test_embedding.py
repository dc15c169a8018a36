"""The embedding model on ONNX Runtime against the vectors the PyTorch model gave for the same
texts (recorded once from sentence-transformers 5 / torch 2.13 before the switch, in
data/minilm_torch_vectors.json): the runbook index and the history index were built on those,
so the new runtime must land where they did."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from knowledge.embedding import Embedder, EmbeddingModelMissing

RECORDED = json.loads((Path(__file__).parent / "data" / "minilm_torch_vectors.json").read_text())


def test_sentence_vectors_are_within_0_99_cosine_of_the_pytorch_model(embedder: Embedder) -> None:
    ours = embedder.encode(RECORDED["texts"])
    theirs = np.asarray(RECORDED["vectors"], dtype=np.float32)
    cosines = (ours * theirs).sum(axis=1) / np.linalg.norm(theirs, axis=1)
    assert ours.shape == (len(RECORDED["texts"]), 384)
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-5)
    assert cosines.min() >= 0.99, dict(zip(RECORDED["texts"], cosines.round(4), strict=True))


def test_word_pieces_and_their_vectors_match_the_pytorch_model(embedder: Embedder) -> None:
    for text, tokens, vectors in zip(RECORDED["token_texts"], RECORDED["tokens"],
                                     RECORDED["token_vectors"], strict=True):
        (ours,) = embedder.encode_tokens([text])
        assert ours.tokens == tokens
        cosines = (ours.vectors * np.asarray(vectors, dtype=np.float32)).sum(axis=1)
        assert cosines.min() >= 0.98 and cosines.mean() >= 0.99, (text, cosines.round(3))


def test_a_query_and_its_headline_come_from_one_pass_like_before(embedder: Embedder) -> None:
    q = RECORDED["query"]
    vector, headline = embedder.encode_query(q["text"], q["headline"])
    assert float(vector @ np.asarray(q["vector"], dtype=np.float32)) >= 0.99
    # Only the headline's content pieces: "pod", "payments", "node"… not the rest of the text.
    assert headline.tokens == q["tokens"] and "crash" not in headline.tokens


def test_long_texts_are_cut_where_the_index_was_built(embedder: Embedder) -> None:
    long = "the disk is filling up on the database host " * 200
    a, b = embedder.encode([long, long + " and then some more words at the very end"])
    assert float(a @ b) > 0.9999  # past 256 word pieces nothing more is read


def test_a_directory_without_an_onnx_model_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "tokenizer.json").write_text("{}")
    with pytest.raises(EmbeddingModelMissing, match=r"model\.onnx"):
        Embedder(tmp_path)


def test_a_repeated_query_is_answered_again_unchanged_and_cannot_be_altered(
        embedder: Embedder) -> None:
    # An alert storm asks the same runbook query once per subject (label values left out).
    text = "Disk is almost full. The filesystem has less than 5% space left."
    vector, head = embedder.encode_query(text, "Disk is almost full.")
    again, head_again = embedder.encode_query(text, "Disk is almost full.")
    assert np.array_equal(vector, again) and head.tokens == head_again.tokens
    other, _ = embedder.encode_query(text + " Clean up old logs.", "Disk is almost full.")
    assert float(other @ vector) < 0.9999
    with pytest.raises(ValueError):
        again[0] = 1.0  # every search of that text shares it
    with pytest.raises(ValueError):
        head_again.vectors[0, 0] = 1.0


def test_the_rewritten_graph_gives_the_packaged_models_numbers_exactly() -> None:
    import onnxruntime as ort

    from knowledge.embedding import default_model
    from knowledge.lean_graph import lean_model

    files = default_model()
    packaged = ort.InferenceSession(str(files.onnx), providers=["CPUExecutionProvider"])
    lean = ort.InferenceSession(lean_model(files.onnx), providers=["CPUExecutionProvider"])
    ids = np.array([[101, 7661, 2003, 2471, 2440, 1012, 102, 0]], dtype=np.int64)
    feeds = {"input_ids": ids, "attention_mask": (ids > 0).astype(np.int64),
             "token_type_ids": np.zeros_like(ids)}
    feeds = {k: v for k, v in feeds.items() if k in {i.name for i in packaged.get_inputs()}}
    assert np.array_equal(packaged.run(None, feeds)[0], lean.run(None, feeds)[0])
    # The tables are read in int8, straight from the stored weights: no float copy of the
    # 30,522-row word table is made (the packaged graph makes one on every pass).
    assert _producers_of_gather_tables(files.onnx.read_bytes())
    assert not _producers_of_gather_tables(lean_model(files.onnx))


def _producers_of_gather_tables(model: bytes) -> list:  # type: ignore[type-arg]
    import onnx

    graph = onnx.load_from_string(model).graph
    producer = {out: n for n in graph.node for out in n.output}
    tables = [n.input[0] for n in graph.node if n.op_type == "Gather"]
    return [producer[t] for t in tables if t in producer]
