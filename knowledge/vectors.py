"""The chromadb client: a `PersistentClient` under the data directory by default, an
`HttpClient` when `CHROMA_URL` names a Chroma server (so replicas share one index)."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ChromaURLError(ValueError):
    pass


def open_chroma(data_dir: Path, chroma_url: str | None = None) -> Any:
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    # No usage pings from a bot that runs on closed networks.
    settings = ChromaSettings(anonymized_telemetry=False)
    if chroma_url:
        parts = urlsplit(chroma_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ChromaURLError(f"CHROMA_URL must look like http://host:8000, got {chroma_url!r}")
        port = parts.port or (443 if parts.scheme == "https" else 8000)
        try:
            return chromadb.HttpClient(host=parts.hostname, port=port,
                                       ssl=parts.scheme == "https", settings=settings)
        except ValueError as exc:  # chromadb's "Could not connect to a Chroma server"
            raise ChromaURLError(f"CHROMA_URL={chroma_url}: {exc}") from exc
    path = data_dir / "chroma"
    path.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(path), settings=settings)


def cosine_collection(client: Any, name: str) -> Any:
    """A collection of vectors we embed ourselves (no embedding function), compared by cosine."""
    return client.get_or_create_collection(name, configuration={"hnsw": {"space": "cosine"}},
                                           embedding_function=None)
