"""The anatomy of an alerting rule's PromQL expression: what quantity it watches, what it compares
it with, which filters it applies, and which series (metric names and label matchers) it reads.

Parsed with `promql_parser` (the Prometheus grammar, compiled from Rust), never with regexes:
`quantity` is the expression with its top-level comparison against a number and its `and` /
`unless` filters taken away, so an investigation can plot the value the rule watches, not only
the moments it held; `selectors` name the raw series to break that quantity down by.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import promql_parser

COMPARISONS = {"<", "<=", ">", ">=", "==", "!="}
FLIPPED = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "==": "==", "!=": "!="}
# Functions over a range whose result is a per-second rate or an amount of change.
RATES = {"rate", "irate", "increase", "delta", "idelta", "deriv"}


class NotPromQL(ValueError):
    """The text does not parse as PromQL; the message is the parser's."""


@dataclass(frozen=True)
class Matcher:
    label: str
    op: str  # = != =~ !~
    value: str

    def text(self) -> str:
        escaped = self.value.replace("\\", "\\\\").replace('"', '\\"')
        return f'{self.label}{self.op}"{escaped}"'


@dataclass(frozen=True)
class Selector:
    """A series selector the expression reads, and the range function around it, if any."""

    metric: str | None
    matchers: tuple[Matcher, ...]
    function: str | None = None  # rate, increase, predict_linear, … (the innermost call)
    range: timedelta | None = None

    def promql(self, extra: dict[str, str] | None = None) -> str:
        """The selector as PromQL, with `extra` equality matchers added (an `extra` label the
        selector already constrains keeps the selector's own matcher)."""
        have = {m.label for m in self.matchers if m.op == "="}
        parts = [m.text() for m in self.matchers if m.label != "__name__"]
        parts += [Matcher(k, "=", v).text() for k, v in sorted((extra or {}).items())
                  if k not in have]
        if not parts:  # `up{}` is not PromQL: a bare name is
            return self.metric or '{__name__=~".+"}'
        return f"{self.metric or ''}{{{','.join(parts)}}}"

    def series_promql(self, extra: dict[str, str] | None = None) -> str:
        """What the selector contributes per series: a rate where the rule takes one (over the
        rule's own range), else the raw values."""
        raw = self.promql(extra)
        if self.function in RATES and self.range is not None:
            fn = "increase" if self.function == "increase" else "rate"
            return f"{fn}({raw}[{_duration(self.range)}])"
        return raw


@dataclass(frozen=True)
class Anatomy:
    expr: str
    quantity: str  # the value the rule compares, as PromQL
    comparison: tuple[str, str] | None  # (operator, threshold) so that `quantity op threshold`
    filters: tuple[str, ...] = ()  # `and` / `unless` conditions, as PromQL
    selectors: tuple[Selector, ...] = ()  # every selector of the quantity, in order
    grouping: tuple[str, ...] | None = None  # `by (…)` of the quantity's outer aggregation
    without: tuple[str, ...] | None = None  # `without (…)` of it

    @property
    def metrics(self) -> list[str]:
        seen: list[str] = []
        for s in self.selectors:
            if s.metric and s.metric not in seen:
                seen.append(s.metric)
        return seen

    @property
    def threshold(self) -> float | None:
        if self.comparison is None:
            return None
        try:
            return float(self.comparison[1])
        except ValueError:
            return None


def parse(expr: str) -> Any:
    try:
        return promql_parser.parse(expr)
    except (ValueError, RuntimeError) as exc:
        raise NotPromQL(f"not PromQL ({exc}): {expr}") from exc


def anatomy(expr: str) -> Anatomy:
    """Take a rule's expression apart (raises `NotPromQL`)."""
    node = _unparen(parse(expr))
    comparison: tuple[str, str] | None = None
    filters: list[str] = []
    while True:
        name = type(node).__name__
        if name != "BinaryExpr":
            break
        op = str(node.op)
        lhs, rhs = _unparen(node.lhs), _unparen(node.rhs)
        if op in ("and", "unless"):
            filters.append(str(rhs))
            node = lhs
            continue
        if op == "or":  # alternatives: the first is the main condition
            node = lhs
            continue
        if op in COMPARISONS and not _returns_bool(node) and comparison is None:
            if _is_number(rhs):
                comparison, node = (op, str(rhs)), lhs
                continue
            if _is_number(lhs):
                comparison, node = (FLIPPED[op], str(lhs)), rhs
                continue
            comparison, node = (op, str(rhs)), lhs
            continue
        break
    grouping = without = None
    if type(node).__name__ == "AggregateExpr" and node.modifier is not None:
        labels = tuple(str(label) for label in node.modifier.labels)
        if "without" in str(node.modifier.type).lower():
            without = labels
        else:
            grouping = labels
    return Anatomy(expr=expr, quantity=str(node), comparison=comparison, filters=tuple(filters),
                   selectors=tuple(selectors_of(node)), grouping=grouping, without=without)


def selectors_of(node: Any, function: str | None = None,
                 window: timedelta | None = None) -> list[Selector]:
    """Every vector selector under `node`, each with the innermost range function around it."""
    kind = type(node).__name__
    if kind == "VectorSelector":
        matchers = tuple(Matcher(m.name, _op(m.op), m.value) for m in node.matchers.matchers)
        return [Selector(node.name or None, matchers, function, window)]
    if kind == "MatrixSelector":
        return selectors_of(node.vector_selector, function, node.range)
    if kind == "Call":
        found: list[Selector] = []
        for arg in node.args:
            found += selectors_of(arg, node.func.name, window)
        return found
    if kind == "SubqueryExpr":
        return selectors_of(node.expr, function, window)
    found = []
    for attr in ("lhs", "rhs", "expr", "param"):
        child = getattr(node, attr, None)
        if child is not None and not isinstance(child, (int, float, str)):
            found += selectors_of(child, function, window)
    return found


def _unparen(node: Any) -> Any:
    while type(node).__name__ == "ParenExpr":
        node = node.expr
    return node


def _is_number(node: Any) -> bool:
    node = _unparen(node)
    if type(node).__name__ == "NumberLiteral":
        return True
    if type(node).__name__ == "UnaryExpr":
        return _is_number(node.expr)
    return False


def _returns_bool(node: Any) -> bool:
    modifier = getattr(node, "modifier", None)
    return bool(modifier is not None and getattr(modifier, "return_bool", False))


def _op(op: Any) -> str:
    text = str(op)
    return {"MatchOp.Equal": "=", "MatchOp.NotEqual": "!=", "MatchOp.Re": "=~",
            "MatchOp.NotRe": "!~"}.get(text, text)


def _duration(td: timedelta) -> str:
    seconds = int(td.total_seconds())
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass
class Drill:
    """How one selector breaks the alert down: the PromQL asked and the labels it kept."""

    selector: Selector
    promql: str
    kept: dict[str, str] = field(default_factory=dict)
