"""`gradlint server` end to end: a real LSP client (pytest-lsp) talking to the real server over stdio.

Most tests share one server (starting one costs a second or more, most of it importing
lsprotocol), each in a folder of its own of the shared workspace; the tests that change the
server's configuration or patch it get their own. Every wait for what the server publishes
(diagnostics, messages, logs) has a deadline, so a server that never sends it fails the test
instead of hanging it. Pieces of the server tested without a client: tests/test_server_parts.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from pathlib import Path
from typing import AsyncIterator, Callable

import pytest

pytest.importorskip("pygls")
pytest_asyncio = pytest.importorskip("pytest_asyncio")
pytest_lsp = pytest.importorskip("pytest_lsp")

from lsprotocol import types  # noqa: E402
from pytest_lsp import ClientServerConfig, LanguageClient  # noqa: E402
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features  # noqa: E402

from gradlint.report.sarif import help_uri  # noqa: E402
from gradlint.rules import RULES_BY_CODE  # noqa: E402

TIMEOUT = 20.0
"""Seconds a test waits for the server (the machine may be busy; a healthy server takes < 1 s)."""

TRAIN = '''import torch
import torch.nn as nn


def train(model, loader, optimizer, scaler):
    criterion = nn.MSELoss(reduction="sum")
    for x, y in loader:
        optimizer.zero_grad()
        loss = criterion(model(x), y)
        scaler.scale(loss).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        scaler.step(optimizer)
        scaler.update()


def finetune(model, loader, optimizer):
    for x in loader:
        optimizer.zero_grad()
        model(x).mean().backward()
        optimizer.step()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
'''
"""GL109 (info, no fix) on line 10, GL103 (error, safe fix) on line 11, GL102 (error, safe fix) on line 21."""

GL103_MESSAGE = (
    "`torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)` clips gradients that "
    "`scaler.scale(loss).backward()` at line 10 multiplied by the loss scale, and "
    "`scaler.unscale_(optimizer)` is missing: the threshold is effectively divided by the scale (often 65536)"
)

MODEL = '''import torch.nn as nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.layer = nn.Linear(4, 4)
'''

SCRIPT = '''import torch
from model import Net

model = Net()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
for x, y in data:
    optimizer.zero_grad()
    loss = model(x).sum()
    loss.backward()
    optimizer.step()
'''
"""GL101 on `optimizer.step()` (line 10): info while `Net` has no recurrent layer, a warning once it has."""


# ----------------------------------------------------------------------------- the harness


def server_command(prelude: str = "") -> list[str]:
    """`gradlint server` through the real console entry point, after `prelude` (Python run first)."""
    code = f"{prelude}\nimport sys\nfrom gradlint.cli import main\nsys.argv = ['gradlint', 'server']\nmain()\n"
    return [sys.executable, "-c", code]


def make_client() -> LanguageClient:
    client = LanguageClient()
    client.published = []  # type: ignore[attr-defined]

    def publish(client: LanguageClient, params: types.PublishDiagnosticsParams) -> None:
        client.diagnostics[params.uri] = params.diagnostics
        client.published.append(params)  # type: ignore[attr-defined]

    def register(client: LanguageClient, params: types.RegistrationParams) -> None:
        client.registrations = params.registrations  # type: ignore[attr-defined]

    features = {
        **DEFAULT_CLIENT_FEATURES,
        types.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS: publish,
        types.CLIENT_REGISTER_CAPABILITY: register,
    }
    register_lsp_features(client, features)
    return client


def capabilities() -> types.ClientCapabilities:
    """VS Code's capabilities (UTF-16 positions, versioned document edits), with notebooks."""
    caps = pytest_lsp.client_capabilities("visual-studio-code")
    caps.notebook_document = types.NotebookDocumentClientCapabilities(
        synchronization=types.NotebookDocumentSyncClientCapabilities()
    )
    return caps


