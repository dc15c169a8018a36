"""Renderers: domain objects → what a surface shows (terminal now; Block Kit, Adaptive Cards)."""
