"""Links a person can open: a PromQL query over a time range as a Prometheus graph page, so chat
answers show a readable line and keep the query one click away."""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import urlencode

from skills.types import utc

# A next step that ends in a query ("Find the slow endpoints: histogram_quantile(…)").
_QUERY_TAIL = re.compile(r"^(?P<head>.+?):\s+(?P<query>.*[)}\]])\s*$", re.S)
# What only PromQL looks like: a selector, a range, or an aggregation or function call.
_PROMQL = re.compile(r"\w\{|\[\d+[smhdwy]\]|\b(?:rate|irate|increase|delta|deriv|sum|avg|max|"
                     r"min|count|topk|bottomk|quantile|histogram_quantile|absent|changes|"
                     r"resets|predict_linear|label_replace|vector)\s*(?:by|without)?\s*\(")


def graph_url(base: str, query: str, *, start: datetime | None = None,
              end: datetime | None = None) -> str:
    """The Prometheus expression browser on `query`, over `start`–`end` when given."""
    params = {"g0.expr": query, "g0.tab": "0"}
    if start is not None and end is not None and end > start:
        params["g0.range_input"] = f"{max(60, int((end - start).total_seconds()))}s"
        params["g0.end_input"] = f"{utc(end):%Y-%m-%d %H:%M:%S}"
    return f"{base.rstrip('/')}/graph?{urlencode(params)}"


def split_query(text: str) -> tuple[str, str | None]:
    """"Do this: <PromQL>" → ("Do this", the query); text without a trailing query is kept."""
    found = _QUERY_TAIL.match(text.strip())
    if found is None or not _PROMQL.search(found["query"]):
        return text, None
    return found["head"].rstrip(" .:"), found["query"]
