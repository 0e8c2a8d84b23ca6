"""The instructor's class report, and what a regrade changed."""

import base64
import csv
import html.parser
import json
import re
import shutil
from pathlib import Path

import pytest

from autograder.__main__ import main
from autograder.report import mistake
from autograder.results import read_graded
from autograder.signing import load_key
from tests.helpers import mixed_class, write_graded_class


class Page(html.parser.HTMLParser):
    """What a report shows: its images (alt text, SVG), its table rows as text, its links."""

    def __init__(self, text: str):
        super().__init__()
        self.images, self.rows, self.links, self._row, self._cell = [], [], [], None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "img":
            self.images.append((attrs.get("alt", ""), base64.b64decode(attrs["src"].split(",", 1)[1]).decode()))
        elif tag == "a":
            self.links.append(attrs["href"])
        elif tag == "tr":
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            self.rows.append(self._row)
            self._row = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def test_one_mistake_is_one_group_whatever_its_numbers_names_and_paths():
    "Do messages that differ only by numbers, quoted values, paths and the learner's name fall into one group, and others not?"
    same = [
        ("ann", "double(-1) should be -2, got 2"),
        ("bob", "double(-7) should be -14, got 14.5"),
        ("cy", "read 'cards.parquet' from /tmp/cy/data/x.parquet for cy: 3 rows, expected 1e3"),
        ("dee", 'read "cards.csv" from /home/dee/x.parquet for dee: 12 rows, expected 2.5E+2'),
    ]
    assert mistake(*reversed(same[0])) == mistake(*reversed(same[1])) == "double(N) should be N, got N"
    assert mistake(same[2][1], "cy") == mistake(same[3][1], "dee") == "read '…' from PATH for NAME: N rows, expected N"
    assert mistake("halve(4) should be 2") != mistake("double(4) should be 2")


def test_the_report_shows_parts_failures_who_is_stuck_and_times(tmp_path, capsys):
    "On a merged class with a pending part and damaged files: are outcomes, grouped failures, the stuck and the times right?"
    graded = tmp_path / "graded"
    write_graded_class(graded)
    (graded / "zed" / "numbers").mkdir(parents=True)
    (graded / "zed" / "numbers" / "results.json").write_text('{"score": 6, "extra_da')  # cut short
    (graded / "yan" / "numbers").mkdir(parents=True)
    (graded / "yan" / "numbers" / "results.json").write_text('{"score": 6, "max_score": 6}')  # another tool's
    forged = graded / "bob" / "numbers" / "results.json"
    payload = json.loads(forged.read_text())
    payload["extra_data"]["tests"][2].update(score=1.0, status="passed")
    (graded / "fay" / "numbers").mkdir(parents=True)
    (graded / "fay" / "numbers" / "results.json").write_text(json.dumps(payload).replace('"bob"', '"fay"'))

    assert main(["report", str(graded), "--out", str(tmp_path / "report.html")]) == 0
    err = capsys.readouterr().err
    for name in ("zed", "yan", "fay"):
        assert f"{graded / name / 'numbers' / 'results.json'}" in err, f"{name}'s file is not reported"
    page = Page((tmp_path / "report.html").read_text())
    rows = {row[0]: row for row in page.rows}

    # Parts in notebook order; bob's essay pending, not zero; cy's and dee's negative doubles one mistake of two learners.
    assert [r[0] for r in page.rows if r[0].startswith("numbers: ")] == ["numbers: double", "numbers: halve", "numbers: essay"]
    assert rows["numbers: double"][1] == "2 / 2 / 0 / 0" and rows["numbers: halve"][1] == "2 / 0 / 2 / 0"
    assert rows["numbers: essay"][1] == "3 / 0 / 0 / 1"
    assert "2: double(-1) should be -2, got 2 (e.g. cy)" in rows["numbers: double"][2]
    numbers_alt = next(alt for alt, _ in page.images if alt.startswith("Share of learners") and "numbers" in alt)
    assert "numbers: essay: 75% full, 25% pending" in numbers_alt
    histogram = next(alt for alt, _ in page.images if alt.startswith("Histogram of the scores in numbers"))
    assert "4 learners, median 4.5 of 6 points; 1 with full marks and 0 with zero" in histogram

    stuck = [tuple(r) for r in page.rows if len(r) == 3 and r[1] in ("not submitted", "not attempted", "timed out", "crashed")]
    assert ("eve", "not submitted", "no submission for this assignment") in stuck
    assert ("dee", "not submitted", "no submission for this assignment") in stuck
    assert any(r[0] == "cy" and r[1] == "timed out" and r[2].startswith("numbers: halve: took longer than 3 s") for r in stuck)
    assert rows["numbers"][1:] == ["1.8 s", "9.0 s (cy)"]  # median of 1.0, 1.5, 2.0, 9.0
    assert "not on a public site" in (tmp_path / "report.html").read_text()

    # Each learner's row links to their own feedback page, relative to the report.
    assert "graded/bob/numbers/feedback.html" in page.links
    assert all((tmp_path / link).is_file() for link in page.links)


