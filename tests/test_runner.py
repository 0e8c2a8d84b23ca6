"""runner and pytest_plugin: hidden tests run against a namespace or a module, with points per test."""

import multiprocessing
import os
import textwrap

import pytest

from autograder import runner
from autograder.pytest_plugin import LearnerCode
from autograder.results import FAILED, NOT_ATTEMPTED, PASSED
from autograder.runner import run_in_process, run_in_subprocess
from autograder.sandbox import Limits
from tests.helpers import HIDDEN_NUMBERS, write_module


@pytest.fixture
def hidden(tmp_path):
    path = tmp_path / "hidden" / "test_numbers.py"
    path.parent.mkdir()
    path.write_text(HIDDEN_NUMBERS)
    return path


def namespace(source: str) -> LearnerCode:
    scope: dict = {}
    exec(textwrap.dedent(source), scope)
    return LearnerCode(scope, "this notebook")


def by_name(verdicts):
    return {v.name: v for v in verdicts}


def test_points_per_test(hidden):
    "Does each passing test earn its marker's points and each failing one zero, with the reason?"
    learner = namespace("def double(x): return abs(x) * 2\ndef halve(x): return x / 2")
    verdicts = by_name(run_in_process(hidden, learner))
    assert verdicts["Doubles a positive number."].score == 2 and verdicts["Doubles a positive number."].status == PASSED
    negative = verdicts["Doubles a negative number."]
    assert (negative.score, negative.max_score, negative.status) == (0, 1, FAILED)
    assert negative.output == "double(-1) should be -2"


def test_one_part_visible_only(hidden):
    "Does selecting a part and visible tests run exactly those?"
    learner = namespace("def double(x): return 2 * x")
    verdicts = run_in_process(hidden, learner, part="double", visible_only=True)
    assert [v.name for v in verdicts] == ["Doubles a positive number."]


def test_not_implemented_is_not_attempted(hidden):
    "Is a part that still raises NotImplementedError reported as not attempted, not as a crash?"
    learner = namespace("def double(x):\n    raise NotImplementedError()")
    verdicts = run_in_process(hidden, learner, part="double")
    assert {v.status for v in verdicts} == {NOT_ATTEMPTED}
    assert all(v.score == 0 for v in verdicts)


def test_missing_function_is_named(hidden):
    "Does a missing function produce a message naming it, and not a traceback?"
    verdicts = run_in_process(hidden, namespace("def double(x): return 2 * x"), part="halve")
    assert verdicts[0].status == FAILED
    assert "does not define `halve`" in verdicts[0].output


def test_learner_exception_points_at_their_line(hidden):
    "Does an exception in the learner's code say which function and line raised it?"
    learner = namespace("def double(x):\n    return {}[x]")
    verdict = run_in_process(hidden, learner, part="double")[0]
    assert verdict.output.startswith("your code raised KeyError")
    assert "in double, line 2" in verdict.output


def test_a_long_error_keeps_the_learners_line(hidden):
    "Is a very long error message shortened in its middle, so that the learner's function and line stay in view?"
    learner = namespace("def double(x):\n    raise ValueError('candidate function ' * 500)")
    verdict = run_in_process(hidden, learner, part="double")[0]
    assert verdict.output.endswith("more characters) (in double, line 2)"), verdict.output[-200:]


def test_endless_loop_times_out(hidden):
    "Is a test whose code never returns stopped after the per-test limit, and the rest still graded?"
    learner = namespace("def double(x):\n    while True:\n        pass\ndef halve(x): return x / 2")
    verdicts = by_name(run_in_process(hidden, learner, test_timeout=0.5))
    assert "took longer than 0.5 s" in verdicts["Doubles a positive number."].output
    assert verdicts["Halves a number."].status == PASSED


def test_unmarked_hidden_test_is_refused(tmp_path):
    "Is a hidden test without a graded marker refused, so no test silently carries no points?"
    path = tmp_path / "test_unmarked.py"
    path.write_text("def test_free(learner):\n    assert True\n")
    with pytest.raises(RuntimeError, match="could not run"):
        run_in_process(path, namespace(""))


