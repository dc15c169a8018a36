"""PagerDuty: the read-only REST API v2 client the copilot reads incidents and on-calls through."""
