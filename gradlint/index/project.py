"""The project index: every scanned file, importable by module name, parsed on demand.

Rules ask it cross-file questions: what `RNNModel` in train.py is (a class in model.py),
what `from config import BPTT` is bound to, where a class is instantiated. Files that the
pre-filter did not parse (a `config.py` of constants) are parsed the first time a
question reaches them; files outside the run (a model module next to a script passed by
pre-commit) are read from disk the same way.
"""

from __future__ import annotations

import hashlib
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
from gradlint.source import (
    Parsed,
    ParseFailure,
    RiskFactorSite,
    SourceError,
    SourceFile,
    parse,
    read_source,
)
from gradlint.index.deps import Dependency, DependencyLog

MAX_DEPTH = 8

RISK_TRIGGERS = ("RNN", "LSTM", "GRU", "lr=", "lr =")
"""Text a file must hold to be read for risk factors (GL101's context)."""


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
    """Every question answered here from another file is noted in `deps` (see index/deps.py),
    and nothing depends on which files happen to be parsed already: with `--jobs` each worker
    parses its own share of the run plus what the questions reach, and gets the same answers."""

    def __init__(self, sources: Iterable[SourceFile], roots: Iterable[Path] = ()) -> None:
        self.sources: dict[Path, SourceFile] = {source.path: source for source in sources}
        self.deps = DependencyLog()
        self._loaded: dict[Path, Parsed | ParseFailure | None] = {}
        self._roots = [Path(root) for root in roots]
        self._call_sites: dict[int, tuple[list[tuple[Path, CallSite]], set]] = {}
        self._values: dict[Dependency, str] = {}
        self._tables: dict[str, dict] = {}
        self.parsed_lines = 0
        """Lines parsed since the last release (a syntax tree costs about 8 MiB per 1,000 lines)."""

    # ------------------------------------------------------------------ files

    def parsed(self, path: Path) -> Parsed | ParseFailure | None:
        """The file parsed (once per run), the reason it cannot be, or None when unreadable."""
        self.deps.note(("text", str(path)))
        if path in self._loaded:
            return self._loaded[path]
        loaded: Parsed | ParseFailure | None
        source = self.sources.get(path)
        try:
            text = source.text if source is not None and source.text is not None else read_source(path)
        except (SourceError, OSError):
            loaded = None
        else:
            loaded = parse(text, build_model)
        self._loaded[path] = loaded
        if isinstance(loaded, Parsed):
            self.parsed_lines += text.count("\n") + 1
        return loaded

    def table(self, name: str) -> dict:
        """A memo table that lives as long as the parsed trees its entries point into."""
        return self._tables.setdefault(name, {})

    def release(self) -> None:
        """Forget every parsed tree and everything computed from them (memory stays bounded on
        large runs). Only between two files' checks: answers never depend on what is parsed,
        so a question asked again is parsed again and gets the same answer."""
        self._loaded.clear()
        self._call_sites.clear()
        self._tables.clear()
        for source in self.sources.values():
            source.model = source.positions = None
        self.on_release()
        self.parsed_lines = 0

    def on_release(self) -> None:
        """Subclasses drop their own memo tables here."""

    def model(self, path: Path) -> FileModel | None:
        """The model of a file in the run, or of any Python file on disk (parsed once)."""
        parsed = self.parsed(path)
        return parsed.model if isinstance(parsed, Parsed) else None

    def line_of(self, path: Path, node: cst.CSTNode) -> int:
        parsed = self.parsed(path)
        return parsed.positions.start(node)[0] if isinstance(parsed, Parsed) else 0

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
        """`model.py:12`, or `notebook.ipynb:cell 4:line 3` in a notebook."""
        line = self.line_of(path, node)
        source = self.sources.get(path)
        where = source.notebook.locate(line) if source is not None and source.notebook is not None else None
        if where is not None:
            return f"{self.display(path)}:cell {where[0]}:line {where[1]}"
        return f"{self.display(path)}:{line}"

    def files_with(self, all_of: tuple[str, ...] = (), any_of: tuple[str, ...] = ()) -> Iterator[tuple[Path, FileModel]]:
        """Files of the run whose text holds all of `all_of` and one of `any_of` (when given),
        parsed on demand. Parsing is what costs: ask for every word the answer needs."""
        for path in self._scan(tuple(all_of), tuple(any_of)):
            model = self.model(path)
            if model is not None:
                yield path, model

    def _scan(self, all_of: tuple[str, ...], any_of: tuple[str, ...] = ()) -> list[Path]:
        self.deps.note(("scan", "\0".join(all_of), "\0".join(any_of)))
        return self._matching(all_of, any_of)

    def _matching(self, all_of: tuple[str, ...], any_of: tuple[str, ...]) -> list[Path]:
        return [
            path
            for path, source in self.sources.items()
            if source.text is not None
            and all(needle in source.text for needle in all_of)
            and (not any_of or any(needle in source.text for needle in any_of))
        ]

    def paths(self) -> list[Path]:
        """Every file of the run, sorted."""
        self.deps.note(("members",))
        return sorted(self.sources)

    # ---------------------------------------------------------------- modules

    @property
    def roots(self) -> list[Path]:
        """Import roots: the folder above each top-level package of the run, plus given roots."""
        self.deps.note(("roots",))
        return self._import_roots

    @cached_property
    def _import_roots(self) -> list[Path]:
        roots: list[Path] = list(self._roots)
        for path in self.sources:
            directory = path.parent
            while self._is_file(directory / "__init__.py") and directory.parent != directory:
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
        self.deps.note(("exists", str(path)))
        return self._is_file(path)

    def _is_file(self, path: Path) -> bool:
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
        return self.deps.memo(self._call_sites, id(symbol.target), lambda: self._find_call_sites(symbol))

    def _find_call_sites(self, symbol: Symbol) -> list[tuple[Path, CallSite]]:
        found: list[tuple[Path, CallSite]] = []
        for path in self._scan((f"{symbol.name}(",)):
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
        self.deps.note(("folder", str(path.parent)))
        sites: list[RiskFactorSite] = []
        neighbours = sorted(other for other in self.sources if other.parent == path.parent and other != path)
        for file in [path, *neighbours]:
            text = self.sources[file].text if file in self.sources else None
            if text is None or not any(trigger in text for trigger in RISK_TRIGGERS):
                continue
            parsed = self.parsed(file)
            if not isinstance(parsed, Parsed):
                continue
            for factor in parsed.model.risk_factors:
                sites.append(RiskFactorSite(file, self.display(file), parsed.positions.start(factor.node)[0], factor.description))
        return sites

    # ------------------------------------------------------------ the cache

    def dependency_value(self, dependency: Dependency) -> str:
        """What a dependency reads now, as a digest (the cache compares it with the stored one)."""
        value = self._values.get(dependency)
        if value is None:
            value = self._values[dependency] = _digest(self._current(dependency))
        return value

    def _current(self, dependency: Dependency) -> object:
        kind, *args = dependency
        if kind == "text":
            path = Path(args[0])
            source = self.sources.get(path)
            if source is not None and source.text is not None:
                return source.text
            try:
                return read_source(path)
            except SourceError as error:
                return f"unreadable: {error}"
        if kind == "file":
            path = Path(args[0])
            source = self.sources.get(path)
            if source is not None and source.text is not None:
                return source.text
            try:
                return path.read_bytes()
            except OSError:
                return None
        if kind == "exists":
            return self._is_file(Path(args[0]))
        if kind == "scan":
            all_of, any_of = (tuple(part.split("\0")) if part else () for part in args)
            return [str(path) for path in self._matching(all_of, any_of)]
        if kind == "folder":
            return sorted(str(path) for path in self.sources if str(path.parent) == args[0])
        if kind == "roots":
            return [str(root) for root in self._import_roots]
        if kind == "members":
            return sorted(str(path) for path in self.sources)
        raise ValueError(f"unknown dependency {dependency!r}")


def _digest(value: object) -> str:
    if isinstance(value, bytes):
        data = value
    elif isinstance(value, str):
        data = value.encode("utf-8", "surrogatepass")
    else:
        data = repr(value).encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()