def test_subprocess_matches_in_process(hidden, tmp_path):
    "Does grading the exported module in a subprocess give the same points as the namespace in process?"
    source = "def double(x): return abs(x) * 2\ndef halve(x): return x / 2\n"
    write_module(tmp_path / "pkg", source)
    sub, problem = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert problem is None
    inproc = run_in_process(hidden, namespace(source))
    assert [(v.name, v.score) for v in sub] == [(v.name, v.score) for v in inproc]


def test_syntax_error_fails_every_test_with_the_line(hidden, tmp_path):
    "Does a module that does not compile fail every test with the line of the syntax error?"
    write_module(tmp_path / "pkg", "def double(x):\n    return x *\n")
    verdicts, _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert len(verdicts) == 3 and all(v.score == 0 for v in verdicts)
    assert all("syntax error" in v.output and "line 2" in v.output for v in verdicts)


def test_exit_at_import_is_contained(hidden, tmp_path):
    "Does a module that calls sys.exit while loading lose its points without stopping the run?"
    write_module(tmp_path / "pkg", "import sys\nsys.exit(3)\n")
    verdicts, _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"])
    assert len(verdicts) == 3 and all("SystemExit" in v.output for v in verdicts)


@pytest.mark.slow
def test_wall_clock_limit_kills_and_keeps_finished_tests(hidden, tmp_path):
    "When the whole run passes its time limit, do finished tests keep their points and the rest say why?"
    write_module(tmp_path / "pkg", "import time\ndef double(x): return 2 * x\ndef halve(x):\n    time.sleep(60)\n")
    verdicts, problem = run_in_subprocess(
        hidden, tmp_path / "pkg", ["cardfraud.numbers"], limits=Limits(notebook_seconds=5, test_seconds=0)
    )
    assert "stopped after 5 s" in problem
    scores = {v.name: v.score for v in verdicts}
    assert scores == {"Doubles a positive number.": 2, "Doubles a negative number.": 1, "Halves a number.": 0}


def test_memory_bomb_is_contained(hidden, tmp_path):
    "Does code that allocates far too much fail its own test with MemoryError while the others pass?"
    write_module(tmp_path / "pkg", "def double(x):\n    return len(bytearray(8 * 2**30))\ndef halve(x): return x / 2\n")
    verdicts, _ = run_in_subprocess(hidden, tmp_path / "pkg", ["cardfraud.numbers"], limits=Limits(memory_mb=1024))
    scores = {v.name: (v.score, v.output) for v in verdicts}
    assert scores["Halves a number."][0] == 1
    assert "MemoryError" in scores["Doubles a positive number."][1]


def test_a_part_that_ran_out_of_time_is_not_run_again(hidden):
    "Once a test of a part times out, do the part's other tests fail at once with the same message, while other parts run?"
    scope: dict = {}
    exec("calls = []\ndef double(x):\n    calls.append(x)\n    while True:\n        pass\ndef halve(x): return x / 2", scope)
    verdicts = by_name(run_in_process(hidden, LearnerCode(scope, "this notebook"), test_timeout=0.5))
    assert scope["calls"] == [2]  # the second test of `double` never called it
    first, second = verdicts["Doubles a positive number."], verdicts["Doubles a negative number."]
    assert (first.score, second.score) == (0, 0)
    assert second.output == f"{first.output} (not run: an earlier test of this part ran out of time)"
    assert verdicts["Halves a number."].status == PASSED


def test_reported_records_are_bounded():
    "Are lines longer than a record skipped, and a run that reports far more records than it has tests voided?"
    receive, send = multiprocessing.Pipe(duplex=False)
    reader = runner._RecordReader(receive, max_records=3)
    os.write(send.fileno(), b"x" * (runner.MAX_RECORD_BYTES + 1) + b"\n" + b"first\nsecond")
    send.close()
    assert reader.stop() == [b"first"]  # the overlong line skipped; an unfinished last line is no record
    receive, send = multiprocessing.Pipe(duplex=False)
    reader = runner._RecordReader(receive, max_records=3)
    for _ in range(1000):  # more than a pipe holds: the reader drains it as it fills
        os.write(send.fileno(), b"{}\n" * 100)
    send.close()
    assert reader.stop() is None
