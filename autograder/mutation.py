"""Grading the learner's own tests by the bugs they catch: mutation testing.

A test-writing part hands the learner a function, the *target*, and asks for pytest
tests of it. Their tests receive the target as a fixture of the same name, which lets
the grader hand them other versions of it:

1. the reference, and an equivalent copy of it compiled afresh: every test must pass
   on both, or the part scores zero (a test that fails on correct code catches
   nothing; a test that checks *which* function it got, by identity, rather than
   *what it does*, fails on the copy);
2. each *mutant*: a copy of the reference with one planted bug, written as text
   replacements in the reference's source, as mutation-testing tools do. A mutant is
   caught when at least one test fails on it.

Each mutant is one graded hidden test, named by what the bug does, in words, so the
learner's feedback lists the behaviours their tests leave unchecked without showing
the buggy code. Tests that assert nothing, or only call the target, catch nothing:
no mutant raises an error on valid input.

The learner's tests run in a nested pytest session, collected from their namespace
(the notebook's globals, or the modules their notebook exported), so fixtures,
``parametrize`` and Hypothesis work as they would in a real test suite. Each run is a
process forked for it, so no run carries state to the next in memory; the copies and
the mutants are compiled under the reference's file name and line numbers, and each
copy is a fresh variant (its code's bytes and constants differ from the reference's).
Beside each mutant a fresh copy runs too, the two in a random order: a test that
tells runs apart by anything but behaviour (counting them in a file, which outlives
the process) fails on a copy, and from then on the part scores zero. What still tells
a mutant apart, besides behaviour, is the constants it holds (a mutant that changes a
number holds the new number): a learner who knew the hidden mutants could look for
them, and one who guessed could pass a mutant run by chance before failing a copy.
"""

from __future__ import annotations

import ast
import contextlib
import inspect
import io
import json
import os
import secrets
import signal
import sys
import tempfile
import textwrap
import types
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

# At the top, not in each run: a forked run would import it afresh every time (half a second).
from hypothesis import Phase, settings

from autograder.pytest_plugin import explain, learner_location


@dataclass(frozen=True)
class Mutant:
    """One planted bug: each key of ``edits`` replaced by its value in the reference's source."""

    behaviour: str  # what the buggy version does, completing "a version that ..."
    edits: dict[str, str]

    def __str__(self) -> str:
        return self.behaviour

    def apply(self, reference: Callable) -> Callable:
        return compile_version(reference, version_source(reference, self.edits))


def equivalent_copy(reference: Callable) -> Callable:
    """The reference compiled afresh, with one unused local of a random name and value: its behaviour, in another object."""
    return compile_version(reference, version_source(reference, {}))


def version_source(reference: Callable, edits: dict[str, str]) -> str:
    """The reference's source with ``edits`` made, and one unused local of a random name and value.

    A fresh variant on every call, mutant or not: its bytes, constants and local names
    differ from the reference's and from every other version's, so a test that
    fingerprints the code it is given (to pass on the reference and fail on anything
    else) fails on a copy. And since every version carries such a local, a copy's source
    differs from a mutant's only in what the mutant changes: the process that runs them
    is told no more than the text (which is all the judge sends it).
    """
    source = textwrap.dedent(inspect.getsource(reference))
    for find, replace in edits.items():
        if (count := source.count(find)) != 1:
            raise ValueError(f"{find!r} occurs {count} times in {reference.__name__}, not once")
        source = source.replace(find, replace)
    tree = ast.parse(source)
    body = tree.body[0].body
    docstring = isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)
    first = body[1 if docstring and len(body) > 1 else 0]
    unused = ast.parse(f"_{secrets.token_hex(4)} = {secrets.randbits(64)}").body[0]
    body.insert(body.index(first), ast.copy_location(unused, first))  # on the first statement's line: no line moves
    ast.fix_missing_locations(tree)
    return ast.unparse(tree)


def compile_version(reference: Callable, source: str) -> Callable:
    """``source`` compiled as the reference was: same file name, same first line, same module.

    So the copy and the mutants differ from one another only in what they do (and in the
    constants their code holds): a test cannot tell a mutant by its file name or line.
    """
    namespace = dict(vars(inspect.getmodule(reference)))  # the reference's imports and helpers
    first_line = inspect.getsourcelines(reference)[1]
    tree = ast.parse(source)
    ast.increment_lineno(tree, first_line - 1)
    exec(compile(tree, reference.__code__.co_filename, "exec"), namespace)
    return namespace[reference.__name__]


