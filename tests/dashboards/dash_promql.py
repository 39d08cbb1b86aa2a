"""A small PromQL lexer for the dashboard tests: which metric names does a query reference?

``metric_names(query)`` tokenises a PromQL expression (as written in a Grafana panel, so Grafana variables such as
``$__rate_interval``, ``${workload}`` or ``[[interval]]`` are tokens too) and returns the metric names it selects.
What is *not* a metric name, and so dropped:

- function and aggregation names (an identifier followed by ``(``; aggregations also before ``by``/``without``);
  an unknown function is an error, so a typo cannot pass as a metric;
- keywords: ``by without on ignoring group_left group_right`` with their label lists ``(a, b)``, ``bool``,
  ``and or unless``, ``offset``, ``atan2``, and the literals ``Inf`` / ``NaN``;
- everything inside ``{...}`` (label matchers: names, operators, string values), except a ``__name__="x"``
  matcher or a quoted name (``{"x"}``), which *are* metric names; a regex ``__name__`` matcher cannot be verified
  and is an error;
- everything inside ``[...]`` (range durations, subquery ``[1h:5m]``, Grafana interval variables);
- strings, numbers (``1e3``, ``0x1f``, ``.5``), durations (``5m``, ``1h30m`` after ``offset``), comments.

Unbalanced brackets and unknown characters raise ``PromQLError`` with the offset. Also ``variable_query_metrics``
for Grafana variable queries (``label_values(selector, label)``, ``query_result(expr)``, ...).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

FUNCTIONS = frozenset({
    "abs", "absent", "absent_over_time", "acos", "acosh", "asin", "asinh", "atan", "atanh", "avg_over_time",
    "ceil", "changes", "clamp", "clamp_max", "clamp_min", "cos", "cosh", "count_over_time", "day_of_month",
    "day_of_week", "day_of_year", "days_in_month", "deg", "delta", "deriv", "end", "exp", "floor",
    "histogram_avg", "histogram_count", "histogram_fraction", "histogram_quantile", "histogram_stddev",
    "histogram_stdvar", "histogram_sum", "holt_winters", "double_exponential_smoothing", "hour", "idelta",
    "increase", "irate", "label_join", "label_replace", "last_over_time", "ln", "log10", "log2",
    "mad_over_time", "max_over_time", "min_over_time", "minute", "month", "pi", "predict_linear",
    "present_over_time", "quantile_over_time", "rad", "rate", "resets", "round", "scalar", "sgn", "sin", "sinh",
    "sort", "sort_by_label", "sort_by_label_desc", "sort_desc", "sqrt", "start", "stddev_over_time",
    "stdvar_over_time", "sum_over_time", "tan", "tanh", "time", "timestamp", "vector", "year",
})  # fmt: skip
"""PromQL functions (Prometheus 2.x and 3.x); names are case-sensitive."""
AGGREGATIONS = frozenset({
    "sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values", "bottomk", "topk",
    "quantile", "limitk", "limit_ratio",
})  # fmt: skip
"""Aggregation operators; like keywords, matched case-insensitively."""
LABEL_LISTS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
"""Keywords that may be followed by a parenthesised list of label names."""
KEYWORDS = LABEL_LISTS | {"bool", "and", "or", "unless", "offset", "atan2"}
LITERALS = frozenset({"inf", "nan"})

_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
  | (?P<variable>\$\{[^}]*\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z_][A-Za-z0-9_]*(?::[^\]]*)?\]\])
  | (?P<duration>(?:\d+(?:ms|[smhdwy]))+(?![A-Za-z0-9_:]))
  | (?P<number>0[xX][0-9a-fA-F]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<op>=~|!~|!=|==|<=|>=|[-+*/%^<>=@,:(){}\[\]])
    """,
    re.VERBOSE,
)
_CLOSE = {"(": ")", "{": "}", "[": "]"}


class PromQLError(ValueError):
    """The query cannot be tokenised or its metric names cannot be told."""


@dataclass(frozen=True)
class Token:
    kind: str  # string | variable | duration | number | ident | op
    text: str
    pos: int


def tokenize(query: str) -> list[Token]:
    """Tokens of ``query`` without whitespace and comments; ``PromQLError`` at the first unknown character."""
    tokens, pos = [], 0
    while pos < len(query):
        match = _TOKEN.match(query, pos)
        if match is None:
            raise PromQLError(f"unexpected character {query[pos]!r} at offset {pos} in {query!r}")
        kind = match.lastgroup or ""
        if kind not in ("space", "comment"):
            tokens.append(Token(kind, match.group(), pos))
        pos = match.end()
    return tokens


def _check_balanced(tokens: list[Token], query: str) -> None:
    stack: list[Token] = []
    for tok in tokens:
        if tok.kind == "op" and tok.text in _CLOSE:
            stack.append(tok)
        elif tok.kind == "op" and tok.text in _CLOSE.values():
            if not stack or _CLOSE[stack[-1].text] != tok.text:
                raise PromQLError(f"unbalanced {tok.text!r} at offset {tok.pos} in {query!r}")
            stack.pop()
    if stack:
        raise PromQLError(f"unclosed {stack[-1].text!r} at offset {stack[-1].pos} in {query!r}")