@contextlib.asynccontextmanager
async def session(workspace: Path, prelude: str = "") -> AsyncIterator[LanguageClient]:
    """initialize ... shutdown + exit; the server must exit 0."""
    config = ClientServerConfig(server_command=server_command(prelude), client_factory=make_client)
    client = await config.start()
    try:
        result = await asyncio.wait_for(
            client.initialize_session(
                types.InitializeParams(
                    capabilities=capabilities(),
                    root_uri=workspace.as_uri(),
                    workspace_folders=[types.WorkspaceFolder(uri=workspace.as_uri(), name=workspace.name)],
                )
            ),
            TIMEOUT,
        )
        client.init_result = result  # type: ignore[attr-defined]
        yield client
        await asyncio.wait_for(client.shutdown_session(), TIMEOUT)
        assert client._server is not None and client._server.returncode == 0
    finally:
        if client._server is not None and client._server.returncode is None:
            client._server.kill()  # a test that failed midway: never leave the server behind
        await client.stop()


async def until(condition: Callable[[], object], what: str, client: LanguageClient) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + TIMEOUT
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}; diagnostics: {client.diagnostics}")
        await asyncio.sleep(0.02)


async def diagnostics(client: LanguageClient, uri: str, codes: list[str]) -> list[types.Diagnostic]:
    """Wait until the diagnostics of `uri` have exactly `codes` (in order); return them."""
    await until(
        lambda: uri in client.diagnostics and [d.code for d in client.diagnostics[uri]] == codes,
        f"{codes} on {uri}",
        client,
    )
    return list(client.diagnostics[uri])


def open_file(client: LanguageClient, path: Path, text: str | None = None, version: int = 1) -> str:
    uri = path.as_uri()
    item = types.TextDocumentItem(uri=uri, language_id="python", version=version, text=text or path.read_text())
    client.text_document_did_open(types.DidOpenTextDocumentParams(text_document=item))
    return uri