@pytest.mark.slow
def test_the_report_of_the_benchmarks_class_agrees_with_the_class_sheet(tmp_path):
    "Graded with --out and --csv, does the benchmark's mixed class get a report whose numbers are the class sheet's?"
    submitted, graded, sheet = tmp_path / "submitted", tmp_path / "graded", tmp_path / "grades.csv"
    mixed_class(submitted, students=10)
    args = ["grade", str(submitted), "--out", str(graded), "--csv", str(sheet), "--workers", "2", "--test-timeout", "3"]
    assert main(args) == 0
    with sheet.open() as f:
        scores = {row["student"]: float(row["score"]) for row in csv.DictReader(f)}
    page = Page((tmp_path / "report.html").read_text())

    learners = {row[0]: row[1] for row in page.rows if len(row) == 4 and row[1].endswith(" of 22")}
    assert {name: float(score.split()[0]) for name, score in learners.items()} == scores
    histogram = next(alt for alt, _ in page.images if alt.startswith("Histogram"))
    full, zero = sum(s == 22 for s in scores.values()), sum(s == 0 for s in scores.values())
    assert f"{len(scores)} learners" in histogram and f"{full} with full marks and {zero} with zero" in histogram
    for row in page.rows:
        if re.fullmatch(r"\d+ / \d+ / \d+ / \d+", row[1] if len(row) > 1 else ""):
            assert sum(map(int, row[1].split(" / "))) == len(scores), f"{row[0]}: not every learner counted"

    stuck = {(row[0].split("-")[0], row[1]) for row in page.rows if len(row) == 3}
    assert ("untouched", "not attempted") in stuck and ("broken", "crashed") in stuck and ("looping", "timed out") in stuck
    timing = {row[0]: row for row in page.rows if row[0] in ("warehouse_queries", "training_data")}
    assert set(timing) == {"warehouse_queries", "training_data"}


def test_a_regrade_says_whose_score_changed_and_on_which_parts(course, tmp_path, capsys):
    "After a hidden test is fixed, does the rerun print and record whose score moved, by how much and on which part?"
    hidden, submitted = course
    out = tmp_path / "out"
    command = ["grade", str(submitted), "--hidden-tests", str(hidden), "--out", str(out)]
    assert main(command) == 0
    assert "changed score" not in capsys.readouterr().out
    test_file = hidden / "numbers" / "test_numbers.py"
    test_file.write_text(test_file.read_text().replace("learner.halve(4) == 2", "learner.halve(4) == 4"))

    assert main(command) == 0
    printed = capsys.readouterr().out
    assert "3 submission(s) changed score" in printed
    assert "ann / numbers: 4 -> 3 (-1; numbers: halve 1 -> 0)" in printed
    assert "bob / numbers: 3 -> 4 (+1; numbers: halve 0 -> 1)" in printed and "dee /" not in printed
    with (out / "score-changes.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert sorted((r["student"], r["part"], r["before"], r["after"]) for r in rows) == [
        ("ann", "halve", "1.0", "0.0"),
        ("bob", "halve", "0.0", "1.0"),
        ("cy", "halve", "1.0", "0.0"),
    ]
    assert main([*command, "--force"]) == 0
    assert "changed score" not in capsys.readouterr().out, "an unchanged regrade reports no change"


def test_results_record_each_notebooks_grading_time(course, tmp_path):
    "Does each learner's results.json record how long each notebook took to grade?"
    hidden, submitted = course
    main(["grade", str(submitted), "--hidden-tests", str(hidden), "--out", str(tmp_path / "out")])
    results, problems = read_graded(tmp_path / "out", load_key())
    assert not problems and len(results) == 4
    assert all(set(r.seconds) == {"numbers"} and 0 < r.seconds["numbers"] < 60 for r in results.values())


def test_a_report_of_nothing_says_so(tmp_path, capsys):
    "Is a folder that is not a graded class refused with a message?"
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "not a folder of graded results" in capsys.readouterr().err
    Path(tmp_path / "empty").mkdir()
    assert main(["report", str(tmp_path / "empty")]) == 0
    assert "0 learners" in (tmp_path / "empty" / "report.html").read_text()


def test_a_class_graded_in_shards_is_reported_whole_once_merged(course, tmp_path):
    "Graded in two shards on two 'machines' and the folders merged, does the report count the whole class?"
    hidden, submitted = course
    for shard in (1, 2):
        args = ["grade", str(submitted), "--hidden-tests", str(hidden), "--out", str(tmp_path / f"machine{shard}")]
        assert main([*args, "--shard", f"{shard}/2"]) == 0
        shutil.copytree(tmp_path / f"machine{shard}", tmp_path / "merged", dirs_exist_ok=True)
    assert main(["report", str(tmp_path / "merged")]) == 0
    page = Page((tmp_path / "merged" / "report.html").read_text())
    learners = {row[0]: row[1] for row in page.rows if len(row) == 4 and row[1].endswith(" of 4")}
    assert learners == {"ann": "4 of 4", "bob": "3 of 4", "cy": "4 of 4", "dee": "2 of 4"}
