"""Grading a class: workers, resuming an interrupted run, shards, per-learner results and feedback."""

import csv
import json

import pytest

from autograder import batch, sandbox
from autograder.__main__ import main
from autograder.batch import grade_class, parse_shard
from autograder.feedback import feedback_html
from autograder.paths import ROOT
from autograder.results import FAILED, GradedTest, SubmissionResult, write_atomically
from autograder.sandbox import Limits
from autograder.signing import KEY_VARIABLE, check_key_folder, load_key
from tests.helpers import GOOD, HIDDEN_NUMBERS, code_cell, notebook, write


@pytest.fixture
def graded_calls(monkeypatch):
    """The students actually graded (not reused from an earlier run), in any order."""
    calls = []
    real = batch.grade_submission

    def counting(submission, *args, **kwargs):
        calls.append(submission.student)
        return real(submission, *args, **kwargs)

    monkeypatch.setattr(batch, "grade_submission", counting)
    return calls


def scores(results):
    return {r.student: r.score for r in results}


def graded(path):
    """A results.json but for what differs from one grading to the next: its grading times, and so its signature."""
    payload = json.loads(path.read_text())
    del payload["extra_data"]["seconds"], payload["extra_data"]["signature"]
    return payload


@pytest.mark.slow
def test_rerun_skips_what_is_done_and_force_regrades(course, tmp_path, graded_calls):
    "Does a second run reuse every result written by the first, and --force grade them all again, identically (but for the times)?"
    hidden, submitted = course
    first = grade_class(submitted, hidden, out=tmp_path / "out", workers=2)
    assert scores(first) == {"ann": 4, "bob": 3, "cy": 4, "dee": 2}
    files = {p: graded(p) for p in (tmp_path / "out").rglob("results.json")}
    assert len(files) == 4 and sorted(graded_calls) == ["ann", "bob", "cy", "dee"]

    graded_calls.clear()
    assert scores(grade_class(submitted, hidden, out=tmp_path / "out")) == scores(first)
    assert graded_calls == []

    grade_class(submitted, hidden, out=tmp_path / "out", force=True)
    assert sorted(graded_calls) == ["ann", "bob", "cy", "dee"]
    assert {p: graded(p) for p in files} == files, "a regrade must give identical results"


@pytest.mark.slow
def test_an_interrupted_run_resumes_where_it_stopped(course, tmp_path, graded_calls):
    "After a run stopped midway (one result missing, one half-written), does the next run grade just those two?"
    hidden, submitted = course
    out = tmp_path / "out"
    grade_class(submitted, hidden, out=out)
    (out / "bob" / "numbers" / "results.json").unlink()
    (out / "cy" / "numbers" / "results.json").write_text('{"score": 4, "extra_da')
    graded_calls.clear()
    results = grade_class(submitted, hidden, out=out)
    assert sorted(graded_calls) == ["bob", "cy"]
    assert scores(results) == {"ann": 4, "bob": 3, "cy": 4, "dee": 2}


@pytest.mark.slow
def test_a_changed_notebook_or_test_is_regraded(course, tmp_path, graded_calls):
    "Is a submission regraded when its notebook changes, and every one when the hidden tests change?"
    hidden, submitted = course
    out = tmp_path / "out"
    grade_class(submitted, hidden, out=out)
    nb = notebook(code_cell("#| default_exp numbers"), code_cell(f"#| export\n{GOOD}"))
    write(nb, submitted / "dee" / "numbers" / "numbers.ipynb")
    graded_calls.clear()
    assert scores(grade_class(submitted, hidden, out=out))["dee"] == 4
    assert graded_calls == ["dee"]
    test_file = hidden / "numbers" / "test_numbers.py"
    test_file.write_text(test_file.read_text() + "\n# a fix to a hidden test\n")
    graded_calls.clear()
    grade_class(submitted, hidden, out=out)
    assert sorted(graded_calls) == ["ann", "bob", "cy", "dee"]


def test_shards_split_the_class_and_merge_without_regrading(course, tmp_path, graded_calls):
    "Do shards 1/3..3/3 grade each submission exactly once, and a run over their merged outputs grade nothing?"
    hidden, submitted = course
    out = tmp_path / "out"
    for index in (1, 2, 3):
        grade_class(submitted, hidden, out=out, shard=(index, 3))
    assert sorted(graded_calls) == ["ann", "bob", "cy", "dee"]
    graded_calls.clear()
    assert (
        main(["grade", str(submitted), "--hidden-tests", str(hidden), "--out", str(out), "--csv", str(tmp_path / "c.csv")]) == 0
    )
    assert graded_calls == []
    assert len((tmp_path / "c.csv").read_text().splitlines()) == 5