def change(client: LanguageClient, uri: str, version: int, text: str) -> None:
    client.text_document_did_change(
        types.DidChangeTextDocumentParams(
            text_document=types.VersionedTextDocumentIdentifier(uri=uri, version=version),
            content_changes=[types.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )


def published(client: LanguageClient, uri: str) -> list[int | None]:
    """The versions of every publishDiagnostics for `uri` so far."""
    return [params.version for params in client.published if params.uri == uri]  # type: ignore[attr-defined]


def span(line: int, start: int, end: int, end_line: int | None = None) -> types.Range:
    return types.Range(
        start=types.Position(line=line, character=start),
        end=types.Position(line=line if end_line is None else end_line, character=end),
    )


def apply(text: str, edits: list[types.TextEdit]) -> str:
    """What the client does with a WorkspaceEdit's text edits (ASCII text: UTF-16 = characters)."""
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(position: types.Position) -> int:
        return offsets[min(position.line, len(lines))] + position.character

    for edit in sorted(edits, key=lambda e: offset(e.range.start), reverse=True):
        text = text[: offset(edit.range.start)] + edit.new_text + text[offset(edit.range.end) :]
    return text


def edits_of(action: types.CodeAction, uri: str, version: int) -> list[types.TextEdit]:
    """The action's edits of `uri`, which must be versioned (the client takes documentChanges)."""
    assert action.edit is not None and action.edit.document_changes is not None
    (change,) = action.edit.document_changes
    assert isinstance(change, types.TextDocumentEdit)
    assert change.text_document.uri == uri and change.text_document.version == version
    return list(change.edits)


async def code_actions(
    client: LanguageClient, uri: str, where: types.Range, only: list[str] | None = None
) -> list[types.CodeAction]:
    params = types.CodeActionParams(
        text_document=types.TextDocumentIdentifier(uri=uri),
        range=where,
        context=types.CodeActionContext(diagnostics=[], only=only),
    )
    found = await asyncio.wait_for(client.text_document_code_action_async(params), TIMEOUT)
    return [action for action in found or [] if isinstance(action, types.CodeAction)]


def close_file(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(types.DidCloseTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri)))


class Shared:
    """The server most tests share, and its workspace."""

    def __init__(self, client: LanguageClient, root: Path) -> None:
        self.client, self.root = client, root

    def folder(self, name: str, files: dict[str, str]) -> Path:
        folder = self.root / name
        folder.mkdir()
        for file, text in files.items():
            (folder / file).write_text(text)
        return folder


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def shared(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Shared]:
    root = tmp_path_factory.mktemp("workspace")
    async with session(root) as client:
        yield Shared(client, root)


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    """A workspace for a server of the test's own."""
    root = tmp_path / "project"
    root.mkdir()
    (root / "train.py").write_text(TRAIN)
    return root


asyncio_test = pytest.mark.asyncio(loop_scope="module")


# ----------------------------------------------------------------------------- the session


@asyncio_test
async def test_initialize_advertises_what_the_server_does(shared: Shared) -> None:
    client = shared.client
    capabilities = client.init_result.capabilities  # type: ignore[attr-defined]
    assert client.init_result.server_info.name == "gradlint"  # type: ignore[attr-defined]
    sync = capabilities.text_document_sync
    assert sync.open_close and sync.change == types.TextDocumentSyncKind.Incremental
    assert sync.save == types.SaveOptions(include_text=False)
    assert list(capabilities.code_action_provider.code_action_kinds) == ["quickfix", "source.fixAll.gradlint"]
    assert capabilities.hover_provider
    assert capabilities.notebook_document_sync is not None
    await until(lambda: getattr(client, "registrations", None), "the file watchers", client)
    (registration,) = client.registrations  # type: ignore[attr-defined]
    assert registration.method == types.WORKSPACE_DID_CHANGE_WATCHED_FILES
    patterns = [watcher["globPattern"] for watcher in registration.register_options["watchers"]]
    assert "**/pyproject.toml" in patterns and "**/*.py" in patterns


@asyncio_test
async def test_open_change_save_and_the_diagnostics(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("open_change_save_and_the", {"train.py": TRAIN})
    uri = open_file(client, workspace / "train.py")
    gl109, gl103, gl102 = await diagnostics(client, uri, ["GL109", "GL103", "GL102"])

    assert gl103.range == span(10, 8, 63)
    assert gl103.severity == types.DiagnosticSeverity.Error
    assert gl103.source == "gradlint"
    assert gl103.message == GL103_MESSAGE
    assert gl103.code_description.href == help_uri("GL103", "clipping-before-unscale")
    assert gl103.code_description.href.endswith("/rules/GL103-clipping-before-unscale.md")
    assert [(r.location.uri, r.location.range, r.message) for r in gl103.related_information] == [
        (uri, span(9, 8, 37), "scaled gradients are computed here")
    ]
    assert gl109.severity == types.DiagnosticSeverity.Information and gl109.range == span(9, 8, 37)
    assert [r.message for r in gl102.related_information] == [
        "gradients are computed here",
        "the weights are updated here",
    ]
    assert published(client, uri)[-1] == 1

    # Two quick edits: only the last is checked (debounced), and the publish says its version.
    before = len(published(client, uri))
    fixed = TRAIN.replace(
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        scaler.step",
        "        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n"
        "        scaler.step",
    )
    change(client, uri, 2, TRAIN.replace("def train(", "def train(:"))
    change(client, uri, 3, fixed)
    await diagnostics(client, uri, ["GL109", "GL102"])
    assert published(client, uri)[before:] == [3]

    # Saving checks the file again at once.
    (workspace / "train.py").write_text(fixed)
    client.text_document_did_save(
        types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=uri))
    )
    await until(lambda: len(published(client, uri)) > before + 1, "the check on save", client)
    assert [d.code for d in client.diagnostics[uri]] == ["GL109", "GL102"]

    close_file(client, uri)
    await until(lambda: list(client.diagnostics[uri]) == [], "the diagnostics cleared on close", client)


