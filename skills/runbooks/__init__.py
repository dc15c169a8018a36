"""Runbook recommendation: the runbook sections that fit an alert, an incident or a question."""
