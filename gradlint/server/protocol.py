"""The LSP wiring: capabilities, the handlers, and the check rounds.

Documents are checked on open and on save at once, and on change 300 ms after the last
keystroke (`DEBOUNCE`). Checks run one round at a time in a worker thread, so the server keeps
reading messages while one runs; hovers and code actions wait for the round that checks the text
they are asked about. Anything that goes wrong in a round is logged to the client
(`window/logMessage`), never fatal: the server keeps serving.
"""

from __future__ import annotations

import asyncio
import os
import sys
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO, Iterable

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from gradlint import __version__
from gradlint.findings import Finding
from gradlint.notebook import NotebookError, parse_notebook
from gradlint.server import actions, convert
from gradlint.server.state import CONFIG_NAMES, SOURCE_SUFFIXES, Cell, Document, State, notebook_json, run_job

DEBOUNCE = 0.3
"""Seconds after the last change before a changed document is checked."""
WATCHED = ("**/*.py", "**/*.ipynb", "**/pyproject.toml", "**/gradlint.toml", "**/.gradlint.toml", "**/.gitignore")
"""What the server asks the client to watch on disk (files edited outside the editor)."""
NOTEBOOKS = types.NotebookDocumentSyncOptions(
    notebook_selector=[
        types.NotebookDocumentFilterWithNotebook(
            notebook=types.NotebookDocumentFilterPattern(pattern="**/*.ipynb"),
            cells=[types.NotebookCellLanguage(language="python")],
        )
    ]
)
"""Jupyter notebooks with Python cells. The filter names the notebook (not only the cells, which
LSP allows): lsprotocol 2025.0.0 cannot read a cells-only filter back, so Python clients could not."""


