"""The class report: one static page that shows an instructor where a class struggles.

Read from the ``results.json`` files that ``grade --out`` writes (a class graded in
shards too, once the folders are merged), per assignment:

- the score distribution (a histogram) and, per graded part in notebook order, the share
  of learners with full, partial and zero points (pending where a part waits for the
  instructor's own grading);
- per part, the most frequent failure messages, grouped so that one mistake counts once
  per learner however its numbers, quoted values, paths and names differ (``mistake``);
- who did not submit or attempt a notebook, and whose grading timed out or crashed;
- grading time per notebook, median and slowest, so that a slow hidden test shows.

The figures are SVG drawn here, embedded in the page as images with alt text: no
script, no server, nothing fetched, and nothing from the book's helpers, so that the
grader stays usable without the course.
"""

from __future__ import annotations

import base64
import os
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape
from pathlib import Path

from autograder.feedback import STYLE
from autograder.grade import NOT_SUBMITTED
from autograder.pytest_plugin import TOOK_LONGER
from autograder.results import FAILED, NOT_ATTEMPTED, PENDING, SubmissionResult, read_graded, write_atomically

OUTCOMES = ("full", "partial", "zero", "pending")
# Okabe and Ito's palette, told apart with any colour vision.
COLOURS = {"full": "#009E73", "partial": "#E69F00", "zero": "#D55E00", "pending": "#999999"}
MOST_FREQUENT = 3  # failure groups shown per part

QUOTED = re.compile(r"'[^'\n]*'|\"[^\"\n]*\"|`[^`\n]*`")
PATH = re.compile(r"(?:[\w.~-]*/)+[\w.-]+")
NUMBER = re.compile(r"(?<![\w])[-+]?(?:0x[0-9a-fA-F]+|\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)")


def mistake(message: str, student: str = "") -> str:
    """A failure message with what differs between learners making the same mistake taken out.

    In this order: the learner's name becomes ``NAME``; quoted text ('...', "..." or
    `...`) becomes ``'…'``; a file path becomes ``PATH``; a number (integer, decimal,
    scientific or hexadecimal, with its sign) becomes ``N``; runs of white space become
    one space. What remains is the message's wording: the test's own words around the
    learner's values.
    """
    text = message.replace(student, "NAME") if student else message
    text = QUOTED.sub("'…'", text)
    text = PATH.sub("PATH", text)
    text = NUMBER.sub("N", text)
    return " ".join(text.split())


@dataclass
class Part:
    """One graded part of an assignment, over the class."""

    notebook: str
    name: str
    outcomes: dict[str, list[str]] = field(default_factory=lambda: {o: [] for o in OUTCOMES})  # outcome -> learners
    failures: dict[str, dict[str, str]] = field(default_factory=dict)  # mistake -> {learner: their message}
    not_attempted: list[str] = field(default_factory=list)  # learners who left every test of it as released

    @property
    def label(self) -> str:
        return f"{self.notebook}: {self.name}"


@dataclass
class Assignment:
    """One assignment, over the class: what the report shows of it."""

    name: str
    results: dict[str, SubmissionResult] = field(default_factory=dict)  # by learner
    pages: dict[str, Path] = field(default_factory=dict)  # learner -> their feedback page
    parts: dict[tuple[str, str], Part] = field(default_factory=dict)  # in notebook order

    @property
    def max_score(self) -> float:
        return max((r.max_score for r in self.results.values()), default=0.0)


