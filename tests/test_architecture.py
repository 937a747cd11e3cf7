"""The package's shape, checked: the pipeline's layers import in one direction, no module reaches
into another module's private names, and a module past 600 lines says why at its top.

docs/architecture.md describes the layers these tests hold the code to.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "gradlint"
MAX_LINES = 600
LONG_MODULE_REASON = "Over 600 lines because"

# What each layer may import from gradlint (besides itself). Lower layers never import higher ones:
# per-file analysis knows nothing of the project index, the index nothing of rules, rules nothing of
# the engine that runs them, and the probe (the one place torch may be imported) only reads findings.
ALLOWED = {
    "analysis": {"analysis"},
    "index": {"analysis", "index", "source"},
    "rules": {"analysis", "index", "rules", "findings", "fix"},
    "probe": {"probe", "findings"},
    "report": {"report", "findings", "rules", "docs"},
    # The language server sits on the pipeline's public stages, like the CLI, and never reaches the
    # probe (nor torch); `report` only for SARIF's rule URL, which diagnostics link to.
    "server": {
        "server", "api", "config", "findings", "fix", "rules", "docs", "discovery", "engine", "cache", "notebook",
        "suppress", "report", "source",
    },
    # The check daemon imports everything in advance (by name, through importlib) and runs the CLI
    # in its workers; its client, run before any of that on every `gradlint check`, imports none.
    "daemon": {"daemon", "cli", "api"},
}


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(tree: ast.AST, name: str, is_package: bool) -> list[tuple[str, ast.ImportFrom | ast.Import]]:
    """(absolute module, node) for every import in the module, relative ones resolved."""
    found: list[tuple[str, ast.ImportFrom | ast.Import]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".")
                base = base if is_package else base[:-1]
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            found.append((module, node))
    return found


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def parsed(path: Path) -> ast.Module:
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@pytest.mark.parametrize("path", modules(), ids=lambda path: module_name(path))
def test_no_module_imports_another_modules_private_name(path: Path) -> None:
    name = module_name(path)
    tree = parsed(path)
    offenders = []
    gradlint_aliases: set[str] = set()
    for module, node in imported_modules(tree, name, path.name == "__init__.py"):
        if not module.startswith("gradlint"):
            continue
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if is_private(alias.name):
                    offenders.append(f"line {node.lineno}: from {module} import {alias.name}")
                elif f"{module}.{alias.name}" != name:
                    gradlint_aliases.add(alias.asname or alias.name)
        else:
            for alias in node.names:
                if alias.name.startswith("gradlint"):
                    gradlint_aliases.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        # `frameworks._finder` after `from gradlint.index import frameworks`.
        if (
            isinstance(node, ast.Attribute)
            and is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in gradlint_aliases
            and node.value.id not in ("self", "cls")
        ):
            offenders.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
    assert not offenders, f"{name} uses private names of other modules: {offenders}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_layers_import_only_the_layers_below_them(layer: str) -> None:
    offenders = []
    for path in sorted((PACKAGE / layer).rglob("*.py")):
        name = module_name(path)
        for module, node in imported_modules(parsed(path), name, path.name == "__init__.py"):
            parts = module.split(".")
            if parts[0] != "gradlint" or len(parts) < 2:
                continue
            if parts[1] not in ALLOWED[layer]:
                offenders.append(f"{name} line {node.lineno}: imports {module}")
    assert not offenders, f"{layer}/ reaches a layer it must not: {offenders}"


@pytest.mark.parametrize("path", modules(), ids=lambda path: module_name(path))
def test_a_long_module_says_why_at_its_top(path: Path) -> None:
    lines = path.read_text(encoding="utf-8").count("\n")
    if lines <= MAX_LINES:
        return
    docstring = ast.get_docstring(parsed(path)) or ""
    assert LONG_MODULE_REASON in docstring, (
        f"{module_name(path)} has {lines} lines: split it by responsibility, or write "
        f"'{LONG_MODULE_REASON} ...' in its docstring"
    )


def test_the_guard_sees_a_private_import() -> None:
    """The private-name check is not vacuous: it flags the forms it is meant to catch."""
    tree = ast.parse("from gradlint.index.values import _bind\nfrom gradlint import x\nx._y\n")
    imports = imported_modules(tree, "gradlint.rules.demo", False)
    names = [alias.name for _, node in imports if isinstance(node, ast.ImportFrom) for alias in node.names]
    assert any(is_private(name) for name in names)
    assert any(
        isinstance(node, ast.Attribute) and is_private(node.attr) for node in ast.walk(tree)
    )
    assert not is_private("__version__")
