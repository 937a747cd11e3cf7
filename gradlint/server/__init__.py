"""`gradlint server`: gradlint as a Language Server (LSP over stdio) for editors.

Built on pygls and lsprotocol, the optional extra `lsp`; nothing here imports them at the top
level, so `gradlint.server` and `gradlint server --help` work without the extra. Modules:

- `command`: the click command; it prints the install hint when the extra is missing.
- `protocol`: the LSP wiring (capabilities, handlers, the debounced check rounds).
- `state`: the open documents, the workspace folders and their configuration, and what each
  check round checks (through `gradlint.api.check_documents`), pure Python without LSP types.
- `convert`: findings as LSP diagnostics and hovers (positions in the client's encoding).
- `actions`: code actions: each fix as a quick fix, fix-all-safe, suppress on this line.

Like the rest of the static path, the server never imports torch or `gradlint.probe`.
"""

INSTALL_HINT = "pip install 'torch-gradlint[lsp]' (from a checkout: pip install -e '.[lsp]')"
"""How to install what `gradlint server` needs (pygls, lsprotocol)."""

__all__ = ["INSTALL_HINT"]
