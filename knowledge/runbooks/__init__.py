"""Runbooks: Markdown files parsed into sections and kept in a chromadb index."""
