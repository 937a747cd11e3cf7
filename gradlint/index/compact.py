"""A file summary made small once built: every summary of the run is kept to its end.

On the 2,000-file corpus the summaries were the largest thing a run held (147 MiB for 1,253
files, 180,000 call sites and 30,000 functions). Most of it was spans and what surrounds them:
a span is a tuple of four ints, and a line or column above 256 is an int object of its own
(28 bytes), made again for every span; the `if` guards of each call were a tuple of their own
per call; a function without local functions, loop names or unpacking still had its own empty
dict and sets. `compact` rewrites a freshly built summary in place, before anything else holds
a part of it, with equal values shared:

- the ints of spans and lines come from one table (`number`), equal spans and guard tuples of a
  file are one object;
- names and qualified names are interned;
- sets of names (only asked `name in`) are tuples, or frozensets past 8 names; lists are
  tuples; empty dicts are one read-only empty mapping (nothing changes a summary once built:
  the summarizer alone fills it, and a write to a shared part now fails instead).

Values stay equal, so no answer changes; only objects the summary alone holds are replaced
(a `FunctionSummary`, `CallSummary` or `ClassSummary` keeps its identity).
"""

from __future__ import annotations

import sys
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gradlint.index.summary import FileSummary

EMPTY_MAPPING: Any = MappingProxyType({})
"""Every empty dict of a built summary (read-only: a write would change all of them, so fails)."""
_NUMBERS: list[int] = []
intern = sys.intern


def number(value: int) -> int:
    """`value` as the one shared int object of the run (ints up to 256 are shared by Python)."""
    if value <= 256 or value < 0:
        return value
    if value >= len(_NUMBERS):
        _NUMBERS.extend(range(len(_NUMBERS), value + 1024))
    return _NUMBERS[value]


class _Shared:
    def __init__(self) -> None:
        self.spans: dict[Any, Any] = {}
        self.guards: dict[Any, Any] = {}

    def span(self, span: Any) -> Any:
        if span is None:
            return None
        found = self.spans.get(span)
        if found is None:
            line, column, end_line, end_column = span
            found = self.spans[span] = (number(line), number(column), number(end_line), number(end_column))
        return found

    def guard(self, guards: tuple) -> tuple:
        if not guards:
            return ()
        found = self.guards.get(guards)
        if found is None:
            found = self.guards[guards] = tuple((self.span(span), taken) for span, taken in guards)
        return found

    def spans_of(self, mapping: dict) -> Any:
        if not mapping:
            return EMPTY_MAPPING
        for name, span in mapping.items():
            mapping[name] = self.span(span)
        return mapping


def _names(names: set[str]) -> "tuple[str, ...] | frozenset[str]":
    """A set of names asked only `name in names`: a tuple when short (a set of up to 4 names
    takes 216 bytes, a tuple of 4 72), interned."""
    if not names:
        return ()
    kept = tuple(intern(name) for name in names)
    return kept if len(kept) <= 8 else frozenset(kept)


def compact(summary: "FileSummary") -> None:
    shared = _Shared()
    span = shared.span
    for call in summary.calls:
        call.span = span(call.span)
        call.guards = shared.guard(call.guards)
    for function in summary.all_functions:
        function.qualname = intern(function.qualname)
        function.key = intern(function.key)
        function.line = number(function.line)
        function.span = span(function.span)
        function.returns_annotation = span(function.returns_annotation)
        for param in function.params:
            param.default = span(param.default)
            param.annotation = span(param.annotation)
            param.line = number(param.line)
        function.bindings = (
            {intern(name): span(value) for name, value in function.bindings.items()}
            if function.bindings else EMPTY_MAPPING
        )
        function.assigned = _names(function.assigned)
        function.loop_names = _names(function.loop_names)
        function.single_targets = tuple(intern(name) for name in function.single_targets)
        if not function.local_functions:
            function.local_functions = EMPTY_MAPPING
        function.unpacked = (
            {intern(name): (span(value), position) for name, (value, position) in function.unpacked.items()}
            if function.unpacked else EMPTY_MAPPING
        )
        for returned in function.returns:
            object.__setattr__(returned, "value", span(returned.value))
            object.__setattr__(returned, "line", number(returned.line))
            object.__setattr__(returned, "guards", shared.guard(returned.guards))
        function.returns = tuple(function.returns)
        facts = function.facts
        facts.returns = tuple(span(value) for value in facts.returns)
        facts.clips = tuple((number(line), what) for line, what in facts.clips)
        facts.wraps_in_fsdp = tuple(facts.wraps_in_fsdp)
    for info in summary.classes.values():
        info.line = number(info.line)
        info.span = span(info.span)
        info.bases = tuple(intern(base) for base in info.bases)
        info.decorators = tuple(intern(decorator) for decorator in info.decorators)
        if not info.methods:
            info.methods = EMPTY_MAPPING
        info.attribute_values = shared.spans_of(info.attribute_values)
        if not info.attribute_functions:
            info.attribute_functions = EMPTY_MAPPING
        info.class_values = shared.spans_of(info.class_values)
    summary.imports = {intern(name): intern(target) for name, target in summary.imports.items()}
    summary.constants = shared.spans_of(summary.constants) if summary.constants else {}
    for option in summary.argparse.values():
        option.call = span(option.call)
        option.default = span(option.default)
    summary.statement_lines = [number(line) for line in summary.statement_lines]