def assert_tests_catch(learner, reference: Callable, mutant: Mutant) -> None:
    """Fail, with a message for the learner, unless their tests pass on the reference and fail on the mutant.

    The learner's tests run beside their code (``drivers.run_learner_tests``), which gets
    each version as source text; this function, in the judge, decides.
    """
    from autograder.drivers.testing import run_learner_tests_on  # the drivers import this module

    name = reference.__name__
    _assert_tests_pass_on_reference(learner, reference)
    # A fresh correct copy runs beside each mutant, the two in an order drawn at random, so
    # that tests which tell runs apart by anything but behaviour (by counting them in a
    # file, say) fail on a correct copy too, which costs the rest of the part.
    runs = [("copy", version_source(reference, {})), ("mutant", version_source(reference, mutant.edits))]
    secrets.SystemRandom().shuffle(runs)
    outcomes = {which: learner.beside(run_learner_tests_on, learner, reference, source) for which, source in runs}
    if failed := {test: why for test, why in outcomes["copy"].items() if why}:
        test, why = next(iter(failed.items()))
        problem = (
            f"`{test}` passed on the correct `{name}` at first, then failed on a correct copy of it: {why}. Tests "
            "must give the same verdict on every run of the same code; until they do, this part scores zero"
        )
        learner.cache[_baseline_key(reference)] = problem  # the part's later mutants fail with it too
        raise AssertionError(problem)
    failures = outcomes["mutant"]
    if not any(failures.values()):
        raise AssertionError(
            f"no test noticed a version of `{name}` that {mutant.behaviour}: add a test that checks this behaviour of `{name}`"
        )


def _assert_tests_pass_on_reference(learner, reference: Callable) -> None:
    # Every mutant asks the same question first: run the reference once per grading run.
    key = _baseline_key(reference)
    if key not in learner.cache:
        learner.cache[key] = _baseline_problem(learner, reference)
    if learner.cache[key]:
        raise AssertionError(learner.cache[key])


def _baseline_key(reference: Callable) -> tuple[str, str, str]:
    return ("mutation-baseline", reference.__module__, reference.__name__)


def _baseline_problem(learner, reference: Callable) -> str | None:
    """Why the learner's tests cannot be graded against ``reference``, or None if they can."""
    from autograder.drivers.testing import learner_test_names, run_learner_tests_on

    name = reference.__name__
    if not learner.beside(learner_test_names, learner):
        raise NotImplementedError("no tests written yet")
    for source, which in ((None, "the correct"), (version_source(reference, {}), "a correct copy of")):
        failures = learner.beside(run_learner_tests_on, learner, reference, source)
        if not failures:
            return (
                f"none of your tests asks for the `{name}` fixture, so none of them can be graded: "
                f"write them as `def test_something({name}):` and call the `{name}` they receive"
            )
        failed = {test: why for test, why in failures.items() if why}
        if failed:
            shown = "; ".join(f"`{test}` fails: {why}" for test, why in list(failed.items())[:3])
            return (
                f"{len(failed)} of your {len(failures)} tests fail on {which} `{name}`, so they cannot tell a bug "
                f"from correct code: {shown}. Fix them so that they pass on the `{name}` they receive; "
                "until then this part scores zero"
            )
    return None


def run_learner_tests(namespace: dict, target: str, implementation: Callable) -> dict[str, str | None]:
    """Run the tests in ``namespace`` that ask for the fixture ``target``, given ``implementation``.

    Returns, per test (parametrized cases separately), None if it passed, else why it
    failed. Tests that do not ask for ``target`` are not run.

    Each run happens in a process forked for it, which reports back and ends: nothing a
    run leaves in memory (a counter of runs, a cache, a patched module) reaches the next,
    so tests cannot pass on the first runs, the correct versions, and fail on the rest.
    The caller's time limit stays here: on a timeout the run's process is killed.
    """
    receive, send = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(receive)
        try:
            report = {"outcomes": _run_here(namespace, target, implementation)}
        except BaseException as e:  # reported to the parent, which raises it as the learner's failure
            report = {"error": f"{type(e).__name__}: {e}"}
        with os.fdopen(send, "w") as f:
            json.dump(report, f)
        os._exit(0)
    os.close(send)
    try:
        with os.fdopen(receive) as f:
            report = json.loads(f.read() or "{}")
    except BaseException:
        os.kill(child, signal.SIGKILL)  # the time limit, or anything else: the run ends with this call
        raise
    finally:
        os.waitpid(child, 0)
    if "outcomes" not in report:
        raise RuntimeError(f"the run of your tests ended abnormally: {report.get('error', 'it reported nothing')}")
    return report["outcomes"]


