"""``python -m autograder``: export, release and grade from the command line."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

CHANGES_NAME = "score-changes.csv"  # in the --out folder: every regrade's changes, one row per part that moved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m autograder", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser("export", help="write a notebook's #| export cells into the learner package")
    export.add_argument("notebook", type=Path)
    export.add_argument("--to", type=Path, default=Path("."), help="folder that receives cardfraud/ (default: here)")

    release = commands.add_parser("release", help="regenerate exercises/ from solutions/ with nbgrader")
    release.add_argument("--check", action="store_true", help="only report whether exercises/ is stale")

    grade = commands.add_parser("grade", help="grade a notebook, a learner's folder or an nbgrader submitted/ tree")
    grade.add_argument("path", type=Path, nargs="?", help="what to grade (not needed with --check-sandbox)")
    grade.add_argument("--check-sandbox", action="store_true", help="print which protections this system gives, then stop")
    grade.add_argument(
        "--require-sandbox", action="store_true", help="refuse to grade where the system lacks namespaces or a private /tmp"
    )
    grade.add_argument("--json", type=Path, help="write Gradescope-style results here")
    grade.add_argument("--csv", type=Path, help="write the class sheet here")
    grade.add_argument("--timeout", type=float, default=600, help="seconds per notebook (default 600)")
    grade.add_argument("--test-timeout", type=float, default=60, help="seconds per test (default 60)")
    grade.add_argument(
        "--submission-timeout", type=float, default=1200, help="seconds for all of one learner's notebooks (default 1200)"
    )
    grade.add_argument(
        "--memory-mb", type=int, default=4096, help="memory per notebook in MiB, besides the grader's libraries (default 4096)"
    )
    grade.add_argument(
        "--device", choices=["cpu", "cuda"], default="cpu", help="where tests of training code train (default cpu)"
    )
    grade.add_argument("--hidden-tests", type=Path, help="folder of hidden tests (default: the package's own)")
    grade.add_argument(
        "--out", type=Path, help="write <student>/<assignment>/results.json and feedback.html here; reruns skip what is done"
    )
    grade.add_argument("--workers", type=int, default=1, help="submissions graded at once (default 1)")
    grade.add_argument("--shard", default="1/1", help="grade only shard i of N of the submissions, e.g. 2/4 (default 1/1)")
    grade.add_argument("--force", action="store_true", help="regrade submissions that --out already holds results for")
    grade.add_argument(
        "--gradebook",
        type=Path,
        help="nbgrader's gradebook.db: the points people gave written answers in the formgrader join the results",
    )

    report = commands.add_parser("report", help="one HTML page on a class graded with --out: where it struggles, who is stuck")
    report.add_argument("graded", type=Path, help="the --out folder of `grade` (shards merged)")
    report.add_argument("--out", type=Path, help="the page to write (default: report.html in the graded folder)")

    visible = commands.add_parser("visible-tests", help="remove hidden tests from a copy for learners (in place)")
    visible.add_argument("folder", type=Path)

    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (FileNotFoundError, FileExistsError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _export(args) -> int:
    from autograder.export import ExportError, export_notebook

    try:
        print("\n".join(str(module) for module in export_notebook(args.notebook, args.to)))
    except ExportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


def _release(args) -> int:
    from autograder.release import release, stale_files

    if not args.check:
        release()
        print("exercises/ regenerated from solutions/")
        return 0
    stale = stale_files()
    if stale:
        print("exercises/ is stale; run `python -m autograder release` and commit the result:")
        print("\n".join(f"  {name}" for name in stale))
        return 1
    print("exercises/ matches a fresh release of solutions/")
    return 0


def _grade(args) -> int:
    from autograder.batch import grade_class, parse_shard
    from autograder.paths import HIDDEN_TESTS_VARIABLE, hidden_tests_dir
    from autograder.results import format_table, read_graded, score_changes, write_changes, write_csv, write_json
    from autograder.sandbox import Limits, missing_protections, private_tmp_available, protections
    from autograder.signing import load_key
    from autograder.written import gradebook_scores

    if args.check_sandbox:
        print("\n".join(f"{'yes' if present else 'no '}  {name}" for name, present in protections().items()))
        return 0
    if args.path is None:
        raise ValueError("grade: give a notebook, a learner's folder or a submitted/ tree to grade")
    missing = missing_protections()
    if missing and args.require_sandbox:
        raise ValueError(f"--require-sandbox: this system does not give {'; '.join(missing)}")
    for name in missing:
        print(f"warning: this system does not give {name}: grading goes on, not safe for credit", file=sys.stderr)
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ValueError("--device cuda: this machine has no CUDA device that PyTorch can use; grade on the CPU instead")
    if args.workers > 1 and not private_tmp_available():
        print(
            "warning: this system gives graded code no /tmp of its own (it does not allow user namespaces), so a"
            " submission could change the hidden tests of another graded at the same time. Such a run is reported,"
            " but for a class you do not trust, grade with --workers 1.",
            file=sys.stderr,
        )
    limits = Limits(
        notebook_seconds=args.timeout,
        test_seconds=args.test_timeout,
        memory_mb=args.memory_mb,
        submission_seconds=args.submission_timeout,
        device=args.device,
    )
    hidden_dir = hidden_tests_dir(args.hidden_tests)
    people_scores = gradebook_scores(args.gradebook) if args.gradebook else None
    # Read before grading overwrites them: what a regrade changed is told below.
    previous = list(read_graded(args.out, load_key())[0].values()) if args.out and args.out.is_dir() else []
    # Told to the grading server too, which preloads what these tests import (preload.py);
    # only for this run, so that a caller in the same process is left as it was.
    with mock.patch.dict(os.environ, {HIDDEN_TESTS_VARIABLE: str(hidden_dir.resolve())}):
        results = grade_class(
            args.path,
            hidden_dir,
            limits,
            out=args.out,
            workers=args.workers,
            shard=parse_shard(args.shard),
            force=args.force,
            people_scores=people_scores,
        )
    print(format_table(results))
    if changes := score_changes(previous, results):
        when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        write_changes(changes, args.out / CHANGES_NAME, when)
        print(f"{len(changes)} submission(s) changed score since they were last graded (also in {args.out / CHANGES_NAME}):")
        print("\n".join(f"  {change.describe()}" for change in changes))
    if args.json:
        write_json(results, args.json)
    if args.csv:
        write_csv(results, args.csv)
        if args.out:
            _write_report(args.out, args.csv.parent / "report.html")
    return 0


def _report(args) -> int:
    if not args.graded.is_dir():
        raise FileNotFoundError(f"{args.graded} is not a folder of graded results (the --out folder of `grade`)")
    _write_report(args.graded, args.out or args.graded / "report.html")
    return 0


def _write_report(graded: Path, page: Path) -> None:
    from autograder.report import write_report
    from autograder.signing import load_key

    for problem in write_report(graded, page, load_key()):
        print(f"warning: left out of the report: {problem}", file=sys.stderr)
    print(f"class report: {page}")


def _visible_tests(args) -> int:
    from autograder.visible import strip_hidden_tests

    removed = strip_hidden_tests(args.folder)
    print(f"removed {removed} hidden tests under {args.folder}; the visible ones remain for self-checks")
    return 0


COMMANDS = {"export": _export, "release": _release, "grade": _grade, "report": _report, "visible-tests": _visible_tests}

if __name__ == "__main__":
    sys.exit(main())
