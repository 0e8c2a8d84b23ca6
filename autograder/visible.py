"""A learners' copy of the tests: keep the visible tests, remove the hidden ones.

Self-checks run the visible tests, so they must ship; the hidden ones stay with the
instructor. Tests are removed by their source lines (decorators included), so
comments, fixtures and helpers stay exactly as written.
"""

from __future__ import annotations

import ast
from pathlib import Path


def is_hidden(node: ast.AST) -> bool:
    """A test function whose ``graded`` marker does not say ``visible=True``."""
    if not isinstance(node, ast.FunctionDef):
        return False
    for decorator in node.decorator_list:
        if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.graded"):
            visible = next((k.value for k in decorator.keywords if k.arg == "visible"), None)
            return not (isinstance(visible, ast.Constant) and visible.value is True)
    return False


def graded_parts(source: str) -> list[str]:
    """The parts that a test file grades, in order, read from its ``graded`` markers without running it."""
    parts = []
    for node in ast.parse(source).body:
        for decorator in getattr(node, "decorator_list", []):
            if isinstance(decorator, ast.Call) and ast.unparse(decorator.func).endswith("mark.graded") and decorator.args:
                part = decorator.args[0]
                if isinstance(part, ast.Constant) and part.value not in parts:
                    parts.append(part.value)
    return parts


def keep_visible_tests(source: str) -> tuple[str, int]:
    """The source without its hidden tests, and how many were removed."""
    lines = source.splitlines(keepends=True)
    hidden = [node for node in ast.parse(source).body if is_hidden(node)]
    for node in reversed(hidden):
        first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
        del lines[first : node.end_lineno]
    return "".join(lines), len(hidden)


def strip_hidden_tests(folder: Path) -> int:
    """Rewrite every test file under ``folder`` in place; return the number of tests removed."""
    removed = 0
    for path in sorted(Path(folder).rglob("test_*.py")):
        source, count = keep_visible_tests(path.read_text())
        path.write_text(source)
        removed += count
    return removed