@asyncio_test
async def test_quick_fix_and_applying_it(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("quick_fix_and_applying_i", {"train.py": TRAIN})
    uri = open_file(client, workspace / "train.py")
    await diagnostics(client, uri, ["GL109", "GL103", "GL102"])
    found = await code_actions(client, uri, span(10, 20, 20), only=["quickfix"])
    assert [(a.title, a.kind, a.is_preferred) for a in found] == [
        ("Fix GL103: insert `scaler.unscale_(optimizer)` before the clip", "quickfix", True),
        ("Suppress GL103 on this line", "quickfix", None),
    ]
    fix = found[0]
    assert [d.code for d in fix.diagnostics] == ["GL103"]
    # Asked for every kind, the file's fix-all comes last.
    everything = await code_actions(client, uri, span(10, 20, 20))
    assert [a.kind for a in everything] == ["quickfix", "quickfix", "source.fixAll.gradlint"]
    edits = edits_of(fix, uri, 1)
    assert edits == [types.TextEdit(range=span(10, 0, 0), new_text="        scaler.unscale_(optimizer)\n")]

    change(client, uri, 2, apply(TRAIN, edits))
    await diagnostics(client, uri, ["GL109", "GL102"])
    close_file(client, uri)


@asyncio_test
async def test_fix_all_applies_every_safe_fix_of_the_file(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("fix_all_applies_every_sa", {"train.py": TRAIN})
    uri = open_file(client, workspace / "train.py")
    await diagnostics(client, uri, ["GL109", "GL103", "GL102"])
    (action,) = await code_actions(client, uri, span(0, 0, 0), only=["source.fixAll"])
    assert action.kind == "source.fixAll.gradlint"
    assert action.title == "Fix all safe gradlint findings in this file (2 findings)"
    after = apply(TRAIN, edits_of(action, uri, 1))
    assert "        scaler.unscale_(optimizer)\n        torch.nn.utils.clip_grad_norm_" in after
    assert after.endswith(
        "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n        optimizer.step()\n"
    )
    change(client, uri, 2, after)
    await diagnostics(client, uri, ["GL109"])
    assert await code_actions(client, uri, span(0, 0, 0), only=["source.fixAll"]) == []
    close_file(client, uri)


@asyncio_test
async def test_unsafe_fix_is_labelled_and_not_preferred(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("unsafe_fix_is_labelled_a", {"model.py": MODEL, "script.py": SCRIPT})
    uri = open_file(client, workspace / "script.py")
    await diagnostics(client, uri, ["GL101"])
    fix, suppress = await code_actions(client, uri, span(9, 4, 20))
    assert fix.title == (
        "Fix GL101: insert `torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)` "
        "before the step (unsafe)"
    )
    assert fix.is_preferred is False
    assert edits_of(fix, uri, 1) == [
        types.TextEdit(
            range=span(9, 0, 0),
            new_text="    torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)\n",
        )
    ]
    assert suppress.title == "Suppress GL101 on this line"
    # Unsafe fixes are never part of fix-all.
    assert await code_actions(client, uri, span(0, 0, 0), only=["source.fixAll"]) == []
    close_file(client, uri)


@asyncio_test
async def test_suppress_action_adds_or_extends_the_comment(shared: Shared) -> None:
    text = TRAIN.replace(
        "        scaler.scale(loss).backward()\n", "        scaler.scale(loss).backward()  # gradlint: ignore[GL111]\n"
    )
    client = shared.client
    workspace = shared.folder("suppress_action_adds_or", {"train.py": TRAIN})
    uri = open_file(client, workspace / "train.py", text)
    await diagnostics(client, uri, ["GL109", "GL103", "GL102"])
    (suppress,) = await code_actions(client, uri, span(9, 8, 8), only=["quickfix"])
    assert suppress.title == "Suppress GL109 on this line"
    edits = edits_of(suppress, uri, 1)
    assert edits == [types.TextEdit(range=span(9, 63, 63), new_text=", GL109")]
    text = apply(text, edits)
    assert text.splitlines()[9] == "        scaler.scale(loss).backward()  # gradlint: ignore[GL111, GL109]"

    change(client, uri, 2, text)
    await diagnostics(client, uri, ["GL103", "GL102"])
    fix, suppress = await code_actions(client, uri, span(10, 8, 8), only=["quickfix"])
    assert suppress.title == "Suppress GL103 on this line"
    edits = edits_of(suppress, uri, 2)
    assert edits == [types.TextEdit(range=span(10, 63, 63), new_text="  # gradlint: ignore[GL103]")]
    change(client, uri, 3, apply(text, edits))
    await diagnostics(client, uri, ["GL102"])
    close_file(client, uri)


@asyncio_test
async def test_hover_shows_the_rule_and_the_fix(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("hover_shows_the_rule_and", {"train.py": TRAIN})
    uri = open_file(client, workspace / "train.py")
    await diagnostics(client, uri, ["GL109", "GL103", "GL102"])
    params = types.HoverParams(
        text_document=types.TextDocumentIdentifier(uri=uri), position=types.Position(line=10, character=30)
    )
    hover = await asyncio.wait_for(client.text_document_hover_async(params), TIMEOUT)
    assert hover.range == span(10, 8, 63)
    assert hover.contents.kind == types.MarkupKind.Markdown
    assert hover.contents.value == "\n\n".join(
        [
            f"**GL103** `clipping-before-unscale` (error): {RULES_BY_CODE['GL103'].summary}",
            "**Fix:** Call `scaler.unscale_(optimizer)` right before clipping.",
            "Quick fix available.",
            f"[GL103 clipping-before-unscale]({help_uri('GL103', 'clipping-before-unscale')})",
        ]
    )
    params.position = types.Position(line=2, character=0)
    assert await asyncio.wait_for(client.text_document_hover_async(params), TIMEOUT) is None
    close_file(client, uri)


# ----------------------------------------------------------------------------- the project


@asyncio_test
async def test_an_unsaved_model_changes_the_finding_of_the_script(shared: Shared) -> None:
    client = shared.client
    workspace = shared.folder("an_unsaved_model_changes", {"model.py": MODEL, "script.py": SCRIPT})
    script = open_file(client, workspace / "script.py")
    (gl101,) = await diagnostics(client, script, ["GL101"])
    assert gl101.range == span(9, 4, 20)
    assert gl101.severity == types.DiagnosticSeverity.Information

    model = open_file(client, workspace / "model.py")
    await diagnostics(client, model, [])
    change(client, model, 2, MODEL.replace("nn.Linear(4, 4)", "nn.RNN(4, 4)"))  # not saved
    await until(
        lambda: [d.severity for d in client.diagnostics[script] if d.code == "GL101"]
        == [types.DiagnosticSeverity.Warning],
        "GL101 to become a warning",
        client,
    )
    gl101 = next(d for d in client.diagnostics[script] if d.code == "GL101")
    assert f"`Net` has a recurrent layer (nn.RNN at {workspace.name}/model.py:7)" in gl101.message
    assert (workspace / "model.py").read_text() == MODEL

    # Closed without saving: the script is judged by the model on disk again.
    close_file(client, model)
    (gl101,) = await diagnostics(client, script, ["GL101"])
    assert gl101.severity == types.DiagnosticSeverity.Information
    close_file(client, script)


@asyncio_test
async def test_configuration_is_read_again_and_a_broken_one_is_a_message(workspace: Path) -> None:
    pyproject = workspace / "pyproject.toml"
    async with session(workspace) as client:
        uri = open_file(client, workspace / "train.py")
        await diagnostics(client, uri, ["GL109", "GL103", "GL102"])

        pyproject.write_text('[tool.gradlint]\nignore = ["GL109"]\n\n[tool.gradlint.GL102]\nseverity = "warning"\n')
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=pyproject.as_uri(), type=types.FileChangeType.Created)]
            )
        )
        _, gl102 = await diagnostics(client, uri, ["GL103", "GL102"])
        assert gl102.severity == types.DiagnosticSeverity.Warning

        pyproject.write_text('[tool.gradlint]\nignore = ["GL109"]\nunknown-key = 1\n')
        client.workspace_did_change_watched_files(
            types.DidChangeWatchedFilesParams(
                changes=[types.FileEvent(uri=pyproject.as_uri(), type=types.FileChangeType.Changed)]
            )
        )
        await until(lambda: client.messages, "a message about the broken configuration", client)
        (message,) = client.messages
        assert message.type == types.MessageType.Error
        assert message.message.startswith("gradlint: configuration error: ")
        assert "unknown-key" in message.message
        assert message.message.endswith("(checking with the previous configuration until it is fixed)")
        # The server still serves, with the configuration that last loaded.
        change(client, uri, 2, TRAIN + "\n")
        await until(lambda: published(client, uri)[-1:] == [2], "the check of version 2", client)
        assert [d.code for d in client.diagnostics[uri]] == ["GL103", "GL102"]

        # Saving the configuration in the editor reads it again too.
        pyproject.write_text('[tool.gradlint]\nignore = ["GL102"]\n')
        toml = pyproject.as_uri()
        client.text_document_did_open(
            types.DidOpenTextDocumentParams(
                text_document=types.TextDocumentItem(uri=toml, language_id="toml", version=1, text=pyproject.read_text())
            )
        )
        client.text_document_did_save(
            types.DidSaveTextDocumentParams(text_document=types.TextDocumentIdentifier(uri=toml))
        )
        await diagnostics(client, uri, ["GL109", "GL103"])
        assert len(client.messages) == 1


