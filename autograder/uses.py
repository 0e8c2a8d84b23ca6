"""Code that a notebook imports from the learner's other notebooks, and which version of it is used.

Later notebooks build on earlier ones: the command line of the structured-code chapter
reads its configuration with the ``cardfraud.experiment`` that the learner wrote in
``config_and_registry``. A chapter's hidden tests declare it in ``uses.toml``::

    command_line = ["structured_code/config_and_registry"]

Grading must not cascade: one mistake in an early notebook may not cost points again
in every notebook that builds on it. So the rule, the same for our grader, for nbgrader
and in the learner's JupyterLab: a used notebook is exported from the learner's own
copy when it passes every test of it that this installation has (all of them where
work is graded, the visible ones in a learner's copy), and from the course's reference
solution otherwise, and the feedback says which.

Learner and reference both export into the package root, the folder that holds the
chapter folders (``exercises/`` in a learner's clone, the student's folder in an
nbgrader course): ``exercises/cardfraud/`` is then the learner's package, importable
from the notebooks and, with ``cd exercises``, as ``python -m cardfraud`` from a terminal.
"""

from __future__ import annotations

import importlib.util
import sys
import tempfile
import tomllib
from dataclasses import dataclass
from pathlib import Path

from autograder.export import ExportError, export_notebook, module_name, read_notebook
from autograder.paths import PACKAGE, SOLUTIONS

USES = "uses.toml"  # in a chapter's hidden tests folder


@dataclass(frozen=True)
class Used:
    """A notebook whose exported code another notebook imports."""

    chapter: str
    exercise: str

    def __str__(self) -> str:
        return f"{self.chapter}/{self.exercise}"

    def learner_copy(self, notebook_folder: Path) -> Path:
        """The learner's notebook, beside the one that uses it: <root>/<chapter>/<exercise>.ipynb."""
        return package_root(notebook_folder) / self.chapter / f"{self.exercise}.ipynb"

    def reference(self) -> Path:
        return SOLUTIONS / self.chapter / f"{self.exercise}.ipynb"

    def module(self, notebook: Path | None = None) -> str:
        """The module that it (the reference, or the learner's ``notebook``) exports to, e.g. ``cardfraud.experiment``."""
        notebook = notebook or self.reference()
        return f"{PACKAGE}.{module_name(read_notebook(notebook), notebook)}"


def used_by(chapter: str, exercise: str, hidden_dir: Path) -> list[Used]:
    """The notebooks whose code ``chapter/exercise`` imports, as its chapter's ``uses.toml`` declares them."""
    path = Path(hidden_dir) / chapter / USES
    if not path.exists():
        return []
    with path.open("rb") as f:
        names = tomllib.load(f).get(exercise, [])
    return [Used(*name.split("/", 1)) for name in names]


def used_elsewhere(chapter: str, hidden_dir: Path) -> list[Used]:
    """The notebooks of other chapters that any notebook of ``chapter`` builds on (the capstone's)."""
    path = Path(hidden_dir) / chapter / USES
    if not path.exists():
        return []
    with path.open("rb") as f:
        names = {name for names in tomllib.load(f).values() for name in names}
    return [Used(*name.split("/", 1)) for name in sorted(names) if not name.startswith(f"{chapter}/")]


def package_root(notebook_folder: Path) -> Path:
    """Where the learner package goes: the folder that holds the chapter folders."""
    return Path(notebook_folder).resolve().parent


def why_reference(used: Used, failed: list[str] | None, missing: str = "was not submitted") -> str:
    """Why the reference stands in for the learner's notebook: ``missing``, or the parts whose tests it fails."""
    if failed is None:
        return f"{used.exercise}.ipynb {missing}"
    parts = list(dict.fromkeys(failed))
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + f" and {parts[-1]}"
    return f"your {used.exercise}.ipynb does not yet pass every test of {listed}"


def substitution_message(exercise: str, used: Used, failed: list[str] | None) -> str:
    """What the feedback says when the reference stood in for a learner's module."""
    return (
        f"{exercise} was graded with the course's reference {used.module()} because {why_reference(used, failed)}: "
        f"{exercise} earns its points on its own code, and {used.exercise} keeps its own score"
    )


def failing_tests_in_process(notebook: Path, used: Used, test_file: Path) -> list[str] | None:
    """The parts of ``test_file`` whose tests the learner's ``notebook`` fails, run here; None when it does not exist.

    For the notebook's own kernel (a learner's JupyterLab, nbgrader): its exported module
    is loaded under a private name, so that the package being built is not touched.
    """
    from autograder.pytest_plugin import LearnerCode
    from autograder.results import PASSED
    from autograder.runner import run_in_process

    if not notebook.exists():
        return None
    with tempfile.TemporaryDirectory(prefix="autograder-uses-") as folder:
        try:
            module_file = export_notebook(notebook, folder)[0]
            name = f"_autograder_used_{used.exercise}"
            spec = importlib.util.spec_from_file_location(name, module_file)
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module  # dataclasses look their module up while the class is made
            spec.loader.exec_module(module)
        except ExportError as e:
            return [f"its export ({e})"]
        except Exception as e:  # whatever the learner's module raises on import
            return [f"its import ({type(e).__name__}: {e})"]
        finally:
            sys.modules.pop(f"_autograder_used_{used.exercise}", None)
        verdicts = run_in_process(test_file, LearnerCode(vars(module), f"your {used.exercise}.ipynb"))
    return [verdict.part for verdict in verdicts if verdict.status != PASSED]
