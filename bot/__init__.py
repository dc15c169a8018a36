"""The conversational surface and the process: the ASGI app (webhooks, health, metrics), the
inbox worker, the CLI and the demo. Depends on `skills` and `knowledge`, never the reverse."""
