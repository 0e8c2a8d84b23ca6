"""What grading produces: one result per hidden test, gathered per submission.

The field names follow Gradescope's ``results.json`` so that the same file can be
uploaded there or read by a learning-management system.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from autograder.signing import ForgedResults, check, sign

PASSED, FAILED, NOT_ATTEMPTED = "passed", "failed", "not attempted"
# A manually graded test whose points the instructor has not given yet: zero for now, shown as pending.
PENDING = "pending"
# A results.json the grader wrote is a few KiB per test: anything far larger was not written by it.
MAX_RESULTS_BYTES = 16 * 1024 * 1024


@dataclass
class GradedTest:
    """One hidden test's verdict on one submission."""

    part: str
    name: str  # what the test checks, in words: its docstring's first line
    score: float
    max_score: float
    status: str  # PASSED, FAILED, NOT_ATTEMPTED or PENDING
    output: str = ""  # why it failed, addressed to the learner
    visible: bool = False
    notebook: str = ""
    manual: bool = False  # a written answer that people grade (written.py): its points are kept apart

    def to_gradescope(self) -> dict:
        return {
            "name": f"{self.notebook}: {self.part}: {self.name}" if self.notebook else f"{self.part}: {self.name}",
            "score": self.score,
            "max_score": self.max_score,
            "output": self.output,
            "visibility": "visible" if self.visible else "after_published",
            "status": "passed" if self.status == PASSED else "failed",
        }


@dataclass
class SubmissionResult:
    """One learner's work on one assignment (a chapter), over all its notebooks."""

    student: str
    assignment: str
    tests: list[GradedTest] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # problems with the submission as a whole
    not_safe_for_credit: str = ""  # why, where the system lacked a protection of the sandbox: for the instructor
    seconds: dict[str, float] = field(default_factory=dict)  # grading time per notebook (exercise name)
    # Notebooks ("chapter/exercise") whose reference code stood in for the learner's in a later notebook (uses.py).
    references: list[str] = field(default_factory=list)

    @property
    def score(self) -> float:
        return round(sum(t.score for t in self.tests), 6)

    @property
    def max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests), 6)

    @property
    def automatic_score(self) -> float:
        return round(sum(t.score for t in self.tests if not t.manual), 6)

    @property
    def automatic_max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests if not t.manual), 6)

    @property
    def manual_score(self) -> float:
        return round(sum(t.score for t in self.tests if t.manual), 6)

    @property
    def manual_max_score(self) -> float:
        return round(sum(t.max_score for t in self.tests if t.manual), 6)

    @property
    def pending(self) -> list[GradedTest]:
        """The written answers that wait for a person's points."""
        return [t for t in self.tests if t.status == PENDING]

    def part_scores(self) -> dict[tuple[str, str], float]:
        """Points per (notebook, part): what one nbgrader test cell would show."""
        scores: dict[tuple[str, str], float] = {}
        for t in self.tests:
            key = (t.notebook, t.part)
            scores[key] = round(scores.get(key, 0.0) + t.score, 6)
        return scores

    def to_gradescope(self) -> dict:
        return {
            "score": self.score,
            "max_score": self.max_score,
            "output": "\n".join(self.messages),
            "visibility": "visible",
            "tests": [t.to_gradescope() for t in self.tests],
        }

    def to_dict(self) -> dict:
        return {"student": self.student, "assignment": self.assignment, **self.to_gradescope()}


def write_json(results: list[SubmissionResult], path: Path) -> None:
    """Gradescope's results.json for one submission; a list under "submissions" for several."""
    if len(results) == 1:
        payload = results[0].to_gradescope()
    else:
        payload = {"submissions": [r.to_dict() for r in results]}
    write_atomically(path, json.dumps(payload, indent=2) + "\n")


def write_submission(result: SubmissionResult, path: Path, fingerprint: str, key: bytes) -> None:
    """One submission's results.json, carrying in ``extra_data`` what a later run needs to reuse it, signed."""
    payload = result.to_gradescope()
    payload["extra_data"] = {
        "student": result.student,
        "assignment": result.assignment,
        "fingerprint": fingerprint,
        "messages": result.messages,
        "not_safe_for_credit": result.not_safe_for_credit,
        "tests": [asdict(test) for test in result.tests],
        "seconds": result.seconds,
        "references": result.references,
    }
    payload["extra_data"]["signature"] = sign(payload, key)
    write_atomically(path, json.dumps(payload, indent=2) + "\n")