class GradlintServer(LanguageServer):
    def __init__(self) -> None:
        super().__init__(
            "gradlint",
            __version__,
            text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
            notebook_document_sync=NOTEBOOKS,
        )
        self.state = State()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gradlint-check")
        self._waiting: set[Path] = set()
        """Changed documents whose debounce has not run out."""
        self._ready: set[Path] = set()
        self._everything = False
        self._reload = False
        self._wanted = False
        """A round is due (it may have nothing changed to check: then it re-checks what depends on
        files that changed elsewhere, closed or on disk)."""
        self._timer: asyncio.TimerHandle | None = None
        self._rounds_task: asyncio.Task | None = None

    # ------------------------------------------------------------------ client facts

    @property
    def encoding(self) -> str:
        return str(self.workspace.position_encoding or types.PositionEncodingKind.Utf16)

    @property
    def document_changes(self) -> bool:
        workspace = self.client_capabilities.workspace
        edit = workspace.workspace_edit if workspace is not None else None
        return bool(edit is not None and edit.document_changes)

    def folders(self) -> list[Path]:
        paths = [_path(folder.uri) for folder in self.workspace.folders.values()]
        if not paths and self.workspace.root_uri:
            paths = [_path(self.workspace.root_uri)]
        return [path for path in paths if path is not None]

    def log(self, message: str, kind: types.MessageType = types.MessageType.Log) -> None:
        self.window_log_message(types.LogMessageParams(type=kind, message=message))

    # ------------------------------------------------------------------ scheduling

    def schedule(
        self, paths: Iterable[Path] = (), *, delay: float = 0.0, everything: bool = False, reload: bool = False
    ) -> None:
        """Check `paths` after `delay` seconds (a later call for the same paths restarts the wait),
        every open document (`everything`), after reading the configuration again (`reload`)."""
        self._waiting.update(paths)
        self._everything |= everything
        self._reload |= reload
        if self._timer is not None:
            self._timer.cancel()
        self._timer = asyncio.get_running_loop().call_later(delay, self._start)

    def _start(self) -> None:
        self._timer = None
        self._ready |= self._waiting
        self._waiting = set()
        self._wanted = True
        if self._rounds_task is None or self._rounds_task.done():
            self._rounds_task = asyncio.get_running_loop().create_task(self._rounds())

    async def _rounds(self) -> None:
        while self._wanted:
            ready, everything, reload = self._ready, self._everything, self._reload
            self._ready, self._everything, self._reload, self._wanted = set(), False, False, False
            try:
                await self._round(ready, everything, reload)
            except Exception as error:  # a bug here must not stop the server
                self.log(f"gradlint: internal error: {_describe(error)}", types.MessageType.Error)

    async def settle(self, document: Document) -> None:
        """Wait until `document`'s current text is checked (hover and code actions need it)."""
        for _ in range(5):
            if document.fresh or self.state.documents.get(document.path) is not document:
                return
            self._waiting.add(document.path)
            if self._timer is not None:
                self._timer.cancel()
            self._start()
            if self._rounds_task is not None:
                await asyncio.shield(self._rounds_task)

    async def _round(self, ready: set[Path], everything: bool, reload: bool) -> None:
        self.state.set_folders(self.folders())
        if reload:
            self.state.reload()
        jobs = self.state.plan(ready, everything)
        for message in self.state.messages:
            self.window_show_message(types.ShowMessageParams(type=types.MessageType.Error, message=message))
            self.log(message, types.MessageType.Error)
        self.state.messages.clear()
        loop = asyncio.get_running_loop()
        for job in jobs:
            results = await loop.run_in_executor(self._executor, run_job, job)
            for document in self.state.take(job, results):
                self.publish(document)

    # ------------------------------------------------------------------ results

    def layout(self, document: Document) -> convert.Layout:
        text = document.checked_text if document.checked_text is not None else document.text
        if document.cells is None:
            return convert.Layout.text_document(document.uri, text)
        try:
            notebook = parse_notebook(text)
        except NotebookError:
            notebook = None
        return convert.Layout.notebook([(cell.uri, cell.text) for cell in document.cells], notebook)

    def publish(self, document: Document) -> None:
        checked = document.checked
        if checked is None:
            return
        result = checked.result
        logs = [(f"gradlint: internal error in {e.path}: {e.message}", types.MessageType.Error) for e in result.errors]
        if result.skipped is not None:
            skipped = result.skipped
            logs.append((f"gradlint: {skipped.path} skipped: {skipped.reason}", types.MessageType.Warning))
        if checked.excluded:
            excluded = f"gradlint: {result.display_path} is excluded by the configuration: not checked"
            logs.append((excluded, types.MessageType.Log))
        for message, kind in logs:
            if message not in document.logged:
                self.log(message, kind)
        document.logged = frozenset(message for message, _ in logs)
        shown = convert.diagnostics(result.findings, self.layout(document), self.encoding)
        for uri, diagnostics in shown.items():
            version = document.version if uri == document.uri else None
            self.text_document_publish_diagnostics(
                types.PublishDiagnosticsParams(uri=uri, diagnostics=diagnostics, version=version)
            )

    def clear(self, document: Document) -> None:
        uris = [cell.uri for cell in document.cells] if document.cells is not None else [document.uri]
        for uri in uris:
            self.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=uri, diagnostics=[]))

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._executor.shutdown(wait=False, cancel_futures=True)

    def located(self, document: Document, uri: str) -> list[tuple[Finding, types.Range]]:
        """The findings of `document` shown in the document `uri`, with their ranges."""
        assert document.checked is not None
        layout = self.layout(document)
        found = []
        for finding in document.checked.result.findings:
            location = convert.finding_location(finding, layout, self.encoding)
            if location is not None and location[0] == uri:
                found.append((finding, location[1]))
        return found

    def code_actions(self, document: Document, params: types.CodeActionParams) -> list[types.CodeAction]:
        assert document.checked is not None and document.checked_text is not None
        uri, only = params.text_document.uri, params.context.only
        encoding, changes = self.encoding, self.document_changes
        layout = self.layout(document)
        fixes: list[types.CodeAction] = []
        suppressions: list[types.CodeAction] = []
        seen: set[tuple[str, int]] = set()
        for finding, where in self.located(document, uri):
            quick_fixes = actions.wanted_kind(types.CodeActionKind.QuickFix, only)
            if not quick_fixes or not convert.overlaps(where, params.range):
                continue
            converted = convert.diagnostic(finding, layout, encoding)
            assert converted is not None
            diagnostic = converted[1]
            if document.cells is None:
                text = document.checked_text
                fix = actions.fix_action(finding, diagnostic, text, uri, document.version, encoding, changes)
                if fix is not None:
                    fixes.append(fix)
            if (finding.code, where.start.line) in seen:
                continue
            seen.add((finding.code, where.start.line))
            text, version = document.checked_text, document.version
            if document.cells is not None:  # the suppression goes into the cell's own text
                text, version = next((cell.text for cell in document.cells if cell.uri == uri), ""), None
            lines = [where.start.line, where.end.line]
            suppress = actions.suppress_action(finding.code, lines, text, uri, version, diagnostic, encoding, changes)
            if suppress is not None:
                suppressions.append(suppress)
        fixes.sort(key=lambda action: not action.is_preferred)
        found = fixes + suppressions
        if document.cells is None and actions.wanted_kind(actions.FIX_ALL, only):
            fix_all = actions.fix_all_action(
                document.checked.result.findings, document.checked_text, uri, document.version, encoding, changes
            )
            if fix_all is not None:
                found.append(fix_all)
        return found


