"""Export: a notebook's ``#| export`` cells become a module of the learner package.

The notebook names its module with nbdev's ``#| default_exp <module>``; the cells
marked ``#| export`` are written, in order, to ``<to>/cardfraud/<module>.py``, as
nbdev's export writes them. The grader writes the module itself, from the cells it
checked, rather than hand a submission to nbdev: nbdev obeys directives beyond the
``#| export`` line (more of them under it, ``# | ...`` with a space, ``exporti``, a
second ``default_exp``, cell and notebook metadata), and a module name with a leading
dot is a path from / that it appends to, from the grader's own process. Here only
checked module names are written to, inside the package.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat

from autograder.paths import PACKAGE

DEFAULT_EXP = re.compile(r"^#\|\s*default_exp\s+(\S+)", re.MULTILINE)
# `#| export` writes to the default module; `#| export tests.test_x` to another one.
# Blanks, not \s: a module name on the directive's own line, never the code on the next
# (`#| export` then `@dataclass` is not an export to a module named "@dataclass").
EXPORT = re.compile(r"^#\|[ \t]*export(?:[ \t]+(\S+))?[ \t]*$", re.MULTILINE)


MAX_NOTEBOOK_BYTES = 100 * 2**20  # read whole into the grader's memory, so bounded


class ExportError(Exception):
    """A notebook that cannot be turned into a module; the message says why and where."""


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, or explain in one sentence why it is not a usable notebook."""
    path = Path(path)
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        raise ExportError(
            f"{path.name} holds {path.stat().st_size / 2**20:,.0f} MiB, more than the {MAX_NOTEBOOK_BYTES // 2**20} MiB "
            "a notebook may: clear its outputs (Edit > Clear Outputs of All Cells) and save it again"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ExportError(f"{path.name} is not a text file (not UTF-8): is it really a notebook?") from None
    if not text.strip():
        raise ExportError(f"{path.name} is empty: the notebook was not saved, or the upload failed")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise ExportError(
            f"{path.name} is not valid notebook JSON (line {e.lineno}: {e.msg}): was it edited outside Jupyter?"
        ) from None
    if not isinstance(data, dict) or "cells" not in data:
        raise ExportError(f"{path.name} is JSON but not a notebook (it has no cells)")
    try:
        return nbformat.reads(text, as_version=4)
    except Exception as e:  # nbformat raises several kinds of errors for malformed notebooks
        raise ExportError(f"{path.name} is not a valid notebook: {e}") from None


# A dotted Python name: anything else (``../../etc``, ``/tmp/x``) would write
# outside the package.
MODULE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def module_name(notebook: nbformat.NotebookNode, path: Path) -> str:
    """The module that a notebook exports to, from its ``#| default_exp`` cell."""
    for cell in notebook.cells:
        if cell.cell_type == "code" and (match := DEFAULT_EXP.search(cell.source)):
            return _checked(match.group(1), path)
    raise ExportError(f"{Path(path).name} has no `#| default_exp <module>` cell: restore the notebook's first code cell")


def export_notebook(path: str | Path, to: str | Path = ".", skipped: list[str] | None = None) -> list[Path]:
    """Write the notebook's exported cells under ``<to>/cardfraud/``; return the modules, default first.

    Most notebooks export one module. The testing chapter's notebooks also export the
    learner's own tests, to ``cardfraud/tests/test_<name>.py``, as a package's tests
    would sit beside its code.

    A cell with a syntax error raises ExportError, unless ``skipped`` is a list: the cell
    is then left out, as a notebook run cell by cell (and nbgrader) would leave it, and
    the reason is appended to ``skipped``, so that the other parts can still be graded.
    """
    path, package = Path(path), Path(to) / PACKAGE
    notebook = read_notebook(path)
    default = module_name(notebook, path)
    export_cells = [c for c in notebook.cells if c.cell_type == "code" and EXPORT.search(c.source)]
    if not export_cells:
        raise ExportError(f"{path.name} has no `#| export` cells: nothing to grade (were they deleted?)")
    for cell in list(export_cells):
        try:
            _check_syntax(cell.source, path)
        except ExportError as e:
            if skipped is None:
                raise
            skipped.append(f"{e}; that cell was left out, so what it defines is missing")
            cell.source = EXPORT.sub("# (left out of the export: syntax error)", cell.source)
            export_cells.remove(cell)
            continue
        _check_leaves_grader_alone(cell.source, path)
    if not export_cells:
        raise ExportError(skipped[0])
    code_of: dict[str, list[str]] = {default: []}
    for cell in export_cells:
        module = _checked(EXPORT.search(cell.source).group(1) or default, path)
        code_of.setdefault(module, []).append(_code(cell.source))
    package.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").touch()
    targets = []
    for module, cells in code_of.items():
        target = package / (module.replace(".", "/") + ".py")
        target.parent.mkdir(parents=True, exist_ok=True)
        header = f"# Exported from {path.name} by the grader: edit the notebook, not this file.\n"
        target.write_text(header + "".join(f"\n\n{code}\n" for code in cells))  # replaces a stale module
        targets.append(target)
    return targets


DIRECTIVE_LINE = re.compile(r"^[ \t]*#[ \t]*\|")


def _code(source: str) -> str:
    """A cell's code without the directive lines it starts with (``#| export``, and any the grader ignores)."""
    lines = source.splitlines()
    first_code = next((i for i, line in enumerate(lines) if not DIRECTIVE_LINE.match(line)), len(lines))
    return "\n".join(lines[first_code:])


def _checked(module: str, path: Path) -> str:
    if not MODULE.match(module):
        raise ExportError(
            f"{Path(path).name} exports to {module!r}, which is not a module name: restore the notebook's "
            "`#| default_exp` and `#| export` lines"
        )
    return module


def _check_syntax(source: str, path: Path) -> None:
    """Report a syntax error by the cell it is in, which the learner can find, not by module line."""
    try:
        compile(source, "<cell>", "exec")
    except SyntaxError as e:
        raise ExportError(
            f"the `#| export` cell {_cell_name(source)} in {path.name} has a syntax error on its line {e.lineno}: "
            f"{e.msg} ({(e.text or '').strip()})"
        ) from None


# Exported code has no business with these: importing them, or assigning to their
# attributes, is how a submission would rewrite its own grading. A learner's tests may
# use pytest's public API (pytest.mark, pytest.approx, ...) but not change it.
GRADER_MODULES = ("autograder", "_pytest", "pluggy", "builtins")
PROTECTED_MODULES = (*GRADER_MODULES, "pytest", "sys")


def _check_leaves_grader_alone(source: str, path: Path) -> None:
    """Refuse exported code that imports the grader or changes pytest, the grader or builtins.

    A heuristic, not a proof: it stops the plain ways of forging a grade (a patched
    pytest or grader) with a clear message, not a determined attacker.
    """
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""]
        if any(name.split(".")[0] in GRADER_MODULES for name in names):
            raise ExportError(
                f"the `#| export` cell {_cell_name(source)} in {path.name} imports `{names[0]}`, part of the grader: "
                "exported code may not use the grader or pytest's internals; remove that import"
            )
        targets = node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        is_setattr = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr")
        touched = [t for t in targets if isinstance(t, ast.Attribute | ast.Subscript)] + (node.args[:1] if is_setattr else [])
        for target in touched:
            base = target.value if isinstance(target, ast.Attribute | ast.Subscript) else target
            while isinstance(base, ast.Attribute | ast.Subscript):
                base = base.value
            if isinstance(base, ast.Name) and base.id in PROTECTED_MODULES:
                raise ExportError(
                    f"the `#| export` cell {_cell_name(source)} in {path.name} changes `{base.id}` "
                    f"(line {node.lineno}): exported code may not change pytest, the grader or the interpreter; remove that line"
                )


def _cell_name(source: str) -> str:
    """What a cell defines ("defining `open_warehouse`"), or its first line of code."""
    if match := re.search(r"^\s*(?:def|class)\s+(\w+)", source, re.MULTILINE):
        return f"defining `{match.group(1)}`"
    code = [line for line in source.splitlines() if line.strip() and not line.startswith("#")]
    return f"starting `{code[0].strip()}`" if code else "(empty)"
