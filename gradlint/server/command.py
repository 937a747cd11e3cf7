"""`gradlint server`: run the language server on stdin/stdout until the client says exit."""

from __future__ import annotations

import importlib.util
import sys

import click

from gradlint.server import INSTALL_HINT

EXIT_ERROR = 2


def lsp_available() -> bool:
    """Whether the `lsp` extra (pygls with lsprotocol) is installed, without importing it."""
    return all(importlib.util.find_spec(name) is not None for name in ("pygls", "lsprotocol"))


@click.command("server")
@click.option(
    "--stdio",
    is_flag=True,
    help="Talk LSP over stdin/stdout (the default and only transport; accepted because many clients pass it).",
)
def server_command(stdio: bool) -> None:
    """Run gradlint as a language server over stdio (needs the lsp extra: torch-gradlint[lsp]).

    Editors start it and show gradlint's findings as you type, with quick fixes, fix-all and
    suppress actions; see docs/editors.md for the set-up of VS Code, Neovim, Helix and Emacs.
    """
    if not lsp_available():
        click.echo(f"error: gradlint server needs pygls and lsprotocol: {INSTALL_HINT}", err=True)
        raise click.exceptions.Exit(EXIT_ERROR)
    from gradlint.server.protocol import serve

    serve(sys.stdin.buffer, sys.stdout.buffer)
