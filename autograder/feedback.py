"""Feedback for one learner as a self-contained HTML page: what passed, what failed and why.

It reads like the self-check in the notebook, for every test: a line per test under
its notebook and part, the points, and for each test that failed the reason addressed
to the learner. No scripts, no external styles: it opens from a file, an LMS or an
e-mail attachment.
"""

from __future__ import annotations

from html import escape
from itertools import groupby
from pathlib import Path

from autograder.results import NOT_ATTEMPTED, PASSED, PENDING, SubmissionResult, write_atomically

STYLE = """
body { font: 15px/1.5 system-ui, sans-serif; max-width: 60rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
h1 { font-size: 1.4rem; } h2 { font-size: 1.15rem; margin-top: 2rem; } h3 { font-size: 1rem; margin-bottom: .3rem; }
.score { font-size: 1.1rem; } .note { background: #fff4d6; padding: .5rem .8rem; border-radius: 4px; }
ul { list-style: none; padding-left: 0; } li { margin: .25rem 0; }
.passed::before { content: "\\2713  "; color: #009E73; font-weight: bold; }
.failed::before { content: "\\2717  "; color: #D55E00; font-weight: bold; }
.todo::before { content: "\\2013  "; color: #777; font-weight: bold; }
.why { display: block; margin-left: 1.6rem; color: #555; white-space: pre-wrap; }
.points { color: #555; font-variant-numeric: tabular-nums; }
"""


def feedback_html(result: SubmissionResult) -> str:
    """The page for one submission."""
    lines = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Feedback: {escape(result.assignment)}</title><style>{STYLE}</style></head><body>",
        f"<h1>{escape(result.assignment)}: feedback for {escape(result.student)}</h1>",
        f'<p class="score">Score: <strong>{result.score:g}</strong> of {result.max_score:g} points</p>',
    ]
    lines += [f'<p class="note">{escape(message)}</p>' for message in result.messages]
    for notebook, tests in groupby(result.tests, key=lambda t: t.notebook):
        tests = list(tests)
        lines.append(f"<h2>{escape(notebook or result.assignment)}.ipynb</h2>")
        for part, part_tests in groupby(tests, key=lambda t: t.part):
            part_tests = list(part_tests)
            earned, possible = sum(t.score for t in part_tests), sum(t.max_score for t in part_tests)
            lines.append(f'<h3>{escape(part)} <span class="points">({earned:g} of {possible:g} points)</span></h3><ul>')
            for test in part_tests:
                status = "passed" if test.status == PASSED else "todo" if test.status in (NOT_ATTEMPTED, PENDING) else "failed"
                shown = test.output and (test.status != PASSED or test.manual)  # a person's comment, even on full marks
                why = f'<span class="why">{escape(test.output)}</span>' if shown else ""
                lines.append(
                    f'<li class="{status}">{escape(test.name)} <span class="points">{test.score:g}/{test.max_score:g}</span>{why}</li>'
                )
            lines.append("</ul>")
    lines.append("</body></html>")
    return "\n".join(lines) + "\n"


def write_feedback(result: SubmissionResult, path: Path) -> None:
    write_atomically(Path(path), feedback_html(result))
