"""Incident history: past incidents like this one, with their root cause and what fixed them,
and the sweep that keeps the history index up to date with resolved incidents."""
