"""Jupyter notebooks (`.ipynb`): their code cells as one Python source, with a line map back.

The code cells are joined in notebook order (each cell's `source`, a string or a list of strings,
joined; cells follow one another line by line, so a cell always starts on a new line). Markdown
and raw cells contribute nothing. IPython syntax that is not Python is neutralised before parsing,
one line for one line, so every line of the joined source maps back to exactly one cell line:

- a line magic (`%matplotlib inline`), a shell escape (`!pip install torch`), a help request
  (`?torch.nn.RNN`, `model??`) and their assignment forms (`files = !ls`) become `pass` at the
  same indentation (`pass  # IPython magic`), continuation lines (`\\`) included;
- a cell magic (`%%bash`, `%%writefile`, ...) turns the whole cell into comments, except the
  magics whose body is Python run in the kernel (`%%time`, `%%timeit`, `%%capture`, `%%prun`),
  where only the `%%` line is neutralised and the body is checked;
- `get_ipython().run_line_magic(...)` and the like are Python already and stay as they are.

Cells are numbered as "cell N", N being the 1-based position among ALL cells (markdown included)
as the file orders them: execution counts (`In [7]`) change with every run and empty cells have
none, while the position is what a reader counts in any viewer.

Only the standard library's `json` is used, not `nbformat`: the parts gradlint reads (the list
of cells, each cell's type and source) are simple and stable across nbformat 4.x, and nbformat
would pull jsonschema/fastjsonschema (and traitlets) in at run time for a validation gradlint does
not need. Anything that is not such a structure is reported as "not a valid notebook: ...".
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

MAGIC_REPLACEMENT = "pass  # IPython magic"
CELL_MAGIC_COMMENT = "# IPython cell magic: "
PYTHON_CELL_MAGICS = frozenset({"time", "timeit", "capture", "prun"})
"""Cell magics whose body is ordinary Python run in the kernel: the body is checked."""

_ASSIGNED_MAGIC = re.compile(r"^[A-Za-z_][\w.]*(\s*,\s*[A-Za-z_][\w.]*)*\s*=\s*[%!]")
_HELP = re.compile(r"^\?{1,2}\S|^[A-Za-z_][\w.]*(\(\))?\?{1,2}$")


class NotebookError(Exception):
    """The file is not a notebook gradlint can read."""


class CellLine(int):
    """A line of the joined code that reads, in a message, as the line of its cell:
    f"at line {line}" gives "at line 3 of cell 4". Numerically it stays the joined line."""

    cell: int
    cell_line: int

    def __new__(cls, line: int, cell: int, cell_line: int) -> "CellLine":
        value = super().__new__(cls, line)
        value.cell, value.cell_line = cell, cell_line
        return value

    def __format__(self, spec: str) -> str:
        return f"{self.cell_line} of cell {self.cell}" if not spec else super().__format__(spec)

    def __str__(self) -> str:
        return format(self, "")


@dataclass
class NotebookSource:
    """The joined code of a notebook and, for each of its lines, where it came from."""

    text: str
    locations: list[tuple[int, int]] = field(default_factory=list)
    """Index i (line i + 1 of `text`) -> (cell number, 1-based line within the cell)."""
    original_lines: list[str] = field(default_factory=list)
    """The lines as the cells hold them, before magics were neutralised."""

    def locate(self, line: int) -> tuple[int, int] | None:
        if 0 < line <= len(self.locations):
            return self.locations[line - 1]
        return None

    def cell_line(self, line: int) -> int:
        """The joined line as messages should name it (see CellLine)."""
        where = self.locate(line)
        return CellLine(line, *where) if where is not None else line

    def original_line(self, line: int) -> str | None:
        if 0 < line <= len(self.original_lines):
            return self.original_lines[line - 1]
        return None


def _cell_lines(source: object, number: int) -> list[str]:
    if isinstance(source, str):
        text = source
    elif isinstance(source, list) and all(isinstance(part, str) for part in source):
        text = "".join(source)
    else:
        raise NotebookError(f"cell {number}: 'source' must be a string or a list of strings")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def _is_line_magic(stripped: str) -> bool:
    if not stripped or stripped.startswith("#"):
        return False
    if stripped[0] in "%!":
        return True
    return bool(_ASSIGNED_MAGIC.match(stripped) or _HELP.match(stripped))


def neutralise(lines: list[str]) -> list[str]:
    """One cell's lines with IPython syntax replaced, line for line."""
    first = next((line.strip() for line in lines if line.strip()), "")
    if first.startswith("%%"):
        name = first[2:].split(None, 1)[0] if len(first) > 2 else ""
        if name not in PYTHON_CELL_MAGICS:
            return [CELL_MAGIC_COMMENT + line if line.strip() else line for line in lines]
    out: list[str] = []
    continuing = False
    indent = ""
    for line in lines:
        stripped = line.strip()
        if continuing or stripped.startswith("%%") or _is_line_magic(stripped):
            if not continuing:
                indent = line[: len(line) - len(line.lstrip())]
            out.append(indent + MAGIC_REPLACEMENT)
            continuing = line.rstrip().endswith("\\")
        else:
            out.append(line)
    return out


def parse_notebook(data: bytes | str) -> NotebookSource:
    """The joined code of a notebook's JSON text; NotebookError when it is not a notebook."""
    try:
        document = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise NotebookError(f"invalid JSON ({error})") from None
    except RecursionError:
        raise NotebookError("invalid JSON (nested too deeply)") from None
    if not isinstance(document, dict):
        raise NotebookError("the top level is not a JSON object")
    cells = document.get("cells")
    if cells is None:
        raise NotebookError("no 'cells' list (nbformat 3 and older are not supported)")
    if not isinstance(cells, list):
        raise NotebookError("'cells' is not a list")
    joined: list[str] = []
    originals: list[str] = []
    locations: list[tuple[int, int]] = []
    for number, cell in enumerate(cells, start=1):
        if not isinstance(cell, dict):
            raise NotebookError(f"cell {number} is not a JSON object")
        cell_type = cell.get("cell_type")
        if not isinstance(cell_type, str):
            raise NotebookError(f"cell {number} has no 'cell_type' string")
        if cell_type != "code":
            continue
        lines = _cell_lines(cell.get("source", ""), number)
        joined.extend(neutralise(lines))
        originals.extend(lines)
        locations.extend((number, index) for index in range(1, len(lines) + 1))
    text = "\n".join(joined) + "\n" if joined else ""
    return NotebookSource(text, locations, originals)


def read_notebook(path: Path) -> NotebookSource:
    try:
        data = path.read_bytes()
    except OSError as error:
        raise NotebookError(f"cannot read file: {error.strerror or error}") from None
    return parse_notebook(data)


__all__ = ["NotebookError", "NotebookSource", "neutralise", "parse_notebook", "read_notebook"]