def test_a_forged_results_file_is_reported_and_regraded(course, tmp_path, graded_calls, monkeypatch, capsys):
    "Is a results.json given full marks by hand (fingerprint kept), or signed with another key, reported and graded again?"
    hidden, submitted = course
    out = tmp_path / "out"
    grade_class(submitted, hidden, out=out)
    forged = out / "bob" / "numbers" / "results.json"
    payload = json.loads(forged.read_text())
    for test in payload["extra_data"]["tests"]:
        test["score"], test["status"], test["output"] = test["max_score"], "passed", ""
    forged.write_text(json.dumps(payload))
    graded_calls.clear()
    assert scores(grade_class(submitted, hidden, out=out))["bob"] == 3
    assert graded_calls == ["bob"] and f"{forged}: its signature does not match" in capsys.readouterr().err

    monkeypatch.setenv(KEY_VARIABLE, str(tmp_path / "another" / "signing-key"))  # signed, but not with this class's key
    graded_calls.clear()
    grade_class(submitted, hidden, out=out)
    assert sorted(graded_calls) == ["ann", "bob", "cy", "dee"]


def test_the_signing_key_is_made_once_and_kept_apart_from_code(tmp_path, monkeypatch):
    "Is the key made on first use, readable by its owner only, and refused where hiding its folder would hide code?"
    monkeypatch.setenv(KEY_VARIABLE, str(tmp_path / "keys" / "signing-key"))
    key = load_key()
    assert load_key() == key and len(key) == 32
    assert (tmp_path / "keys" / "signing-key").stat().st_mode & 0o777 == 0o600
    check_key_folder([str(ROOT)])
    monkeypatch.setenv(KEY_VARIABLE, str(ROOT.parent / "signing-key"))
    with pytest.raises(ValueError, match="folder of its own"):
        check_key_folder([str(ROOT)])


def test_workers_sharing_tmp_are_warned_about(tmp_path, monkeypatch, capsys):
    "Where graded code cannot have a /tmp of its own, does grading several submissions at once warn, saying what to do?"
    monkeypatch.setattr(sandbox, "private_tmp_available", lambda: False)
    main(["grade", str(tmp_path), "--workers", "2"])  # no notebooks here: the warning comes first
    assert "grade with --workers 1" in capsys.readouterr().err


@pytest.mark.parametrize("text", ["0/3", "4/3", "two/3", "1"])
def test_bad_shard_is_refused(text):
    "Is a shard that does not exist refused with a message saying how to write one?"
    with pytest.raises(ValueError, match="--shard"):
        parse_shard(text)


def test_results_json_is_gradescope_format(course, tmp_path):
    "Does each learner's results.json carry Gradescope's fields, with their tests visible or after publication?"
    hidden, submitted = course
    grade_class(submitted, hidden, out=tmp_path / "out")
    payload = json.loads((tmp_path / "out" / "bob" / "numbers" / "results.json").read_text())
    assert (payload["score"], payload["max_score"]) == (3, 4)
    assert {t["visibility"] for t in payload["tests"]} == {"visible", "after_published"}
    assert {"name", "score", "max_score", "output", "status"} <= set(payload["tests"][0])


def test_feedback_page_says_what_failed_and_why():
    "Does the feedback page list every test with its points, give the reason for each failure, and escape the learner's text?"
    result = SubmissionResult(
        "bob <script>",
        "numbers",
        [
            GradedTest("halve", "Halves a number.", 0, 1, FAILED, "halve(4) should be 2, got <4>", True, "numbers"),
            GradedTest("double", "Doubles a positive number.", 2, 2, "passed", "", True, "numbers"),
        ],
    )
    page = feedback_html(result)
    assert "Score: <strong>2</strong> of 3 points" in page
    assert "Halves a number." in page and "halve(4) should be 2, got &lt;4&gt;" in page
    assert "<script>" not in page and "bob &lt;script&gt;" in page


