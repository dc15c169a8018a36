"""Slack: the copilot in the incident channel (slack-bolt)."""