def _run_here(namespace: dict, target: str, implementation: Callable) -> dict[str, str | None]:
    if "torch" in sys.modules:
        # The OpenMP threads of the process this one was forked from do not exist here.
        sys.modules["torch"].set_num_threads(1)
    harness = _Harness(namespace, target, implementation)
    with tempfile.TemporaryDirectory(prefix="autograder-learner-tests-") as folder:
        harness.path = Path(folder) / "test_learner.py"
        harness.path.touch()
        args = [str(harness.path), "--rootdir", folder, "-c", os.devnull, "-q", "--capture=sys"]
        args += ["-p", "no:cacheprovider", "--disable-plugin-autoload", "-p", "no:randomly"]
        # Its garbage collections at the end, in a process this size, cost half a second per
        # run; this process ends right after the run, so nothing is left to collect.
        args += ["-p", "no:unraisableexception"]
        # The learner's tests should not see the grader's own settings, such as
        # warnings turned into errors.
        with (
            contextlib.redirect_stdout(io.StringIO()),
            contextlib.redirect_stderr(io.StringIO()),
            warnings.catch_warnings(),
            _hypothesis_for_grading(namespace),
        ):
            warnings.simplefilter("default")
            pytest.main(args, plugins=[harness])
    return harness.outcomes


@contextlib.contextmanager
def _hypothesis_for_grading(namespace: dict):
    """Grading settings on the learner's Hypothesis tests, for the length of one run.

    Hypothesis fixes a test's settings when ``@given`` decorates it, so a profile loaded
    now would change nothing: each test's own settings get the grading ones on top
    (keeping, say, its ``max_examples``) and are restored afterwards.
    """
    grading = {
        "derandomize": True,  # the same examples on every run: a regrade gives the same points
        "database": None,  # no example database written next to the notebook
        "deadline": None,
        "print_blob": False,
        # A grader needs to know that a test failed, not the smallest example that fails.
        "phases": [Phase.explicit, Phase.reuse, Phase.generate],
        "report_multiple_bugs": False,
    }
    patched = []
    for test in namespace.values():
        own = getattr(test, "_hypothesis_internal_use_settings", None)
        if inspect.isfunction(test) and isinstance(own, settings):
            patched.append((test, own))
            test._hypothesis_internal_use_settings = settings(own, **grading)
    try:
        yield
    finally:
        for test, own in patched:
            test._hypothesis_internal_use_settings = own


class _LearnerTests(pytest.Module):
    """A test module whose contents are the learner's namespace, not a file's."""

    namespace: dict

    def _getobj(self):
        module = types.ModuleType("learner_tests")
        module.__dict__.update(self.namespace)
        return module


class _Harness:
    """Plugin for one nested session: collects the learner's tests, provides the target, records outcomes."""

    def __init__(self, namespace: dict, target: str, implementation: Callable):
        self.namespace = dict(namespace)
        self.target = target
        self.path: Path | None = None
        self.outcomes: dict[str, str | None] = {}

        @pytest.fixture(name=target, scope="session")
        def provide():
            return implementation

        # A name the learner's own code cannot clash with.
        self.namespace["_autograder_provides_target"] = provide

    @pytest.hookimpl(tryfirst=True)
    def pytest_pycollect_makemodule(self, module_path, parent):
        if module_path == self.path:
            module = _LearnerTests.from_parent(parent, path=module_path)
            module.namespace = self.namespace
            return module
        return None

    def pytest_collection_modifyitems(self, items):
        items[:] = [item for item in items if self.target in getattr(item, "fixturenames", ())]

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        report = yield
        name = item.name
        if report.failed:
            self.outcomes[name] = self.outcomes.get(name) or _why(call.excinfo.value, item.path)
        elif call.when == "call" or report.skipped:
            self.outcomes.setdefault(name, None)
        return report


def _why(error: BaseException, path: Path) -> str:
    """Why one of the learner's tests failed; a bare ``assert`` is found by its line."""
    if isinstance(error, AssertionError) and not str(error).strip():
        return f"an `assert` failed{learner_location(error, path)}"
    return explain(error, path)