def read_submission(path: Path, fingerprint: str, key: bytes) -> SubmissionResult | None:
    """The result stored at ``path`` if it was graded from the same inputs, else None.

    Raises ForgedResults for a file graded from the same inputs whose signature does not
    match: changed since, by hand or by a submission.
    """
    try:
        stored, result = read_signed(path, key)
    except ForgedResults:
        if _stored_fingerprint(path) == fingerprint:
            raise
        return None  # graded from other inputs: regraded whatever its signature says
    except (OSError, ValueError, KeyError, TypeError):  # missing, damaged or from another version: grade again
        return None
    return result if stored == fingerprint else None


def read_signed(path: Path, key: bytes) -> tuple[str, SubmissionResult]:
    """The fingerprint and result in the results.json at ``path``, checked against its signature.

    Raises OSError or ValueError (ForgedResults among them) for a file that cannot be
    read, is not one this grader wrote, or was changed since.
    """
    if Path(path).stat().st_size > MAX_RESULTS_BYTES:
        raise ValueError(f"larger than {MAX_RESULTS_BYTES // 2**20} MiB: not a results file of this grader")
    payload = json.loads(Path(path).read_text())
    try:
        extra = payload["extra_data"]
        signature = extra.pop("signature", None)
    except (KeyError, TypeError, AttributeError):
        raise ValueError("no extra_data: not a results file of this grader (or of an older version)") from None
    check(payload, signature, key)  # from here on, the file is as this grader wrote it
    tests = [GradedTest(**test) for test in extra["tests"]]
    result = SubmissionResult(
        extra["student"],
        extra["assignment"],
        tests,
        list(extra["messages"]),
        extra["not_safe_for_credit"],
        extra["seconds"],
        list(extra["references"]),
    )
    return extra["fingerprint"], result


def _stored_fingerprint(path: Path) -> str | None:
    try:
        return json.loads(Path(path).read_text())["extra_data"]["fingerprint"]
    except Exception:  # whatever is there, it names no fingerprint
        return None


def read_graded(folder: Path, key: bytes) -> tuple[dict[Path, SubmissionResult], list[str]]:
    """Every results.json under ``folder`` (a class graded with --out, shards merged) that this grader signed.

    Returns the results by file, and a line for each file that could not be used, saying
    why: one damaged, foreign or changed file costs only itself.
    """
    results, problems = {}, []
    for path in sorted(Path(folder).rglob("results.json")):
        try:
            _, results[path] = read_signed(path, key)
        except (OSError, ValueError, KeyError, TypeError) as e:
            problems.append(f"{path}: {e}" if str(e) else f"{path}: not a results file of this grader ({type(e).__name__})")
    return results, problems


@dataclass
class ScoreChange:
    """A submission whose score a regrade changed: before, after, and the parts that moved."""

    student: str
    assignment: str
    before: float
    after: float
    parts: dict[tuple[str, str], tuple[float, float]]  # (notebook, part) -> (before, after)

    def describe(self) -> str:
        parts = ", ".join(f"{nb}: {part} {b:g} -> {a:g}" for (nb, part), (b, a) in self.parts.items())
        return f"{self.student} / {self.assignment}: {self.before:g} -> {self.after:g} ({self.after - self.before:+g}; {parts})"


def score_changes(before: list[SubmissionResult], after: list[SubmissionResult]) -> list[ScoreChange]:
    """The submissions graded in both whose points differ, in total or on any part."""
    earlier = {(r.student, r.assignment): r for r in before}
    changes = []
    for result in after:
        if (old := earlier.get((result.student, result.assignment))) is None:
            continue
        was, now = old.part_scores(), result.part_scores()
        parts = {key: (was.get(key, 0.0), now.get(key, 0.0)) for key in [*now, *(k for k in was if k not in now)]}
        moved = {key: points for key, points in parts.items() if abs(points[0] - points[1]) > 1e-9}
        if moved:
            changes.append(ScoreChange(result.student, result.assignment, old.score, result.score, moved))
    return changes


