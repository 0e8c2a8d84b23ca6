"""export: a notebook's #| export cells become a module of the learner package."""

import pytest

from autograder.export import ExportError, export_notebook
from tests.helpers import code_cell, notebook, write


def test_exports_only_marked_cells(tmp_path):
    "Does the module hold the #| export cells, in order, and nothing else?"
    nb = notebook(
        code_cell("#| default_exp warehouse\nimport os"),
        code_cell("#| export\nimport math"),
        code_cell("scratch = 1"),
        code_cell("#| export\ndef area(r):\n    return math.pi * r * r"),
    )
    [module] = export_notebook(write(nb, tmp_path / "nb.ipynb"), tmp_path / "out")
    assert module == tmp_path / "out" / "cardfraud" / "warehouse.py"
    text = module.read_text()
    assert "import math" in text and "def area" in text
    assert "scratch" not in text and "import os" not in text
    assert (tmp_path / "out" / "cardfraud" / "__init__.py").exists()


def test_export_replaces_a_stale_module(tmp_path):
    "Does exporting twice give the latest cells, not the old module with new cells appended?"
    path = tmp_path / "nb.ipynb"
    write(notebook(code_cell("#| default_exp m"), code_cell("#| export\nx = 1")), path)
    export_notebook(path, tmp_path)
    write(notebook(code_cell("#| default_exp m"), code_cell("#| export\nx = 2")), path)
    text = export_notebook(path, tmp_path)[0].read_text()
    assert "x = 2" in text and "x = 1" not in text


def test_code_after_the_directive_is_not_a_module_name(tmp_path):
    "Is a one-word line of code after `#| export` (a decorator) exported as code, not read as a module name?"
    nb = notebook(
        code_cell("#| default_exp samples"),
        code_cell("#| export\nfrom dataclasses import dataclass"),
        code_cell("#| export\n@dataclass\nclass Sample:\n    start_s: float"),
    )
    [module] = export_notebook(write(nb, tmp_path / "nb.ipynb"), tmp_path)
    assert module.name == "samples.py" and "@dataclass\nclass Sample" in module.read_text()


def test_tests_export_to_their_own_module(tmp_path):
    "Do `#| export tests.test_x` cells go to cardfraud/tests/test_x.py, apart from the default module?"
    nb = notebook(
        code_cell("#| default_exp images"),
        code_cell("#| export\ndef f():\n    return 1"),
        code_cell("#| export tests.test_f\nimport pytest"),
        code_cell("#| export tests.test_f\ndef test_f():\n    assert True"),
    )
    default, tests = export_notebook(write(nb, tmp_path / "nb.ipynb"), tmp_path)
    assert default == tmp_path / "cardfraud" / "images.py" and "test_f" not in default.read_text()
    assert tests == tmp_path / "cardfraud" / "tests" / "test_f.py"
    assert "import pytest" in tests.read_text() and "def test_f" in tests.read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "is empty"),
        ("{not json", "not valid notebook JSON"),
        ('{"hello": 1}', "not a notebook"),
    ],
)
def test_unreadable_notebooks_are_explained(tmp_path, content, message):
    "Is a notebook that is empty, not JSON or not a notebook reported in one clear sentence?"
    path = tmp_path / "broken.ipynb"
    path.write_text(content)
    with pytest.raises(ExportError, match=message):
        export_notebook(path, tmp_path)


def test_binary_file_is_explained(tmp_path):
    "Is a file that is not even text reported as such?"
    path = tmp_path / "image.ipynb"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe")
    with pytest.raises(ExportError, match="not a text file"):
        export_notebook(path, tmp_path)


def test_missing_default_exp_is_explained(tmp_path):
    "Is a notebook without #| default_exp rejected with the fix?"
    path = write(notebook(code_cell("#| export\nx = 1")), tmp_path / "nb.ipynb")
    with pytest.raises(ExportError, match="default_exp"):
        export_notebook(path, tmp_path)


def test_deleted_export_cells_are_explained(tmp_path):
    "Is a notebook whose export cells were all deleted reported, rather than graded as empty?"
    path = write(notebook(code_cell("#| default_exp m"), code_cell("x = 1")), tmp_path / "nb.ipynb")
    with pytest.raises(ExportError, match="no `#| export` cells"):
        export_notebook(path, tmp_path)


def test_syntax_error_names_the_cell(tmp_path):
    "Is a syntax error reported by the cell that holds it (what it defines, its line), not by module line?"
    nb = notebook(
        code_cell("#| default_exp m"),
        code_cell("#| export\nimport math"),
        code_cell("#| export\ndef area(r):\n    return math.pi *\n"),
    )
    with pytest.raises(ExportError, match=r"cell defining `area` in nb.ipynb has a syntax error on its line 3"):
        export_notebook(write(nb, tmp_path / "nb.ipynb"), tmp_path)


def test_a_huge_notebook_is_refused_unread(tmp_path, monkeypatch):
    "Is a notebook larger than the limit refused with a message saying how to shrink it, before it is read?"
    from autograder import export

    monkeypatch.setattr(export, "MAX_NOTEBOOK_BYTES", 2**20)
    path = write(
        notebook(code_cell("#| default_exp m"), code_cell("#| export\nx = '" + "x" * 2**21 + "'")), tmp_path / "nb.ipynb"
    )
    with pytest.raises(ExportError, match="more than the 1 MiB a notebook may: clear its outputs"):
        export_notebook(path, tmp_path)