def _path(uri: str) -> Path | None:
    """The file a `file:` URI names (absolute, not resolved: discovery does not resolve either)."""
    if not uri.startswith("file:"):
        return None
    path = to_fs_path(uri)
    return Path(os.path.abspath(path)) if path else None


def _describe(error: BaseException) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
    where = f" ({Path(frame.filename).name}:{frame.lineno})" if frame is not None else ""
    return f"{type(error).__name__}: {error}{where}"


def _source_path(uri: str) -> Path | None:
    path = _path(uri)
    return path if path is not None and path.suffix.lower() == ".py" else None


def _notebook_path(uri: str) -> Path | None:
    path = _path(uri)
    return path if path is not None and path.suffix.lower() == ".ipynb" else None


def make_server() -> GradlintServer:
    server = GradlintServer()

    @server.feature(types.INITIALIZED)
    async def initialized(ls: GradlintServer, params: types.InitializedParams) -> None:
        ls.state.set_folders(ls.folders())
        workspace = ls.client_capabilities.workspace
        watched = workspace.did_change_watched_files if workspace is not None else None
        if watched is None or not watched.dynamic_registration:
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern=pattern) for pattern in WATCHED]
        )
        registration = types.Registration(
            id="gradlint-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES, register_options=options
        )
        try:
            await ls.client_register_capability_async(types.RegistrationParams(registrations=[registration]))
        except Exception as error:  # the client may refuse: saves still re-read the configuration
            ls.log(f"gradlint: cannot watch files: {error}", types.MessageType.Warning)

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: GradlintServer, params: types.DidOpenTextDocumentParams) -> None:
        item = params.text_document
        path = _source_path(item.uri)
        if path is None or ls.workspace.get_notebook_document(cell_uri=item.uri) is not None:
            return
        ls.state.open(Document(item.uri, path, item.version, item.text))
        ls.schedule([path])

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: GradlintServer, params: types.DidChangeTextDocumentParams) -> None:
        document = ls.state.documents.get(_source_path(params.text_document.uri) or Path())
        if document is None or document.cells is not None:
            return
        document.text = ls.workspace.get_text_document(params.text_document.uri).source
        document.version = params.text_document.version
        ls.schedule([document.path], delay=DEBOUNCE)

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE, types.SaveOptions(include_text=False))
    def did_save(ls: GradlintServer, params: types.DidSaveTextDocumentParams) -> None:
        path = _path(params.text_document.uri)
        if path is None:
            return
        if path.name in CONFIG_NAMES:
            ls.schedule(everything=True, reload=True)
        elif path in ls.state.documents:
            ls.schedule([path])

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: GradlintServer, params: types.DidCloseTextDocumentParams) -> None:
        path = _source_path(params.text_document.uri)
        document = ls.state.documents.get(path) if path is not None else None
        if document is None or document.cells is not None:
            return
        ls.state.close(document.path)
        ls.clear(document)
        ls.schedule()  # the others now read this file from disk: re-check those that depend on it

    def notebook(ls: GradlintServer, uri: str) -> None:
        path = _notebook_path(uri)
        notebook = ls.workspace.get_notebook_document(notebook_uri=uri)
        if path is None or notebook is None:
            return
        text_of = ls.workspace.get_text_document
        cells = [
            Cell(cell.document, cell.kind == types.NotebookCellKind.Code, text_of(cell.document).source)
            for cell in notebook.cells
        ]
        document = ls.state.documents.get(path)
        if document is None:
            document = Document(uri, path, notebook.version, "")
            ls.state.open(document)
        old = {cell.uri for cell in document.cells or []} - {cell.uri for cell in cells}
        for gone in old:  # a deleted cell keeps no diagnostics
            ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=gone, diagnostics=[]))
        document.cells, document.version, document.text = cells, notebook.version, notebook_json(cells)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_OPEN)
    def notebook_open(ls: GradlintServer, params: types.DidOpenNotebookDocumentParams) -> None:
        notebook(ls, params.notebook_document.uri)
        path = _notebook_path(params.notebook_document.uri)
        if path is not None:
            ls.schedule([path])

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CHANGE)
    def notebook_change(ls: GradlintServer, params: types.DidChangeNotebookDocumentParams) -> None:
        notebook(ls, params.notebook_document.uri)
        path = _notebook_path(params.notebook_document.uri)
        if path is not None:
            ls.schedule([path], delay=DEBOUNCE)

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_SAVE)
    def notebook_save(ls: GradlintServer, params: types.DidSaveNotebookDocumentParams) -> None:
        path = _notebook_path(params.notebook_document.uri)
        if path is not None and path in ls.state.documents:
            ls.schedule([path])

    @server.feature(types.NOTEBOOK_DOCUMENT_DID_CLOSE)
    def notebook_close(ls: GradlintServer, params: types.DidCloseNotebookDocumentParams) -> None:
        path = _notebook_path(params.notebook_document.uri)
        document = ls.state.close(path) if path is not None else None
        if document is not None:
            ls.clear(document)
            ls.schedule()

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files(ls: GradlintServer, params: types.DidChangeWatchedFilesParams) -> None:
        paths = [path for path in (_path(change.uri) for change in params.changes) if path is not None]
        if any(path.name in CONFIG_NAMES or path.name == ".gitignore" for path in paths):
            ls.schedule(everything=True, reload=True)
        elif any(path.suffix.lower() in SOURCE_SUFFIXES for path in paths):
            ls.schedule()  # re-check the open documents whose facts read these files

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(ls: GradlintServer, params: types.DidChangeWorkspaceFoldersParams) -> None:
        ls.schedule(everything=True)

    @server.feature(types.TEXT_DOCUMENT_HOVER)
    async def hover(ls: GradlintServer, params: types.HoverParams) -> types.Hover | None:
        document = ls.state.by_uri(params.text_document.uri)
        if document is None:
            return None
        await ls.settle(document)
        if not document.fresh:
            return None
        found = [
            (finding, where)
            for finding, where in ls.located(document, params.text_document.uri)
            if convert.contains(where, params.position)
        ]
        return convert.hover(found)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=actions.KINDS, resolve_provider=False),
    )
    async def code_action(ls: GradlintServer, params: types.CodeActionParams) -> list[types.CodeAction] | None:
        document = ls.state.by_uri(params.text_document.uri)
        if document is None:
            return None
        await ls.settle(document)
        if not document.fresh:
            return None
        return ls.code_actions(document, params)

    @server.feature(types.SHUTDOWN)
    def shutdown(ls: GradlintServer, params: None) -> None:
        ls.stop()

    return server


def serve(stdin: BinaryIO, stdout: BinaryIO) -> None:
    """Serve over the given streams until the client says exit. Whatever else writes to
    `sys.stdout` goes to stderr: stdout carries only the protocol."""
    sys.stdout = sys.stderr
    make_server().start_io(stdin, stdout)