def gather(results: dict[Path, SubmissionResult]) -> dict[str, Assignment]:
    """The class's results by assignment, each part's outcomes and failures counted once per learner."""
    assignments: dict[str, Assignment] = {}
    for path, result in sorted(results.items(), key=lambda item: (item[1].assignment, item[1].student)):
        assignment = assignments.setdefault(result.assignment, Assignment(result.assignment))
        assignment.results[result.student] = result
        assignment.pages[result.student] = path.parent / "feedback.html"
        by_part: dict[tuple[str, str], list] = {}
        for test in result.tests:
            by_part.setdefault((test.notebook, test.part), []).append(test)
        for key, tests in by_part.items():
            part = assignment.parts.setdefault(key, Part(*key))
            score, possible = sum(t.score for t in tests), sum(t.max_score for t in tests)
            if any(t.status == PENDING for t in tests):
                outcome = "pending"
            else:
                outcome = "full" if score >= possible - 1e-9 else "zero" if score <= 1e-9 else "partial"
            part.outcomes[outcome].append(result.student)
            if all(t.status == NOT_ATTEMPTED for t in tests):
                part.not_attempted.append(result.student)
            for test in tests:
                if test.status == FAILED and test.output:
                    part.failures.setdefault(mistake(test.output, result.student), {}).setdefault(result.student, test.output)
    return assignments


def report_html(results: dict[Path, SubmissionResult], problems: list[str], page: Path) -> str:
    """The whole page; links to learners' feedback are relative to where ``page`` will be."""
    assignments = gather(results)
    learners = sorted({r.student for r in results.values()})
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "<!doctype html>",
        # No icon to fetch: a browser would ask the server for /favicon.ico, an error in its console.
        '<html lang="en"><head><meta charset="utf-8"><link rel="icon" href="data:,">',
        f"<title>Class report</title><style>{STYLE}{REPORT_STYLE}</style></head><body>",
        "<h1>Class report</h1>",
        f"<p>{len(learners)} learners, {len(assignments)} assignment(s), {len(results)} graded submissions; made {when}.</p>",
        '<p class="note">This page holds learners\' names and grades: keep it with the grades, not on a public site.</p>',
    ]
    if problems:
        lines.append("<h2>Files not read</h2><p>These results could not be used; they are left out of everything below.</p><ul>")
        lines += [f"<li>{escape(problem)}</li>" for problem in problems]
        lines.append("</ul>")
    for assignment in assignments.values():
        lines += _assignment_section(assignment, learners, page)
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_report(graded: Path, page: Path, key: bytes) -> list[str]:
    """Write the report on the class in ``graded`` to ``page``; returns the files that could not be read."""
    results, problems = read_graded(graded, key)
    write_atomically(Path(page), report_html(results, problems, Path(page)))
    return problems


def _assignment_section(assignment: Assignment, learners: list[str], page: Path) -> list[str]:
    name, results = assignment.name, assignment.results
    lines = [f'<h2 id="{escape(name)}">{escape(name)}</h2>']
    scores = [r.score for r in results.values()]
    lines.append(
        f"<p>{len(results)} learners; median {statistics.median(scores):g} of {assignment.max_score:g} points,"
        f" mean {statistics.fmean(scores):.1f}.</p>"
    )
    lines.append(_image(*_histogram(name, scores, assignment.max_score)))
    lines.append(_image(*_part_chart(name, list(assignment.parts.values()))))
    lines += _failures(assignment, page)
    lines += _who_is_stuck(assignment, learners)
    lines += _timing(assignment)
    lines += _learners(assignment, page)
    return lines


def _failures(assignment: Assignment, page: Path) -> list[str]:
    lines = [
        "<h3>What the class gets wrong</h3>",
        "<table><tr><th>Part</th><th>Full / partial / zero / pending</th><th>Most frequent failures (learners)</th></tr>",
    ]
    for part in assignment.parts.values():
        counts = " / ".join(str(len(part.outcomes[o])) for o in OUTCOMES)
        groups = sorted(part.failures.items(), key=lambda item: (-len(item[1]), item[0]))[:MOST_FREQUENT]
        cells = []
        for _, by_learner in groups:
            learner, message = next(iter(sorted(by_learner.items())))
            link = _link(assignment.pages[learner], page, learner)
            cells.append(f"<li><strong>{len(by_learner)}</strong>: {escape(_first_line(message))} <em>(e.g. {link})</em></li>")
        if part.not_attempted:
            cells.append(f"<li><strong>{len(part.not_attempted)}</strong>: not attempted</li>")
        failures = f"<ul>{''.join(cells)}</ul>" if cells else "none"
        lines.append(f"<tr><td>{escape(part.label)}</td><td>{counts}</td><td>{failures}</td></tr>")
    lines.append("</table>")
    return lines