def write_changes(changes: list[ScoreChange], path: Path, when: str) -> None:
    """Add this regrade's changes to the history at ``path`` (CSV: one row per submission and part that moved)."""
    history = Path(path).read_text() if Path(path).is_file() else "when,student,assignment,notebook,part,before,after\n"
    sheet = io.StringIO(newline="")
    writer = csv.writer(sheet)
    for change in changes:
        for (notebook, part), (b, a) in change.parts.items():
            writer.writerow([when, change.student, change.assignment, notebook, part, b, a])
    write_atomically(Path(path), history + sheet.getvalue())


# score is the total: the automatic points plus those people gave to written answers
# (manual_score); manual_pending counts the written answers that still wait for a person.
CSV_COLUMNS = [
    "student",
    "assignment",
    "score",
    "max_score",
    "automatic_score",
    "automatic_max_score",
    "manual_score",
    "manual_max_score",
    "manual_pending",
    "messages",
    "reference_code_used",
    "safe_for_credit",
]


def write_csv(results: list[SubmissionResult], path: Path) -> None:
    """The class sheet: one row per learner and assignment."""
    sheet = io.StringIO(newline="")
    writer = csv.writer(sheet)
    writer.writerow(CSV_COLUMNS)
    for r in results:
        safe = f"no: {r.not_safe_for_credit}" if r.not_safe_for_credit else "yes"
        automatic, manual = [r.automatic_score, r.automatic_max_score], [r.manual_score, r.manual_max_score, len(r.pending)]
        writer.writerow(
            [
                r.student,
                r.assignment,
                r.score,
                r.max_score,
                *automatic,
                *manual,
                " | ".join(r.messages),
                " ".join(r.references),
                safe,
            ]
        )
    write_atomically(path, sheet.getvalue())


def write_atomically(path: Path, text: str) -> None:
    """Write a whole file or nothing: a reader, or an interrupted run, never sees half of it.

    Through no link: the temporary file is new (created exclusively, under a random name),
    and the rename replaces whatever ``path`` is, a link planted there included.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as f:
            f.write(text.encode("utf-8", errors="replace"))  # a lone surrogate from a submission cannot break it
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_table(results: list[SubmissionResult]) -> str:
    """A terminal summary: per test for one submission, per submission for a class."""
    lines = []
    if len(results) == 1:
        r = results[0]
        lines.append(f"{r.student} / {r.assignment}")
        for t in r.tests:
            mark = {PASSED: "ok  ", FAILED: "FAIL", NOT_ATTEMPTED: "todo", PENDING: "wait"}[t.status]
            lines.append(f"  {mark} {t.score:g}/{t.max_score:g}  {t.notebook}:{t.part}  {t.name}")
            if t.status != PASSED and t.output:
                lines.append(f"         {t.output.splitlines()[0]}")
    else:
        width = max(len(r.student) for r in results)
        for r in results:
            lines.append(f"{r.student:<{width}}  {r.assignment}  {r.score:g}/{r.max_score:g}")
    for r in results:
        for message in r.messages:
            lines.append(f"  note ({r.student} / {r.assignment}): {message}")
    for reason in dict.fromkeys(r.not_safe_for_credit for r in results if r.not_safe_for_credit):
        lines.append(f"not safe for credit: {reason}")
    total = sum(r.score for r in results)
    possible = sum(r.max_score for r in results)
    lines.append(f"total: {total:g}/{possible:g} points over {len(results)} submission(s)")
    if pending := [t for r in results for t in r.pending]:
        automatic = sum(r.automatic_score for r in results), sum(r.automatic_max_score for r in results)
        lines.append(
            f"automatic points: {automatic[0]:g}/{automatic[1]:g}; {len(pending)} written answer(s) worth "
            f"{sum(t.max_score for t in pending):g} points await grading by a person (nbgrader's formgrader; then --gradebook)"
        )
    return "\n".join(lines)
