"""The project index: every scanned file, importable by module name, parsed on demand.

Rules ask it cross-file questions: what `RNNModel` in train.py is (a class in model.py),
what `from config import BPTT` is bound to, where a class is instantiated. Files that the
pre-filter did not parse (a `config.py` of constants) are parsed the first time a
question reaches them; files outside the run (a model module next to a script passed by
pre-commit) are read from disk the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Iterator

import libcst as cst

from gradlint.analysis.model import (
    CallSite,
    ClassInfo,
    FileModel,
    Function,
    build_model,
)
from gradlint.engine import (
    RiskFactorSite,
    SourceError,
    SourceFile,
    _LazyPositions,
    read_source,
)

MAX_DEPTH = 8


@dataclass(frozen=True, eq=False)
class Symbol:
    """What a name is bound to, and where."""

    path: Path
    model: FileModel
    kind: str
    """'class', 'function', 'value' or 'module'."""
    name: str
    target: ClassInfo | Function | cst.BaseExpression | None = None


class ProjectIndex:
    def __init__(self, sources: Iterable[SourceFile], roots: Iterable[Path] = ()) -> None:
        self.sources: dict[Path, SourceFile] = {source.path: source for source in sources}
        self._loaded: dict[Path, tuple[FileModel, _LazyPositions] | None] = {}
        self._roots = [Path(root) for root in roots]
        self._call_sites: dict[int, list[tuple[Path, CallSite]]] = {}

    # ------------------------------------------------------------------ files

    def model(self, path: Path) -> FileModel | None:
        """The model of a file in the run, or of any Python file on disk (parsed once)."""
        source = self.sources.get(path)
        if source is not None and source.model is not None:
            return source.model
        return (self._load(path, source) or (None,))[0]

    def line_of(self, path: Path, node: cst.CSTNode) -> int:
        source = self.sources.get(path)
        if source is not None and source.positions is not None:
            return source.positions.start(node)[0]
        loaded = self._load(path, source)
        return loaded[1].start(node)[0] if loaded else 0

    def display(self, path: Path) -> str:
        """As the user should read the path: like the files of the run (relative to the working
        directory when inside it), also for files the index read from disk on its own."""
        source = self.sources.get(path)
        if source is not None:
            return source.display_path
        try:
            return path.relative_to(Path.cwd()).as_posix()
        except ValueError:
            return path.as_posix()

    def where(self, path: Path, node: cst.CSTNode) -> str:
        return f"{self.display(path)}:{self.line_of(path, node)}"

    def _load(self, path: Path, source: SourceFile | None) -> tuple[FileModel, _LazyPositions] | None:
        if path in self._loaded:
            return self._loaded[path]
        loaded = None
        try:
            text = source.text if source is not None and source.text is not None else read_source(path)
            module = cst.parse_module(text)
            loaded = (build_model(module), _LazyPositions(module))
        except (SourceError, cst.ParserSyntaxError, RecursionError, OSError):
            loaded = None
        self._loaded[path] = loaded
        return loaded

    def files_mentioning(self, *needles: str) -> Iterator[tuple[Path, FileModel]]:
        """Files of the run whose text holds one of `needles`, parsed on demand."""
        for path, source in self.sources.items():
            if source.text is not None and any(needle in source.text for needle in needles):
                model = self.model(path)
                if model is not None:
                    yield path, model

    def models(self) -> Iterator[tuple[Path, FileModel]]:
        """Every file of the run that was parsed (those that could hold a finding)."""
        for path, source in self.sources.items():
            if source.model is not None:
                yield path, source.model

    # ---------------------------------------------------------------- modules

    @cached_property
    def roots(self) -> list[Path]:
        """Import roots: the folder above each top-level package of the run, plus given roots."""
        roots: list[Path] = list(self._roots)
        for path in self.sources:
            directory = path.parent
            while self._exists(directory / "__init__.py") and directory.parent != directory:
                directory = directory.parent
            if directory not in roots:
                roots.append(directory)
        return roots

    def module_path(self, importer: Path, module: str, level: int = 0) -> Path | None:
        """The file `import module` (or `from .module`, level dots) loads from `importer`."""
        parts = [part for part in module.split(".") if part]
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            return self._module_file(base, parts)
        # A script imports its neighbours (`from model import RNNModel`), then the import roots.
        for base in (importer.parent, *self.roots):
            found = self._module_file(base, parts)
            if found is not None:
                return found
        return None

    def _exists(self, path: Path) -> bool:
        return path in self.sources or path.is_file()

    def _module_file(self, base: Path, parts: list[str]) -> Path | None:
        if not parts:
            init = base / "__init__.py"
            return init if self._exists(init) else None
        candidate = base.joinpath(*parts)
        for file in (candidate.with_suffix(".py"), candidate / "__init__.py"):
            if self._exists(file):
                return file
        return None

    # ---------------------------------------------------------------- symbols

    def resolve(self, path: Path, name: str, depth: int = 0) -> Symbol | None:
        """What the top-level `name` means in file `path`, following imports and re-exports."""
        model = self.model(path)
        if model is None or depth > MAX_DEPTH:
            return None
        if name in model.classes:
            return Symbol(path, model, "class", name, model.classes[name])
        if name in model.functions:
            return Symbol(path, model, "function", name, model.functions[name])
        target = model.imports.aliases.get(name)
        if target is not None:
            return self.resolve_qualified(path, target, depth + 1)
        if name in model.constants:
            return Symbol(path, model, "value", name, model.constants[name])
        return None

    def resolve_qualified(self, importer: Path, qualified: str, depth: int = 0) -> Symbol | None:
        """Resolve an import target (`model.RNNModel`, `.model.RNNModel`, `pkg`) from `importer`."""
        if depth > MAX_DEPTH:
            return None
        level = len(qualified) - len(qualified.lstrip("."))
        parts = qualified[level:].split(".") if qualified[level:] else []
        # The longest prefix that is a module file; the rest are names inside it.
        for cut in range(len(parts), -1, -1):
            if cut == 0 and not level:
                break
            file = self.module_path(importer, ".".join(parts[:cut]), level)
            if file is None:
                continue
            rest = parts[cut:]
            if not rest:
                model = self.model(file)
                return Symbol(file, model, "module", ".".join(parts), None) if model else None
            symbol = self.resolve(file, rest[0], depth + 1)
            for attribute in rest[1:]:
                if symbol is None or symbol.kind != "module":
                    return None
                symbol = self.resolve(symbol.path, attribute, depth + 1)
            return symbol
        return None

    def resolve_callee(self, path: Path, callee: str) -> Symbol | None:
        """What a dotted callee (`RNNModel`, `models.RNNModel`) in `path` refers to."""
        head, _, rest = callee.partition(".")
        symbol = self.resolve(path, head)
        for attribute in rest.split(".") if rest else []:
            if symbol is None:
                return None
            if symbol.kind == "module":
                symbol = self.resolve(symbol.path, attribute)
            else:
                return None
        return symbol

    def class_symbol(self, path: Path, info: ClassInfo) -> Symbol:
        model = self.model(path)
        assert model is not None
        return Symbol(path, model, "class", info.name, info)

    # ------------------------------------------------------------- call sites

    def call_sites(self, symbol: Symbol) -> list[tuple[Path, CallSite]]:
        """Where a class or function of the project is called, in any file of the run.

        Files the pre-filter did not parse are parsed here, but only those whose text
        mentions the name: a `main.py` that only builds the model still counts.
        """
        cached = self._call_sites.get(id(symbol.target))
        if cached is not None:
            return cached
        found: list[tuple[Path, CallSite]] = []
        self._call_sites[id(symbol.target)] = found
        needle = f"{symbol.name}("
        for path, source in self.sources.items():
            if source.text is None or needle not in source.text:
                continue
            model = self.model(path)
            for site in model.calls if model is not None else ():
                if site.callee.rsplit(".", 1)[-1] != symbol.name:
                    continue
                resolved = self.resolve_callee(path, site.callee)
                if resolved is not None and resolved.target is symbol.target:
                    found.append((path, site))
        return found

    # ----------------------------------------------------------- risk factors

    def risk_factors_near(self, path: Path) -> list[RiskFactorSite]:
        """Risk factors in the file itself first, then in the scanned files beside it."""
        sites: list[RiskFactorSite] = []
        neighbours = sorted(other for other in self.sources if other.parent == path.parent and other != path)
        for file in [path, *neighbours]:
            source = self.sources.get(file)
            if source is None or source.model is None:
                continue
            for factor in source.model.risk_factors:
                sites.append(RiskFactorSite(file, source.display_path, source.line_of(factor.node), factor.description))
        return sites