# ----------------------------------------------------------------------------- robustness


@asyncio_test
async def test_a_file_that_does_not_parse_is_gl000_and_the_server_goes_on(shared: Shared) -> None:
    client = shared.client
    broken = "import torch\ndef train(:\n    loss.backward()\n"
    workspace = shared.folder("does_not_parse", {"train.py": TRAIN, "broken.py": broken})
    uri = open_file(client, workspace / "broken.py")
    (gl000,) = await diagnostics(client, uri, ["GL000"])
    assert gl000.range == span(1, 10, 11)
    assert gl000.message == "cannot parse this file: invalid syntax"
    assert gl000.severity == types.DiagnosticSeverity.Error
    assert await code_actions(client, uri, span(1, 10, 10)) == []  # a syntax error is fixed, not suppressed

    train = open_file(client, workspace / "train.py")
    await diagnostics(client, train, ["GL109", "GL103", "GL102"])
    change(client, uri, 2, "import torch\ndef train(x):\n    x.backward()\n")
    await diagnostics(client, uri, [])
    close_file(client, uri)
    close_file(client, train)


@asyncio_test
async def test_a_crashing_rule_is_logged_and_the_others_still_report(workspace: Path) -> None:
    prelude = (
        "from gradlint.rules import RULES_BY_CODE\n"
        "def boom(self, model, context):\n"
        "    raise RuntimeError('boom')\n"
        "RULES_BY_CODE['GL109'].check = boom\n"
    )
    async with session(workspace, prelude) as client:
        uri = open_file(client, workspace / "train.py")
        await diagnostics(client, uri, ["GL103", "GL102"])
        await until(lambda: any("GL109 crashed" in m.message for m in client.log_messages), "the log", client)
        (log,) = [m for m in client.log_messages if "crashed" in m.message]
        assert log.type == types.MessageType.Error
        assert log.message.startswith("gradlint: internal error in train.py: GL109 crashed: RuntimeError: boom (")