def _who_is_stuck(assignment: Assignment, learners: list[str]) -> list[str]:
    """Learners who did not submit or attempt a notebook, and those whose grading timed out or crashed."""
    rows: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for learner in learners:
        if learner not in assignment.results:
            rows["not submitted"].append((learner, "no submission for this assignment"))
    for learner, result in assignment.results.items():
        for message in result.messages:
            # grade.py says which notebook was not submitted; the runner and grade.py both name "the time limit".
            kind = "not submitted" if NOT_SUBMITTED in message else "timed out" if "time limit" in message else "crashed"
            rows[kind].append((learner, message))
        notebooks, timed_out = defaultdict(list), {}
        for test in result.tests:
            notebooks[test.notebook].append(test.status)
            if test.status == FAILED and test.output.startswith(TOOK_LONGER):
                timed_out.setdefault(f"{test.notebook}: {test.part}", test.output)
        rows["timed out"] += [(learner, f"{part}: {message}") for part, message in timed_out.items()]
        for notebook, statuses in notebooks.items():
            if all(status == NOT_ATTEMPTED for status in statuses):
                rows["not attempted"].append((learner, f"{notebook}: no part attempted"))
    if not rows:
        return ["<h3>Who is stuck</h3><p>Every learner submitted and attempted every notebook, and every grading finished.</p>"]
    lines = ["<h3>Who is stuck</h3><table><tr><th>Learner</th><th>What</th><th>Why</th></tr>"]
    for kind in ("not submitted", "not attempted", "timed out", "crashed"):
        for learner, why in rows.get(kind, []):
            lines.append(f"<tr><td>{escape(learner)}</td><td>{kind}</td><td>{escape(_first_line(why))}</td></tr>")
    lines.append("</table>")
    return lines


def _timing(assignment: Assignment) -> list[str]:
    times: dict[str, list[tuple[float, str]]] = defaultdict(list)
    for learner, result in assignment.results.items():
        for notebook, seconds in result.seconds.items():
            times[notebook].append((seconds, learner))
    lines = ["<h3>Grading time per notebook</h3><table><tr><th>Notebook</th><th>Median</th><th>Slowest</th></tr>"]
    for notebook in sorted(times):
        seconds, slowest = max(times[notebook])
        median = statistics.median(s for s, _ in times[notebook])
        lines.append(f"<tr><td>{escape(notebook)}</td><td>{median:.1f} s</td><td>{seconds:.1f} s ({escape(slowest)})</td></tr>")
    lines.append("</table>")
    return lines


def _learners(assignment: Assignment, page: Path) -> list[str]:
    lines = ["<h3>Learners</h3><table><tr><th>Learner</th><th>Score</th><th>Parts pending</th><th>Safe for credit</th></tr>"]
    for learner, result in assignment.results.items():
        pending = sum(learner in part.outcomes["pending"] for part in assignment.parts.values())
        safe = "yes" if not result.not_safe_for_credit else f"no: {result.not_safe_for_credit}"
        lines.append(
            f"<tr><td>{_link(assignment.pages[learner], page, learner)}</td>"
            f"<td>{result.score:g} of {result.max_score:g}</td><td>{pending or ''}</td><td>{escape(safe)}</td></tr>"
        )
    lines.append("</table>")
    return lines


def _link(target: Path, page: Path, text: str) -> str:
    href = Path(os.path.relpath(target.absolute(), page.absolute().parent)).as_posix()
    return f'<a href="{escape(href)}">{escape(text)}</a>'


