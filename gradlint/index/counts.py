"""How many times a construction runs or appears: `for _ in range(N)`, `[... for _ in range(N)]`,
`[...] * N`, with N resolved through the project index (and where N came from, for messages)."""

from __future__ import annotations

from dataclasses import dataclass

import libcst as cst

from gradlint.analysis import values as arithmetic
from gradlint.analysis.layers import in_comprehension_element
from gradlint.analysis.names import dotted_name
from gradlint.index.values import Resolver, Scope

@dataclass(frozen=True)
class Count:
    """How many times something runs or appears, and why (`range(args.depth)`)."""

    value: int | None
    """None when a loop's length could not be resolved."""
    origins: tuple[str, ...] = ()

    def times(self, other: Count) -> Count:
        value = None if self.value is None or other.value is None else self.value * other.value
        return Count(value, self.origins + other.origins)


ONCE = Count(1)


_INTEGER_OPERATORS = (cst.Add, cst.Subtract, cst.Multiply, cst.FloorDivide)


def integer(node: cst.BaseExpression | None, resolver: Resolver, scope: Scope) -> Count:
    """An integer expression's value; also understands `len(x)` of a resolved list."""
    if node is None:
        return Count(None)
    if isinstance(node, cst.BinaryOperation) and isinstance(node.operator, _INTEGER_OPERATORS):
        left, right = integer(node.left, resolver, scope), integer(node.right, resolver, scope)
        value = arithmetic.binary(node.operator, left.value, right.value)
        return Count(value if isinstance(value, int) else None, left.origins + right.origins)
    if isinstance(node, cst.Call) and dotted_name(node.func) == "len" and len(node.args) == 1:
        resolved = resolver.resolve(node.args[0].value, scope)
        if resolved is None or not isinstance(resolved.value, (tuple, list, str, dict)):
            return Count(None)
        return Count(len(resolved.value), (resolved.origin,) if resolved.origin else ())
    resolved = resolver.resolve(node, scope)
    if resolved is None or not isinstance(resolved.value, int) or isinstance(resolved.value, bool):
        return Count(None)
    return Count(resolved.value, (resolved.origin,) if resolved.origin else ())


def iterations(iterable: cst.BaseExpression, resolver: Resolver, scope: Scope) -> Count:
    """How many times `for _ in <iterable>` runs: `range(...)`, `enumerate`/`zip` of known
    lengths, or a list/tuple that resolves."""
    if isinstance(iterable, cst.Call):
        callee = dotted_name(iterable.func)
        args = [arg for arg in iterable.args if arg.keyword is None and not arg.star]
        if callee == "range" and 1 <= len(args) <= 3 and len(args) == len(iterable.args):
            counts = [integer(arg.value, resolver, scope) for arg in args]
            if any(count.value is None for count in counts):
                return Count(None)
            values = [count.value for count in counts]
            try:
                length = len(range(*values))  # type: ignore[arg-type]
            except (ValueError, TypeError):
                return Count(None)
            return Count(length, tuple(origin for count in counts for origin in count.origins))
        if callee in ("enumerate", "reversed") and args:
            return iterations(args[0].value, resolver, scope)
        if callee == "zip" and args:
            counts = [iterations(arg.value, resolver, scope) for arg in args]
            if any(count.value is None for count in counts):
                return Count(None)
            return Count(min(count.value for count in counts if count.value is not None))
    if isinstance(iterable, (cst.List, cst.Tuple)) and not any(
        isinstance(element, cst.StarredElement) for element in iterable.elements
    ):
        return Count(len(iterable.elements))
    resolved = resolver.resolve(iterable, scope)
    if resolved is not None and isinstance(resolved.value, (tuple, list)):
        return Count(len(resolved.value), (resolved.origin,) if resolved.origin else ())
    return Count(None)


def comprehension_count(comp: cst.BaseComp, resolver: Resolver, scope: Scope) -> Count:
    """How many elements `[elt for a in A for b in B]` builds (unknown with an `if` filter)."""
    count = ONCE
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        if for_in.ifs:
            return Count(None)
        count = count.times(iterations(for_in.iter, resolver, scope))
        for_in = for_in.inner_for_in
    return count


def element_repeats(
    comp: cst.BaseComp, child: cst.CSTNode, visited: set[int], resolver: Resolver, scope: Scope
) -> Count | None:
    """How many times a construction under `comp` (reached through `child`; `visited` holds the
    ids on the way up) becomes one of its elements. In the element expression: once per
    iteration. In the iterable of a clause whose variable is the element
    (`[m for _ in range(n) for m in (nn.Linear(w, w), nn.ReLU())]`): once per iteration of the
    other clauses. None when the construction is not an element (a filter, another iterable)."""
    if in_comprehension_element(comp, child):
        return comprehension_count(comp, resolver, scope)
    element = getattr(comp, "elt", None)
    count = ONCE
    source: cst.CompFor | None = None
    for_in: cst.CompFor | None = comp.for_in
    while for_in is not None:
        if source is None and id(for_in.iter) in visited:
            source = for_in
            if not (
                isinstance(element, cst.Name) and isinstance(for_in.target, cst.Name)
                and for_in.target.value == element.value
            ):
                return None
        elif for_in.ifs:
            return Count(None)
        else:
            count = count.times(iterations(for_in.iter, resolver, scope))
        for_in = for_in.inner_for_in
    return count if source is not None else None


def repeat_factor(operation: cst.BinaryOperation, child: cst.CSTNode, resolver: Resolver, scope: Scope) -> Count | None:
    """`[layers] * N` (or `N * [layers]`) with `child` the list side: N. None when it is no repetition."""
    if not isinstance(operation.operator, cst.Multiply):
        return None
    other = operation.right if child is operation.left else operation.left
    if not isinstance(child, (cst.List, cst.Tuple, cst.ListComp)):
        return None
    return integer(other, resolver, scope)


def loop_count(loop: cst.For | cst.While, resolver: Resolver, scope: Scope) -> Count:
    if isinstance(loop, cst.While):
        return Count(None)
    return iterations(loop.iter, resolver, scope)




def describe_count(count: Count) -> str:
    origins = [origin for origin in count.origins if origin]
    return f" ({'; '.join(dict.fromkeys(origins))})" if origins else ""