@asyncio_test
async def test_the_server_never_imports_torch(workspace: Path, tmp_path: Path) -> None:
    """The whole session runs with torch made unimportable, and the server process reports at exit
    which torch or probe modules it loaded: none."""
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "torch.py").write_text("raise ImportError('gradlint server must not import torch')\n")
    report = tmp_path / "modules.txt"
    prelude = (
        f"import sys, atexit\nsys.path.insert(0, {str(blocker)!r})\n"
        "def report():\n"
        f"    with open({str(report)!r}, 'w') as out:\n"
        "        out.write(' '.join(m for m in sys.modules if m.split('.')[0] == 'torch' or m.startswith('gradlint.probe')))\n"
        "atexit.register(report)\n"
    )
    (workspace / "model.py").write_text(MODEL.replace("nn.Linear(4, 4)", "nn.RNN(4, 4, nonlinearity='relu')"))
    async with session(workspace, prelude) as client:
        uri = open_file(client, workspace / "train.py")
        await diagnostics(client, uri, ["GL109", "GL103", "GL102"])
        model = open_file(client, workspace / "model.py")
        await until(lambda: client.diagnostics.get(model), "the model's findings", client)
        await code_actions(client, uri, span(10, 8, 8))
    assert report.read_text() == ""
    assert not [m for m in client.log_messages if "torch" in m.message]


