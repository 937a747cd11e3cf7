"""Autofix, in two modules:

- `gradlint.fix.edits`: what a rule asks for (a `FixSpec` on its Diagnostic), the line edits
  it resolves to (a `Fix` on the Finding), and applying them to source text.
- `gradlint.fix.files`: applying a report's fixes to its files (`--fix`) or showing them as
  a unified diff (`--diff`), returning what was done for the CLI to print.

The rules' vocabulary (`FixSpec` and its parts) and the text-level functions are importable
from `gradlint.fix` itself.
"""

from gradlint.fix.edits import (
    NO_FIX,
    SAFE,
    UNSAFE,
    AnyEdit,
    CannotFix,
    DeleteLines,
    Edit,
    EnsureImport,
    Fix,
    FixSpec,
    InsertAtBodyStart,
    InsertBefore,
    MoveBefore,
    Replace,
    ReplaceNode,
    Resolver,
    apply_edits,
    fixed_text,
    newline_of,
    no_fix,
    split_lines,
    wanted,
)

__all__ = [
    "NO_FIX", "SAFE", "UNSAFE", "AnyEdit", "CannotFix", "DeleteLines", "Edit", "EnsureImport", "Fix", "FixSpec",
    "InsertAtBodyStart", "InsertBefore", "MoveBefore", "Replace", "ReplaceNode", "Resolver", "apply_edits",
    "fixed_text", "newline_of", "no_fix", "split_lines", "wanted",
]
