"""Name resolution: which module-level object a name or attribute chain is bound to.

We keep our own import map instead of libcst's QualifiedNameProvider: the provider needs
ScopeProvider, which costs about as much as parsing, while gradlint only has to know
what a dotted name resolves to through `import` / `from ... import ... as ...`.
"""

from __future__ import annotations

import libcst as cst


def dotted_name(node: cst.BaseExpression) -> str | None:
    """`a.b.c` for Name/Attribute chains, `a.b[...]` keeps the subscripted base; else None."""
    parts: list[str] = []
    while True:
        if isinstance(node, cst.Name):
            parts.append(node.value)
            return ".".join(reversed(parts))
        if isinstance(node, cst.Attribute):
            parts.append(node.attr.value)
            node = node.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        else:
            return None


def last_segment(dotted: str | None) -> str:
    return dotted.rsplit(".", 1)[-1] if dotted else ""


class ImportMap:
    """Maps local names to the qualified names they were imported as."""

    def __init__(self) -> None:
        self.aliases: dict[str, str] = {}

    def add_import(self, node: cst.Import) -> None:
        for alias in node.names:
            full = _module_name(alias.name)
            if full is None:
                continue
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                self.aliases[alias.asname.name.value] = full
            else:
                head = full.split(".", 1)[0]
                self.aliases[head] = head

    def add_import_from(self, node: cst.ImportFrom) -> None:
        if isinstance(node.names, cst.ImportStar):
            return
        module = _module_name(node.module) if node.module is not None else ""
        prefix = "." * len(node.relative) + (module or "")
        for alias in node.names:
            name = _module_name(alias.name)
            if name is None:
                continue
            local = name
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                local = alias.asname.name.value
            base = f"{prefix}.{name}" if prefix and not prefix.endswith(".") else f"{prefix}{name}"
            self.aliases[local] = base

    def qualify(self, dotted: str | None) -> str | None:
        """The qualified name of a dotted expression, or None when its head was not imported."""
        if not dotted:
            return None
        head, _, rest = dotted.partition(".")
        target = self.aliases.get(head)
        if target is None:
            return None
        return f"{target}.{rest}" if rest else target

    def qualify_expr(self, node: cst.BaseExpression) -> str | None:
        return self.qualify(dotted_name(node))


def _module_name(node: cst.BaseExpression | None) -> str | None:
    if node is None:
        return None
    return dotted_name(node)
