"""Grading a whole class: several submissions at once, resumable, shardable.

With ``out`` set, each submission's results are written next to one another::

    <out>/<student>/<assignment>/results.json     Gradescope's format
    <out>/<student>/<assignment>/feedback.html    what passed, what failed and why

each file atomically, as soon as its submission is graded. A run that is interrupted
loses nothing already written, and the next run skips every submission whose
notebooks, hidden tests and limits have not changed since (``force`` regrades them).
That same rule merges shards: machines that each graded ``shard=(i, n)`` into copies
of ``out`` leave nothing to regrade once the folders are put together, and one more
run writes the class sheet.
"""

from __future__ import annotations

import hashlib
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from functools import cache
from pathlib import Path

from tqdm.auto import tqdm

from autograder.feedback import write_feedback
from autograder.grade import Submission, discover, grade_submission
from autograder.results import SubmissionResult, read_submission, write_submission
from autograder.sandbox import Limits, code_folders, missing_protections
from autograder.signing import ForgedResults, check_key_folder, load_key
from autograder.uses import USES, used_elsewhere
from autograder.written import WRITTEN_PARTS, apply_scores


def parse_shard(text: str) -> tuple[int, int]:
    """``"2/4"`` -> (2, 4): the second of four shards."""
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard takes i/N, e.g. 2/4, not {text!r}") from None
    if not 1 <= index <= count:
        raise ValueError(f"--shard {text}: i must be between 1 and N")
    return index, count


def shard_of(submissions: list[Submission], shard: tuple[int, int]) -> list[Submission]:
    """The submissions that shard ``(i, n)`` grades: every n-th one, in a fixed order."""
    index, count = shard
    ordered = sorted(submissions, key=lambda s: (s.assignment, s.student))
    return ordered[index - 1 :: count]


@cache
def _grader_code() -> bytes:
    """The grader's own source (helpers that hidden tests call, the runner): a new version regrades."""
    package = Path(__file__).parent
    # Hidden tests count per assignment (below), so that fixing one regrades only its own.
    sources = sorted(p for p in package.rglob("*.py") if "hidden_tests" not in p.relative_to(package).parts)
    return hashlib.sha256(b"".join(p.read_bytes() for p in sources)).digest()


def fingerprint(submission: Submission, hidden_dir: Path, limits: Limits) -> str:
    """What a result depends on: the notebooks, the assignment's hidden tests, the limits, the device, the grader and
    the protections it was graded without (a run on a system that has them grades again)."""
    # Numbers as floats, so that a limit of 60 from the command line equals the default 60.0.
    settings = {k: v if isinstance(v, str) else float(v) for k, v in asdict(limits).items()}
    digest = hashlib.sha256(json.dumps([settings, missing_protections()], sort_keys=True).encode())
    digest.update(_grader_code())
    folder = Path(hidden_dir) / submission.assignment
    tests = sorted([*folder.rglob("*.py"), *folder.glob(WRITTEN_PARTS), *folder.glob(USES)])
    inputs = [*tests, *(submission.notebooks[name] for name in sorted(submission.notebooks))]
    # A notebook built on other chapters' is graded again when they, or their tests, change.
    notebooks_folder = next(iter(submission.notebooks.values())).parent
    for used in used_elsewhere(submission.assignment, hidden_dir):
        inputs += sorted((Path(hidden_dir) / used.chapter).rglob("*.py"))
        inputs += [copy for copy in [used.learner_copy(notebooks_folder)] if copy.exists()]
    for path in inputs:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def grade_class(
    path: Path,
    hidden_dir: Path,
    limits: Limits = Limits(),
    out: Path | None = None,
    workers: int = 1,
    shard: tuple[int, int] = (1, 1),
    force: bool = False,
    people_scores: dict | None = None,
) -> list[SubmissionResult]:
    """Grade every submission under ``path`` (this shard of them), ``workers`` at a time.

    ``people_scores`` are the points people gave written answers (``written.gradebook_scores``):
    applied to every result, fresh or reused, since they change without the notebook changing.
    """
    people_scores = people_scores or {}
    # Chapters that build on others' notebooks last: by then those are graded, and reused.
    submissions = sorted(shard_of(discover(path), shard), key=lambda s: bool(used_elsewhere(s.assignment, hidden_dir)))
    missing = missing_protections()
    unsafe = f"graded without {'; '.join(missing)}" if missing else ""
    if out is not None:
        check_key_folder([*code_folders(), str(hidden_dir)])
        key = load_key()  # here, in this process only: the grading server was not forked from it

    def one(submission: Submission) -> SubmissionResult:
        if out is None:
            result, _ = _graded_or_failed(submission, hidden_dir, limits)
            result.not_safe_for_credit = unsafe
            apply_scores(result, people_scores)
            return result
        folder = Path(out) / submission.student / submission.assignment
        inputs = fingerprint(submission, hidden_dir, limits)
        if not force:
            try:
                if (earlier := read_submission(folder / "results.json", inputs, key)) is not None:
                    if apply_scores(earlier, people_scores):
                        write_feedback(earlier, folder / "feedback.html")
                        write_submission(earlier, folder / "results.json", inputs, key)
                    return earlier
            except ForgedResults as e:
                tqdm.write(f"warning: {folder / 'results.json'}: {e}; graded again", file=sys.stderr)
        result, graded = _graded_or_failed(submission, hidden_dir, limits)
        result.not_safe_for_credit = unsafe
        apply_scores(result, people_scores)
        if not graded:
            return result  # nothing written: the next run tries this submission again
        # Feedback first: results.json is the mark of a finished submission.
        write_feedback(result, folder / "feedback.html")
        write_submission(result, folder / "results.json", inputs, key)
        return result

    # Each submission's grading waits on its own subprocess, so threads are enough.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        jobs = pool.map(one, submissions)
        return list(tqdm(jobs, total=len(submissions), desc="grading", unit="submission", disable=None))


def _graded_or_failed(submission: Submission, hidden_dir: Path, limits: Limits) -> tuple[SubmissionResult, bool]:
    """The submission's result, and whether grading finished; a grader failure costs only this submission."""
    try:
        return grade_submission(submission, hidden_dir, limits), True
    except Exception as e:  # whatever went wrong, the rest of the class is still graded
        why = f"the grader failed on this submission ({type(e).__name__}: {e}); it scores zero until regraded"
        return SubmissionResult(submission.student, submission.assignment, messages=[why]), False
