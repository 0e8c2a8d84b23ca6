"""The structured-code chapter: each typical mistake loses exactly its points, and a visible test catches it;
a broken notebook is not paid for again in the notebook that builds on it."""

import os
import shutil
import sys

import pytest

from autograder.export import export_notebook
from autograder.notebook import Exercise
from autograder.paths import SOLUTIONS
from tests.helpers import BY_NAME, mkdir, partial_config_and_registry, references_in_class_sheet, typical_mistakes_tests, write

CHAPTER = "structured_code"

# student: (exercise, part, (old, new) text edits, the tests that must fail, by description start).
# Each mistake is one that the chapter's lessons or hints warn about, and a visible test catches it.
MISTAKES = {
    "config_ignores_a_misspelt_key": (
        "config_and_registry",
        "load_config",
        [("raise ConfigError(f\"unknown key {name}.{key}; [{name}] has {', '.join(keys)}\")", "continue")],
        ["Refuses a misspelt key"],
    ),
    "config_takes_a_bool_for_an_int": (
        "config_and_registry",
        "load_config",
        [("if type(value) is not kind:", "if not isinstance(value, kind):")],
        ["Refuses a misspelt key"],
    ),
    "override_reads_any_text_as_true": (
        "config_and_registry",
        "apply_override",
        [
            (
                "if kind is bool:\n"
                '            if text.lower() not in ("true", "false"):\n'
                "                raise ValueError(text)\n"
                '            value = text.lower() == "true"\n'
                "        else:\n"
                "            value = kind(text)",
                "value = kind(text)",
            )
        ],
        ["Reads the value as the key's type", "Accepts true/false in any case"],
    ),
    "registry_entries_in_the_class": (
        "config_and_registry",
        "registry",
        [
            ("self._entries: dict[str, object] = {}", "self._entries = Registry.shared"),
            (
                'by name, so that a config can name them."""',
                'by name, so that a config can name them."""\n\n    shared: dict = {}',
            ),
        ],
        ["An unknown name raises ConfigError", "Refuses a second component"],
    ),
    "compare_on_the_means_alone": (
        "config_and_registry",
        "compare_runs",
        [("if abs(difference) > 2 * stderr:", "if difference != 0:")],
        ["Picks the config whose mean is lower"],
    ),
    "compare_with_the_population_variance": (
        "config_and_registry",
        "compare_runs",
        [("math.sqrt(x.var(ddof=1) / len(x) + y.var(ddof=1) / len(y))", "math.sqrt(x.var() / len(x) + y.var() / len(y))")],
        ["Picks the config whose mean is lower", "Uses each config's own variance"],
    ),
    "dump_writes_python_bools": (
        "command_line",
        "dump_config",
        [
            (
                "if isinstance(value, bool):  # before int: a bool is an int in Python, not in TOML\n"
                '                text = "true" if value else "false"\n'
                "            elif isinstance(value, str):",
                "if isinstance(value, str):",
            )
        ],
        # Its run folders then hold a config.toml that no TOML reader accepts: main loses two tests too.
        ["Writes every setting", "Escapes backslashes", "Keeps small", "main(['train'", "`python -m cardfraud train` from"],
    ),
    "fingerprint_without_boundaries": (
        "command_line",
        "fingerprint",
        [('digest.update(len(part).to_bytes(8, "big"))  # the length first: no two files read as one\n', "")],
        ["Tells apart files"],
    ),
    "help_without_exit_codes": (
        "command_line",
        "build_parser",
        [
            (
                'its record in a new run folder under --runs.",\n        epilog=EXIT_CODES,',
                'its record in a new run folder under --runs.",',
            )
        ],
        ["`--help` of the program"],
    ),
    "configuration_errors_crash": (
        "command_line",
        "main",
        [('    except ConfigError as e:\n        print(f"cardfraud: error: {e}", file=sys.stderr)\n        return 2\n', "")],
        ["An unknown model returns 2", "`python -m cardfraud` exits 2"],
    ),
}


graded_mistakes, test_a_typical_mistake_loses_exactly_its_points = typical_mistakes_tests(CHAPTER, MISTAKES)


@pytest.mark.slow
def test_a_broken_notebook_is_not_paid_for_again_where_another_builds_on_it(graded, tmp_path):
    "Is command_line graded with the reference cardfraud.experiment where config_and_registry fails, and does everyone see it?"
    # The class's partial learner hands in a config_and_registry with a mistake and a solved command_line.
    partial, full = graded["partial", CHAPTER], graded["full", CHAPTER]
    command_line = {part: points for (notebook, part), points in partial.part_scores().items() if notebook == "command_line"}
    assert command_line == {
        part: points for (notebook, part), points in BY_NAME[CHAPTER].partial_points.items() if notebook == "command_line"
    }
    assert sum(command_line.values()) == 12, "command_line should earn full marks on its own code"
    assert partial.references == ["structured_code/config_and_registry"] and full.references == []
    assert any("reference cardfraud.experiment" in m and "apply_override" in m for m in partial.messages), partial.messages
    assert references_in_class_sheet([partial, full], tmp_path) == {
        "partial": ["structured_code/config_and_registry"],
        "full": [],
    }


@pytest.mark.parametrize("handed_in", ["solved", "with a mistake", "missing"])
def test_the_notebook_imports_the_learners_module_or_the_reference(handed_in, tmp_path, monkeypatch, capsys):
    "Does command_line's first cell export the learner's config_and_registry when it passes, else the reference, and say which?"
    folder = mkdir(tmp_path / "exercises" / CHAPTER)
    if handed_in == "solved":
        shutil.copy(SOLUTIONS / CHAPTER / "config_and_registry.ipynb", folder)
    elif handed_in == "with a mistake":
        write(partial_config_and_registry(), folder / "config_and_registry.ipynb")
    monkeypatch.chdir(folder)
    monkeypatch.setattr(sys, "path", list(sys.path))
    monkeypatch.setenv("PYTHONPATH", "")
    Exercise(f"{CHAPTER}/command_line").use_modules()
    said = capsys.readouterr().out
    exported = (tmp_path / "exercises" / "cardfraud" / "experiment.py").read_text()
    reference = export_notebook(SOLUTIONS / CHAPTER / "config_and_registry.ipynb", tmp_path / "reference")[0].read_text()
    if handed_in == "solved":
        assert said.startswith("cardfraud.experiment: your config_and_registry.ipynb"), said
    else:
        assert said.startswith("cardfraud.experiment: the course's reference"), said
        assert ("apply_override and compare_runs" in said) == (handed_in == "with a mistake"), said
    # The learner's own export starts with the same header as the reference's: compare the code below it.
    assert exported.partition("\n")[2] == reference.partition("\n")[2]
    import cardfraud.experiment

    assert cardfraud.experiment.__file__ == str(tmp_path / "exercises" / "cardfraud" / "experiment.py")
    assert os.environ["PYTHONPATH"].split(os.pathsep)[0] == str(tmp_path / "exercises")
    for name in [m for m in sys.modules if m.startswith("cardfraud")]:
        del sys.modules[name]
