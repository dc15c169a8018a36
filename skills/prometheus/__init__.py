"""Prometheus: the HTTP API client and the skills that read metrics through it."""