@pytest.mark.slow
def test_a_submission_has_one_time_budget_for_all_its_notebooks(tmp_path):
    "When a learner's first notebook uses up the submission's time, is the next one listed as not graded, with the reason?"
    hidden = tmp_path / "hidden" / "numbers"
    hidden.mkdir(parents=True)
    for exercise in ("first", "second"):
        (hidden / f"test_{exercise}.py").write_text(HIDDEN_NUMBERS)
    slow = "import time\ndef double(x):\n    time.sleep(30)\n\ndef halve(x):\n    return x / 2"
    for exercise, source in (("first", slow), ("second", GOOD)):
        nb = notebook(code_cell("#| default_exp numbers"), code_cell(f"#| export\n{source}"))
        write(nb, tmp_path / "submitted" / "ann" / "numbers" / f"{exercise}.ipynb")
    limits = Limits(submission_seconds=3, test_seconds=0)
    (result,) = grade_class(tmp_path / "submitted", tmp_path / "hidden", limits)
    second = [t for t in result.tests if t.notebook == "second"]
    assert len(second) == 3 and all(t.score == 0 and "used up its time limit (3 s" in t.output for t in second)
    assert any("grading stopped after" in m for m in result.messages if m.startswith("first"))


def test_results_depend_on_the_device(class_of_three):
    "A class graded on the CPU is graded again on the GPU: the device is part of what a result depends on."
    from autograder.grade import discover
    from autograder.paths import hidden_tests_dir

    submission = next(iter(discover(class_of_three)))
    on_cpu = batch.fingerprint(submission, hidden_tests_dir(), Limits())
    assert on_cpu == batch.fingerprint(submission, hidden_tests_dir(), Limits(test_seconds=60))
    assert on_cpu != batch.fingerprint(submission, hidden_tests_dir(), Limits(device="cuda"))


@pytest.mark.slow
def test_a_grader_failure_costs_one_submission_and_is_retried(course, tmp_path, monkeypatch):
    "When grading one submission fails inside the grader, is it reported as zero, by name, while the class goes on, and retried next run?"
    real = batch.grade_submission

    def fails_for_bob(submission, *args):
        if submission.student == "bob":
            raise KeyError("event")
        return real(submission, *args)

    hidden, submitted = course
    monkeypatch.setattr(batch, "grade_submission", fails_for_bob)
    results = {r.student: r for r in grade_class(submitted, hidden, out=tmp_path / "out", workers=2)}
    assert results["bob"].score == 0 and "the grader failed on this submission (KeyError" in results["bob"].messages[0]
    assert all(results[name].score > 0 for name in ("ann", "cy", "dee"))
    assert not (tmp_path / "out" / "bob").exists()
    monkeypatch.setattr(batch, "grade_submission", real)
    assert scores(grade_class(submitted, hidden, out=tmp_path / "out"))["bob"] == 3


def test_writing_results_follows_no_link(tmp_path):
    "Does writing a results file replace a link planted at its path, or at a temporary name beside it, instead of writing through it?"
    victim = tmp_path / "victim.txt"
    victim.write_text("the instructor's file\n")
    out = tmp_path / "out"
    out.mkdir()
    (out / "results.json").symlink_to(victim)
    (out / "results.json.tmp").symlink_to(victim)
    write_atomically(out / "results.json", "{}\n")
    assert victim.read_text() == "the instructor's file\n"
    assert not (out / "results.json").is_symlink() and (out / "results.json").read_text() == "{}\n"


@pytest.mark.slow
def test_a_run_without_the_full_sandbox_is_marked_not_safe_for_credit(course, tmp_path, monkeypatch, capsys, graded_calls):
    "Where the system lacks a protection, does grading go on, marking every result, the class sheet and the summary, and regrade once it has them?"
    hidden, submitted = course
    out, sheet = tmp_path / "out", tmp_path / "class.csv"
    command = ["grade", str(submitted), "--hidden-tests", str(hidden), "--out", str(out), "--csv", str(sheet)]
    present = sandbox.cgroups_available
    monkeypatch.setattr(sandbox, "cgroups_available", lambda: False)
    assert main(command) == 0
    lacking = "not safe for credit: graded without cgroups"
    assert lacking in capsys.readouterr().out
    rows = list(csv.DictReader(sheet.read_text().splitlines()))
    assert len(rows) == 4 and all(row["safe_for_credit"].startswith("no: graded without cgroups") for row in rows)
    stored = json.loads((out / "ann" / "numbers" / "results.json").read_text())["extra_data"]
    assert stored["not_safe_for_credit"].startswith("graded without cgroups") and stored["tests"]
    monkeypatch.setattr(sandbox, "cgroups_available", present)
    if sandbox.missing_protections():
        return  # this system lacks a protection itself: nothing to regrade under
    graded_calls.clear()
    assert main(command) == 0
    assert sorted(graded_calls) == ["ann", "bob", "cy", "dee"]  # graded again, now under the whole sandbox
    assert lacking not in capsys.readouterr().out
    assert [row["safe_for_credit"] for row in csv.DictReader(sheet.read_text().splitlines())] == ["yes"] * 4
