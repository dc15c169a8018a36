"""Tool-calling skills with typed inputs and outputs (Prometheus, PagerDuty, runbooks, history,
hypotheses, timeline, post-mortem, forecasts). A skill knows nothing of Slack or Teams."""
