"""The project index: every scanned file, importable by module name, answered from summaries.

Rules ask it cross-file questions: what `RNNModel` in train.py is (a class in model.py),
what `from config import BPTT` is bound to, where a class is instantiated. Each file reached
by a question is summarised once per run from CPython's syntax tree (gradlint.index.summary):
names, scopes, bindings, call sites and options, without a tree. Summaries outlive the
release of libcst trees, so a file is never parsed twice to answer a lookup, and the cost of
the run grows with the number of files. Files outside the run (a model module next to a
script passed by pre-commit) are read from disk the same way. Which files mention a word is
answered from one inverted index of the run's identifiers, built on first use.

libcst trees (`parsed`) are for the files the engine checks, and for the few questions that
need the flow of another file's training step (see `model`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, TypeVar

from gradlint.index.current import CurrentValues
from gradlint.index.deps import Dependency, DependencyLog
from gradlint.index.disk import Disk, module_candidates
from gradlint.index.words import WordIndex
from gradlint.source import (
    DiskText,
    Parsed,
    ParseFailure,
    SourceError,
    SourceFile,
    cpython_parse,
    disk_of,
    parse,
    read_source,
    release,
)

if TYPE_CHECKING:
    from gradlint.analysis.model import CallSite, ClassInfo, FileModel, Function
    from gradlint.index.summary import CallSummary, ClassSummary, FileSummary, FunctionSummary
    from gradlint.index.syntax import Span

# The models, summaries and libcst are imported where a file is first parsed or summarised, not
# here: a run whose files hold no trigger word builds an index (for the cache) and parses nothing.

MAX_DEPTH = 8
T = TypeVar("T")


@dataclass(frozen=True, eq=False)
class Symbol:
    """What a name is bound to, and where."""

    path: Path
    summary: FileSummary
    kind: str
    """'class', 'function', 'value' or 'module'."""
    name: str
    target: ClassSummary | FunctionSummary | Span | None = None


class ProjectIndex(CurrentValues):
    """Every question answered here from another file is noted in `deps` (see index/deps.py),
    and nothing depends on which files happen to be parsed or summarised already: with `--jobs`
    each worker reads what its own questions reach, and gets the same answers."""

    def __init__(
        self, sources: Iterable[SourceFile], roots: Iterable[Path] = (), declared: "Mapping[str, str] | None" = None
    ) -> None:
        self.sources: dict[Path, SourceFile] = {source.path: source for source in sources}
        self.declared: dict[str, str] = dict(declared or {})
        """What the configuration says functions that cannot be read are: qualified name ->
        'clip' (`clip-functions`) or 'detach' (`detach-functions`)."""
        self._behaviour: Any = None
        self.deps = DependencyLog()
        self._loaded: dict[Path, Parsed | ParseFailure | None] = {}
        self._summaries: dict[Path, FileSummary | None] = {}
        self._roots = [Path(root) for root in roots]
        self._call_sites: dict[tuple, tuple[list[tuple[Path, CallSummary]], set]] = {}
        self._values: dict[Dependency, str] = {}
        self._tables: dict[str, dict] = {}
        self._lasting: dict[str, dict] = {}
        self.words = WordIndex(self.sources)
        """Which files of the run hold a word (index/words.py)."""
        self._in_roots: dict[tuple[str, ...], Path | None] = {}
        """A module name -> the file it finds in the import roots (or None)."""
        self._disk = Disk(self.sources)
        self.parsed_lines = 0
        """Lines parsed by libcst since the last release (a tree costs about 8 MiB per 1,000 lines)."""

    # ------------------------------------------------------------------ files

    def parsed(self, path: Path) -> Parsed | ParseFailure | None:
        """The file parsed by libcst (once per run until released), the reason it cannot be, or
        None when unreadable."""
        self.deps.note(("text", str(path)))
        if path in self._loaded:
            return self._loaded[path]
        from gradlint.analysis.builder import build_model
        from gradlint.index.summary import summarize

        loaded: Parsed | ParseFailure | None
        text = self._text(path)
        if text is None:
            loaded = None
        else:
            known = self._summaries.get(path)
            # A summary made earlier says CPython read this text: its lines spare a second read.
            loaded = parse(text, build_model, summarize if path not in self._summaries else None,
                           statement_lines=known.statement_lines if known is not None else None)
        self._loaded[path] = loaded
        if isinstance(loaded, Parsed):
            from gradlint.index.oracle import FileOracle

            loaded.model.oracle = FileOracle(self, self.behaviour, path)
            assert text is not None
            self.parsed_lines += text.count("\n") + 1
            if path not in self._summaries and loaded.summary is not None:
                self._summaries[path] = loaded.summary
                release(loaded.summary, self._disk_text(path, text))
        return loaded

    def summary(self, path: Path) -> FileSummary | None:
        """The file's summary (built once per run from CPython's tree); None when the file cannot
        be read or CPython's parser refuses it."""
        self.deps.note(("text", str(path)))
        if path in self._summaries:
            return self._summaries[path]
        from gradlint.index.summary import summarize

        summary = None
        text = self._text(path)
        if text is not None:
            try:
                summary = summarize(cpython_parse(text), text)
            except (SyntaxError, ValueError, RecursionError, MemoryError):
                summary = None
            if summary is not None:
                release(summary, self._disk_text(path, text))
        self._summaries[path] = summary
        return summary

    def _text(self, path: Path) -> str | None:
        source = self.sources.get(path)
        if source is not None:
            text = source.text
            if text is not None or disk_of(source) is not None:  # let go, and changed on disk since
                return text
        try:
            return read_source(path)
        except (SourceError, OSError):
            return None

    def _disk_text(self, path: Path, text: str) -> DiskText | None:
        """Where a summary's text is read again once let go: a file of the run read from disk
        shares its source's; a file outside the run was read from disk here; a buffer has none."""
        source = self.sources.get(path)
        if source is None:
            return DiskText(path, text)
        disk = source.disk_text()
        return disk if disk is not None and disk.length == len(text) else None

    @property
    def behaviour(self) -> Any:
        """What project functions do and what objects are (gradlint.index.behaviour): clipping,
        zeroing and detaching followed through calls and files, roles from bindings."""
        if self._behaviour is None:
            from gradlint.index.behaviour import Behaviour

            self._behaviour = Behaviour(self, self.declared)
        return self._behaviour

    def table(self, name: str) -> dict:
        """A memo table that lives as long as the parsed trees its entries point into."""
        return self._tables.setdefault(name, {})

    def memo_on(self, name: str, anchor: Any, compute: "Callable[[], T]") -> "T":
        """`compute()` once per `anchor` (a node or model of a parsed tree) in this index, with its
        dependencies replayed on every later use. Cross-file answers about a checked file are kept
        here, never on its model (`FileModel.derived`): a model may be reused by another index (the
        language server keeps parses while the text is the same) whose other files differ."""
        table = self.table(name)
        entry = table.get(id(anchor))
        if entry is not None and entry[0] is anchor:
            self.deps.note_all(entry[2])
            return entry[1]
        with self.deps.recording() as dependencies:
            value = compute()
        table[id(anchor)] = (anchor, value, dependencies)
        return value

    def lasting_table(self, name: str) -> dict:
        """A memo table whose entries hold no tree (summaries, values, strings): kept for the run."""
        return self._lasting.setdefault(name, {})

    def release(self) -> None:
        """Forget every libcst tree and everything computed from them (memory stays bounded on
        large runs), and the expressions summaries parsed back. Only between two files' checks:
        answers never depend on what is parsed, so a question asked again gets the same answer."""
        for loaded in self._loaded.values():
            if isinstance(loaded, Parsed):
                # What the rules derived from a model points back at it (steps' contexts hold
                # the model): emptied, the tree is freed as soon as it is dropped, without
                # waiting for the cycle collector.
                loaded.model.derived.clear()
        self._loaded.clear()
        self._tables.clear()
        for source in self.sources.values():
            source.model = source.positions = None
            source.fix_resolver = None
        for summary in self._summaries.values():
            if summary is not None:
                summary.forget_expressions()
        self.on_release()
        self.parsed_lines = 0

    def on_release(self) -> None:
        """Subclasses drop their own memo tables here."""

    def model(self, path: Path) -> FileModel | None:
        """The libcst model of a file in the run, or of any Python file on disk (parsed once until
        released). Cross-file questions use `summary`; this is for the checked file and for the
        flow of another file's training steps."""
        parsed = self.parsed(path)
        return parsed.model if isinstance(parsed, Parsed) else None

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

    def line_of(self, path: Path, at: Any) -> int:
        """The line of a span, of a libcst node of the file's tree, or of a node its summary
        parsed from a span (`FileSummary.expression`)."""
        if isinstance(at, int):
            return at
        if isinstance(at, tuple):
            return at[0]
        summary = self._summaries.get(path)
        parsed = self._loaded.get(path)
        if isinstance(parsed, Parsed) and parsed.positions.holds(at):
            return parsed.positions.start(at)[0]
        if summary is not None:
            line = summary.line_of(at)
            if line is not None:
                return line
        return 0

    def span_of(self, path: Path, node: Any) -> "tuple[tuple[int, int], tuple[int, int]] | None":
        """Where a node that a summary of `path` parsed from a span lies in the file (for a finding
        on a node the index found rather than the rule), as `LazyPositions.span` gives it."""
        summary = self._summaries.get(path)
        return summary.position_of(node) if summary is not None else None

    def where(self, path: Path, at: Any) -> str:
        """`model.py:12`, or `notebook.ipynb:cell 4:line 3` in a notebook."""
        line = self.line_of(path, at)
        source = self.sources.get(path)
        where = source.notebook.locate(line) if source is not None and source.notebook is not None else None
        if where is not None:
            return f"{self.display(path)}:cell {where[0]}:line {where[1]}"
        return f"{self.display(path)}:{line}"

    # ----------------------------------------------------------- which files

    def files_with(self, all_of: tuple[str, ...] = (), any_of: tuple[str, ...] = ()) -> Iterator[tuple[Path, FileModel]]:
        """Files of the run whose text holds all of `all_of` and one of `any_of` (when given),
        parsed by libcst on demand. Parsing is what costs: ask for every word the answer needs."""
        for path in self._scan(tuple(all_of), tuple(any_of)):
            model = self.model(path)
            if model is not None:
                yield path, model

    def summaries_with(self, all_of: tuple[str, ...] = (), any_of: tuple[str, ...] = ()) -> Iterator[tuple[Path, FileSummary]]:
        """Files of the run whose text holds all of `all_of` and one of `any_of`, summarised."""
        for path in self._scan(tuple(all_of), tuple(any_of)):
            summary = self.summary(path)
            if summary is not None:
                yield path, summary

    def _scan(self, all_of: tuple[str, ...], any_of: tuple[str, ...] = ()) -> list[Path]:
        self.deps.note(("scan", "\0".join(all_of), "\0".join(any_of)))
        return self._matching(all_of, any_of)

    def _matching(self, all_of: tuple[str, ...], any_of: tuple[str, ...]) -> list[Path]:
        return self.words.matching(all_of, any_of)

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
    def _folders(self) -> dict[Path, list[Path]]:
        """folder -> the run's files in it, sorted (one pass over the run, not one per question)."""
        folders: dict[Path, list[Path]] = {}
        for path in sorted(self.sources):
            folders.setdefault(path.parent, []).append(path)
        return folders

    @cached_property
    def _import_roots(self) -> list[Path]:
        roots: list[Path] = list(self._roots)
        known = set(roots)
        root_of: dict[Path, Path] = {}  # folder -> its root: files share folders
        for path in self.sources:
            folder = path.parent
            directory = root_of.get(folder)
            if directory is None:
                directory = folder
                while self._is_file(directory / "__init__.py") and directory.parent != directory:
                    directory = directory.parent
                root_of[folder] = directory
            if directory not in known:
                known.add(directory)
                roots.append(directory)
        return roots

    def module_path(self, importer: Path, module: str, level: int = 0) -> Path | None:
        """The file `import module` (or `from .module`, level dots) loads from `importer`.
        Asked about a thousand times for ten training scripts (each `torch.nn` name resolved
        goes through here) for a few dozen folders and names: memoized, dependencies replayed."""
        table = self.lasting_table("module_path")
        return self.deps.memo(table, (importer.parent, module, level), lambda: self._module_path(importer, module, level))

    def _module_path(self, importer: Path, module: str, level: int) -> Path | None:
        parts = [part for part in module.split(".") if part]
        if level:
            base = importer.parent
            for _ in range(level - 1):
                base = base.parent
            return self._module_file(base, parts)
        # A script imports its neighbours (`from model import RNNModel`), then the import roots.
        found = self._module_file(importer.parent, parts)
        if found is not None:
            return found
        # The roots are the same for every importer: looked up once per module name, so a run
        # of many script folders (each its own root) does not cost roots x imports lookups. The
        # answer is one dependency (which file the name finds in the roots), not one per file
        # tried in each root: a cached answer replays its dependencies into every later question,
        # and hundreds of roots made them the largest thing the run held (400,000 on torch).
        self.deps.note(("module", ".".join(parts)))
        return self._root_module_file(tuple(parts))

    def _root_module_file(self, parts: tuple[str, ...]) -> Path | None:
        if parts in self._in_roots:
            return self._in_roots[parts]
        found = None
        if parts:
            bases = self._roots_by_name.get(parts[0], ())
        else:
            bases = self._import_roots
        for base in bases:
            # Not noted file by file: the caller notes the one ('module', name) dependency.
            found = next((file for file in module_candidates(base, parts) if self._is_file(file)), None)
            if found is not None:
                break
        self._in_roots[parts] = found
        return found

    @cached_property
    def _roots_by_name(self) -> dict[str, list[Path]]:
        return self._disk.roots_by_name(self._import_roots, self.sources)

    def _exists(self, path: Path) -> bool:
        self.deps.note(("exists", str(path)))
        return self._is_file(path)

    def _is_file(self, path: Path) -> bool:
        return self._disk.is_file(path)

    def _module_file(self, base: Path, parts: "list[str] | tuple[str, ...]") -> Path | None:
        return next((file for file in module_candidates(base, parts) if self._exists(file)), None)

    # ---------------------------------------------------------------- symbols

    def resolve(self, path: Path, name: str, depth: int = 0) -> Symbol | None:
        """What the top-level `name` means in file `path`, following imports, re-exports and
        star imports."""
        summary = self.summary(path)
        if summary is None or depth > MAX_DEPTH:
            return None
        if name in summary.classes:
            return Symbol(path, summary, "class", name, summary.classes[name])
        if name in summary.functions:
            return Symbol(path, summary, "function", name, summary.functions[name])
        target = summary.imports.get(name)
        if target is not None:
            return self.resolve_qualified(path, target, depth + 1)
        if name in summary.constants:
            return Symbol(path, summary, "value", name, summary.constants[name])
        for module in summary.star_imports:
            level = len(module) - len(module.lstrip("."))
            file = self.module_path(path, module[level:], level)
            if file is not None and file != path:
                found = self.resolve(file, name, depth + 1)
                if found is not None:
                    return found
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
                summary = self.summary(file)
                return Symbol(file, summary, "module", ".".join(parts), None) if summary else None
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

    def class_symbol(self, path: Path, info: ClassInfo | ClassSummary) -> Symbol | None:
        """The symbol of a module-level class of `path` (given by its libcst or summary record)."""
        summary = self.summary(path)
        target = summary.classes.get(info.name) if summary is not None else None
        if summary is None or target is None:
            return None
        return Symbol(path, summary, "class", info.name, target)

    def callable_symbol(self, path: Path, function: FunctionSummary) -> Symbol | None:
        """The symbol whose call sites call `function`: its class for an `__init__`, itself for a
        module-level function; None for other methods and nested functions (their callers are
        found otherwise)."""
        if function.class_name is not None and function.name == "__init__":
            summary = self.summary(path)
            info = summary.classes.get(function.class_name) if summary is not None else None
            return self.class_symbol(path, info) if info is not None else None
        if function.parent is None and function.class_name is None:
            symbol = self.resolve(path, function.name)
            return symbol if symbol is not None and symbol.target is function else None
        return None

    def function_summary(self, path: Path, function: Function | FunctionSummary | None) -> FunctionSummary | None:
        """A function of `path` as its summary has it (the libcst model's functions map by key)."""
        from gradlint.index.summary import FunctionSummary

        if function is None or isinstance(function, FunctionSummary):
            return function
        summary = self.summary(path)
        return summary.function(function.key) if summary is not None else None

    def scope(self, path: Path, function: Function | FunctionSummary | None = None) -> "Any":
        """Where an expression of `path` is evaluated, for the resolver (index/values.py)."""
        from gradlint.index.summary import FileSummary
        from gradlint.index.values import Scope

        summary = self.summary(path)
        return Scope(path, summary if summary is not None else FileSummary(""), self.function_summary(path, function))

    # ------------------------------------------------------------- call sites

    def call_sites(self, symbol: Symbol) -> list[tuple[Path, CallSummary]]:
        """Where a class or function of the project is called, in any file of the run."""
        by_target = self.deps.memo(self._call_sites, (symbol.name,), lambda: self._find_call_sites(symbol.name))
        return list(by_target.get(id(symbol.target), ()))

    def _find_call_sites(self, name: str) -> dict[int, list[tuple[Path, CallSummary]]]:
        """Every call of something named `name` in the run, by what it resolves to (id of the
        target): resolved once for all the symbols of that name, so that many scripts each
        defining and calling their own `RNNModel` cost a run linear in their number."""
        found: dict[int, list[tuple[Path, CallSummary]]] = {}
        # `name(...)`, or a branch of a conditional callee: `(A if cfg.amp else name)(...)`.
        for path in self._scan((), (f"{name}(", f"{name})", f"{name} if")):
            summary = self.summary(path)
            for site in summary.calls if summary is not None else ():
                if site.callee.rsplit(".", 1)[-1] != name:
                    continue
                resolved = self.resolve_callee(path, site.callee)
                if resolved is not None:
                    found.setdefault(id(resolved.target), []).append((path, site))
        return found

    def model_call(self, path: Path, site: CallSummary) -> "tuple[FileModel, CallSite] | None":
        """A summary's call site as the file's libcst model has it (the two list calls in the same
        order; tests/test_summary.py holds them to it), for the few questions that follow the flow
        of another file. Parses that file with libcst."""
        summary = self.summary(path)
        model = self.model(path)
        if summary is None or model is None:
            return None
        for index, candidate in enumerate(summary.calls):
            if candidate is site:
                if index < len(model.calls) and model.calls[index].callee == site.callee:
                    return model, model.calls[index]
                return None
        return None
