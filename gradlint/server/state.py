"""What the server knows: the open documents, the workspace folders and their configuration, and
what a check round checks. No LSP types here: the wiring (protocol.py) feeds it texts and paths.

A round is planned on the event loop (`plan`: a snapshot of the buffers), run in a worker thread
(`run_job`, which only calls `gradlint.api.check_documents`), and its results are taken back on
the event loop (`take`), where a result for a text that has changed since is dropped: the change
scheduled another round.

Cross-file facts: each document's last result keeps the facts it rests on (which files' texts,
which module files exist, ...). A round checks the documents that changed and hands the others'
facts to `check_documents`, which checks again every document one of whose facts now reads
differently: an unsaved edit to `model.py` re-checks the open `train.py` that trains its model.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from gradlint.api import CheckedDocument, check_documents
from gradlint.config import Config, ConfigError, load_config
from gradlint.source import ParsedFiles

PARSED_LINES_KEPT = 30_000
"""Lines of parsed files the server keeps between checks (about 8 MiB per 1,000 lines): enough
for the files that the open documents' cross-file questions reach in most projects."""
CONFIG_NAMES = frozenset({"pyproject.toml", "gradlint.toml", ".gradlint.toml"})
"""Files whose change makes the server read the configuration again."""
SOURCE_SUFFIXES = (".py", ".ipynb")


@dataclass
class Cell:
    uri: str
    code: bool
    """A code cell (else markdown or raw: it counts in the cell numbers, but is not checked)."""
    text: str


@dataclass
class Document:
    """An open `.py` file, or an open notebook (whose cells are documents of their own)."""

    uri: str
    """The text document's URI, or the notebook's."""
    path: Path
    version: int | None
    text: str
    """What gradlint reads: the source, or for a notebook the JSON of its cells."""
    cells: list[Cell] | None = None
    checked: CheckedDocument | None = None
    checked_text: str | None = None
    """The text `checked` is the result for."""
    logged: frozenset[str] = frozenset()
    """What the last result logged to the client (the same crash is not logged on every keystroke)."""

    @property
    def fresh(self) -> bool:
        return self.checked is not None and self.checked_text == self.text


def notebook_json(cells: Iterable[Cell]) -> str:
    """The cells as an nbformat 4 document, which gradlint reads like a `.ipynb` file on disk."""
    return json.dumps(
        {
            "cells": [
                {"cell_type": "code" if cell.code else "markdown", "metadata": {}, "source": cell.text}
                for cell in cells
            ],
            "metadata": {},
            "nbformat": 4,
            "nbformat_minor": 5,
        }
    )


@dataclass
class Job:
    """One `check_documents` call: a workspace folder (or, outside every folder, a folder of loose
    documents, `root` None) with its configuration and a snapshot of its open buffers."""

    root: Path | None
    config: Config
    texts: dict[Path, str]
    check: set[Path]
    known: dict[Path, dict] = field(default_factory=dict)
    parsed_files: ParsedFiles | None = None


def run_job(job: Job) -> dict[Path, CheckedDocument]:
    """Runs in the worker thread (one at a time: the parsed files are shared from job to job)."""
    return check_documents(
        job.texts, job.config, root=job.root, check=job.check, known=job.known, parsed_files=job.parsed_files
    )


class State:
    def __init__(self) -> None:
        self.documents: dict[Path, Document] = {}
        self.folders: list[Path] = []
        self._configs: dict[Path, Config] = {}
        self.messages: list[str] = []
        """Configuration errors not yet shown to the user (the wiring shows and clears them)."""
        self.parsed_files = ParsedFiles(PARSED_LINES_KEPT)

    # ------------------------------------------------------------------ folders and configuration

    def set_folders(self, folders: Iterable[Path]) -> None:
        self.folders = sorted({Path(os.path.abspath(folder)) for folder in folders})

    def root_of(self, path: Path) -> Path | None:
        """The innermost workspace folder that holds `path`; None outside every folder."""
        best: Path | None = None
        for folder in self.folders:
            if path.is_relative_to(folder) and (best is None or len(folder.parts) > len(best.parts)):
                best = folder
        return best

    def base_of(self, path: Path) -> Path:
        """Where the configuration of `path` is looked up from: its folder, else its directory."""
        return self.root_of(path) or path.parent

    def config(self, base: Path) -> Config:
        """The configuration found from `base` (read once, until `reload`); a broken one is a
        message and the last good one (at first, the defaults) stays in use."""
        config = self._configs.get(base)
        if config is None:
            config = self._configs[base] = self._load(base, Config(root=base))
        return config

    def _load(self, base: Path, fallback: Config) -> Config:
        try:
            return load_config([base], cwd=base)
        except ConfigError as error:
            kept = "the previous configuration" if fallback.config_path is not None else "the default configuration"
            self.messages.append(f"gradlint: configuration error: {error} (checking with {kept} until it is fixed)")
            return fallback
        except Exception as error:  # an unreadable file must not stop the server either
            self.messages.append(f"gradlint: cannot read the configuration: {type(error).__name__}: {error}")
            return fallback

    def reload(self) -> None:
        """Read every configuration in use again (a `pyproject.toml` or `gradlint.toml` changed)."""
        for base, config in list(self._configs.items()):
            self._configs[base] = self._load(base, config)

    # ------------------------------------------------------------------ documents

    def open(self, document: Document) -> None:
        self.documents[document.path] = document

    def close(self, path: Path) -> Document | None:
        return self.documents.pop(path, None)

    def by_uri(self, uri: str) -> Document | None:
        """The document shown at `uri`: a `.py` file, or the notebook that holds the cell `uri`."""
        for document in self.documents.values():
            if document.uri == uri or (document.cells and any(cell.uri == uri for cell in document.cells)):
                return document
        return None

    # ------------------------------------------------------------------ check rounds

    def plan(self, changed: Iterable[Path], everything: bool = False) -> list[Job]:
        """The jobs of one round: the `changed` documents (all with `everything`) are checked; the
        other open documents are checked again where a fact of theirs changed."""
        changed = set(changed)
        groups: dict[tuple[Path | None, Path], list[Document]] = {}
        for document in self.documents.values():
            root = self.root_of(document.path)
            groups.setdefault((root, root or document.path.parent), []).append(document)
        jobs = []
        for (root, base), documents in sorted(groups.items(), key=lambda item: str(item[0][1])):
            check = {d.path for d in documents if everything or d.path in changed or not d.fresh}
            known = {
                d.path: dict(d.checked.facts)
                for d in documents
                if d.path not in check and d.checked is not None and not d.checked.excluded
            }
            if not check and not known:
                continue
            texts = {d.path: d.text for d in documents}
            jobs.append(Job(root, self.config(base), texts, check, known, self.parsed_files))
        return jobs

    def take(self, job: Job, results: dict[Path, CheckedDocument]) -> list[Document]:
        """Keep the results whose document still has the text that was checked; returns those
        documents (their diagnostics are to be published)."""
        taken = []
        for path, result in results.items():
            document = self.documents.get(path)
            if document is None or document.text != job.texts.get(path):
                continue
            document.checked, document.checked_text = result, document.text
            taken.append(document)
        return taken