def _skip_group(tokens: list[Token], i: int) -> int:
    """Index just after the bracket group opening at ``tokens[i]`` (balanced, so it closes)."""
    depth = 0
    for j in range(i, len(tokens)):
        if tokens[j].kind == "op" and tokens[j].text in _CLOSE:
            depth += 1
        elif tokens[j].kind == "op" and tokens[j].text in _CLOSE.values():
            depth -= 1
            if depth == 0:
                return j + 1
    return len(tokens)  # pragma: no cover - _check_balanced ran first


def _unquote(text: str) -> str:
    body = text[1:-1]
    return body if text[0] == "`" else re.sub(r"\\(.)", r"\1", body)


def _matcher_names(tokens: list[Token], query: str) -> set[str]:
    """Metric names inside one ``{...}``: a ``__name__="x"`` matcher or a quoted name (Prometheus 3)."""
    names: set[str] = set()
    for k, tok in enumerate(tokens):
        prev = tokens[k - 1] if k else None
        nxt = tokens[k + 1] if k + 1 < len(tokens) else None
        if tok.kind == "ident" and tok.text == "__name__" and nxt is not None:
            value = tokens[k + 2] if k + 2 < len(tokens) else None
            if nxt.text != "=" or value is None or value.kind != "string":
                raise PromQLError(f"__name__ matcher {nxt.text!r} at offset {tok.pos} cannot be verified in {query!r}")
            names.add(_unquote(value.text))
        elif tok.kind == "string" and (prev is None or prev.text == ",") and (nxt is None or nxt.text == ","):
            names.add(_unquote(tok.text))  # {"metric.name", label="x"}
    return names


def metric_names(query: str) -> set[str]:
    """Metric names selected by ``query`` (module docstring: what is dropped); ``PromQLError`` when unsure."""
    tokens = tokenize(query)
    if not tokens:
        raise PromQLError("empty query")
    _check_balanced(tokens, query)
    names: set[str] = set()
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        if tok.kind == "op" and tok.text == "{":
            end = _skip_group(tokens, i)
            names |= _matcher_names(tokens[i + 1 : end - 1], query)
            i = end
            continue
        if tok.kind == "op" and tok.text == "[":
            i = _skip_group(tokens, i)
            continue
        if tok.kind != "ident":
            i += 1
            continue
        word = tok.text.lower()
        opens = nxt is not None and nxt.text == "("
        aggregation = word in AGGREGATIONS and (opens or (nxt is not None and nxt.text.lower() in ("by", "without")))
        if word in LABEL_LISTS:
            i = _skip_group(tokens, i + 1) if opens else i + 1
        elif word in KEYWORDS or word in LITERALS or aggregation:
            i += 1
        elif opens:
            if tok.text not in FUNCTIONS:
                raise PromQLError(f"unknown function {tok.text!r} at offset {tok.pos} in {query!r}")
            i += 1
        else:
            names.add(tok.text)
            i += 1
    return names


def split_arguments(text: str) -> list[str]:
    """Top-level comma-separated arguments of a call's inside (commas in brackets or strings do not split)."""
    parts, depth, start = [], 0, 0
    for tok in tokenize(text):
        if tok.kind == "op" and tok.text in _CLOSE:
            depth += 1
        elif tok.kind == "op" and tok.text in _CLOSE.values():
            depth -= 1
        elif tok.kind == "op" and tok.text == "," and depth == 0:
            parts.append(text[start : tok.pos].strip())
            start = tok.pos + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def variable_query_metrics(query: str) -> set[str]:
    """Metric names a Grafana Prometheus variable query reads.

    ``label_values(label)`` and ``label_names()`` read no particular metric; ``label_values(selector, label)``
    the selector's; ``query_result(expr)`` the expression's. ``metrics(regex)`` cannot be verified (error).
    """
    match = re.fullmatch(r"\s*([A-Za-z_]+)\s*\((.*)\)\s*", query, re.DOTALL)
    if match is None:
        raise PromQLError(f"not a Grafana variable query: {query!r}")
    func, inside = match.groups()
    if func not in ("label_names", "label_values", "query_result"):
        raise PromQLError(f"cannot verify variable query {query!r} ({func} is not label_values/query_result)")
    args = split_arguments(inside) if inside.strip() else []
    if func == "label_names" or (func == "label_values" and len(args) == 1):
        return set()
    if func == "label_values" and len(args) == 2:
        return metric_names(args[0])
    if func == "query_result" and len(args) == 1:
        return metric_names(args[0])
    raise PromQLError(f"cannot verify variable query {query!r}")


def unknown_metrics(query: str, allowed: frozenset[str] | set[str]) -> set[str]:
    """Metric names of ``query`` that are not in ``allowed``."""
    return metric_names(query) - set(allowed)