def _first_line(message: str, width: int = 240) -> str:
    line = next((line for line in message.splitlines() if line.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"


def _image(svg: str, alt: str) -> str:
    data = base64.b64encode(svg.encode()).decode()
    return f'<p><img src="data:image/svg+xml;base64,{data}" alt="{escape(alt)}"></p>'


def _svg(width: int, height: int, body: list[str]) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}"'
        f' font-family="system-ui, sans-serif" font-size="12">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, text: str, anchor: str = "start", **attributes) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attributes.items())
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{extra}>{escape(text)}</text>'


def _histogram(name: str, scores: list[float], max_score: float) -> tuple[str, str]:
    """Learners per score: a bar per whole point up to 30 points, else ten bins (the last one holds full marks)."""
    width = 1.0 if max_score <= 30 else max_score / 10
    bins = int(max_score) + 1 if max_score <= 30 else 10
    counts = [0] * bins
    for score in scores:
        counts[min(int(score / width + 1e-9), bins - 1)] += 1
    plot_w, plot_h, left, top = 560, 180, 40, 44
    bar, tallest = plot_w / bins, max(counts) or 1
    body = [_text(left, 18, f"{name}: learners per score", font_weight="bold")]
    for i, count in enumerate(counts):
        h, x = plot_h * count / tallest, left + i * bar
        body.append(f'<rect x="{x + 1:.1f}" y="{top + plot_h - h:.1f}" width="{bar - 2:.1f}" height="{h:.1f}" fill="#0072B2"/>')
        if count:
            body.append(_text(x + bar / 2, top + plot_h - h - 3, str(count), "middle"))
        label = f"{i:d}" if max_score <= 30 else f"{i * width:.3g}–{(i + 1) * width:.3g}"
        body.append(_text(x + bar / 2, top + plot_h + 15, label, "middle"))
    body.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{left + plot_w}" y2="{top + plot_h}" stroke="#444"/>')
    body.append(_text(left + plot_w / 2, top + plot_h + 32, "points", "middle"))
    full, zero = sum(s >= max_score - 1e-9 for s in scores), sum(s <= 1e-9 for s in scores)
    alt = (
        f"Histogram of the scores in {name}: {len(scores)} learners, median {statistics.median(scores):g} of"
        f" {max_score:g} points; {full} with full marks and {zero} with zero."
    )
    return _svg(left + plot_w + 20, top + plot_h + 42, body), alt


def _part_chart(name: str, parts: list[Part]) -> tuple[str, str]:
    """One bar per part, in notebook order, split into the shares of learners with each outcome."""
    label_w, plot_w, row, top = 300, 360, 24, 30
    body = [_text(0, 18, f"{name}: share of learners per part", font_weight="bold")]
    described = []
    for i, part in enumerate(parts):
        y = top + i * row
        total = sum(len(v) for v in part.outcomes.values()) or 1
        body.append(_text(label_w - 8, y + 15, _first_line(part.label, 45), "end"))
        x = label_w
        for outcome in OUTCOMES:
            share = len(part.outcomes[outcome]) / total
            if share:
                w = plot_w * share
                body.append(f'<rect x="{x:.1f}" y="{y + 2}" width="{w:.1f}" height="{row - 6}" fill="{COLOURS[outcome]}"/>')
                if w > 30:
                    body.append(_text(x + w / 2, y + 15, f"{share:.0%}", "middle", fill="#fff"))
                x += w
        shares = ", ".join(f"{len(part.outcomes[o]) / total:.0%} {o}" for o in OUTCOMES if part.outcomes[o])
        described.append(f"{part.label}: {shares}")
    legend_y = top + len(parts) * row + 12
    for i, outcome in enumerate(OUTCOMES):
        x = label_w + i * 90
        body.append(f'<rect x="{x}" y="{legend_y - 10}" width="12" height="12" fill="{COLOURS[outcome]}"/>')
        body.append(_text(x + 16, legend_y, outcome))
    alt = f"Share of learners with full, partial and zero points on each part of {name}, in notebook order: " + "; ".join(
        described
    )
    return _svg(label_w + plot_w + 20, legend_y + 12, body), alt + "."


REPORT_STYLE = """
table { border-collapse: collapse; margin: .5rem 0 1.5rem; } td, th { border-bottom: 1px solid #ddd; padding: .3rem .6rem;
text-align: left; vertical-align: top; } td ul { margin: 0; } img { max-width: 100%; }
"""