# ----------------------------------------------------------------------------- notebooks


@asyncio_test
async def test_a_notebooks_findings_are_shown_in_their_cells(shared: Shared) -> None:
    client = shared.client
    path = shared.folder("notebook", {}) / "explore.ipynb"
    cells = [
        (types.NotebookCellKind.Code, "python", "%matplotlib inline\nimport torch\n"),
        (types.NotebookCellKind.Markup, "markdown", "# Fine-tuning\n"),
        (
            types.NotebookCellKind.Code,
            "python",
            "def finetune(model, loader, optimizer):\n"
            "    for x in loader:\n"
            "        optimizer.zero_grad()\n"
            "        model(x).mean().backward()\n"
            "        optimizer.step()\n"
            "        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n",
        ),
    ]
    path.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    uris = [f"vscode-notebook-cell:{path}#C{number}" for number in range(1, len(cells) + 1)]
    client.notebook_document_did_open(
        types.DidOpenNotebookDocumentParams(
            notebook_document=types.NotebookDocument(
                uri=path.as_uri(),
                notebook_type="jupyter-notebook",
                version=1,
                cells=[types.NotebookCell(kind=kind, document=uri) for (kind, _, _), uri in zip(cells, uris)],
            ),
            cell_text_documents=[
                types.TextDocumentItem(uri=uri, language_id=language, version=1, text=text)
                for (_, language, text), uri in zip(cells, uris)
            ],
        )
    )
    (gl102,) = await diagnostics(client, uris[2], ["GL102"])
    assert gl102.range == span(5, 8, 63)
    assert [(r.location.uri, r.location.range.start.line) for r in gl102.related_information] == [
        (uris[2], 3),
        (uris[2], 4),
    ]
    assert list(client.diagnostics[uris[0]]) == [] and list(client.diagnostics[uris[1]]) == []
    # Notebooks are never fixed; a suppression goes into the cell.
    (suppress,) = await code_actions(client, uris[2], span(5, 8, 8))
    assert suppress.title == "Suppress GL102 on this line"
    (edit,) = suppress.edit.document_changes
    assert edit.text_document.uri == uris[2]
    assert list(edit.edits) == [types.TextEdit(range=span(5, 63, 63), new_text="  # gradlint: ignore[GL102]")]
    client.notebook_document_did_close(
        types.DidCloseNotebookDocumentParams(
            notebook_document=types.NotebookDocumentIdentifier(uri=path.as_uri()),
            cell_text_documents=[types.TextDocumentIdentifier(uri=uri) for uri in uris],
        )
    )
    await until(lambda: list(client.diagnostics[uris[2]]) == [], "the cells' diagnostics cleared on close", client)
