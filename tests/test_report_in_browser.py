"""The class report as an instructor opens it: loaded in headless Chromium, with the book's checks.

.venv/bin/python -m pytest -m browser tests/test_report_in_browser.py
"""

from __future__ import annotations

import pytest

from autograder.__main__ import main
from tests.helpers import load, served, write_graded_class

pytestmark = pytest.mark.browser

COLLECT = """
return {
  images: [...document.images].map(i => ({alt: i.getAttribute('alt'), loaded: i.complete && i.naturalWidth > 0})),
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
};
"""


def test_the_class_report_loads_with_its_figures_and_links(browser, tmp_path):
    "Does the report load with no console error, every figure drawn and described, and every learner's feedback one click away?"
    write_graded_class(tmp_path / "graded")
    assert main(["report", str(tmp_path / "graded"), "--out", str(tmp_path / "report.html")]) == 0
    with served(tmp_path) as base:
        errors, external = load(browser, base, "report.html")
        found = browser.execute_script(COLLECT)
        feedback = sorted({link for link in found["links"] if link.endswith("/feedback.html")})
        landed = []
        for link in feedback:
            browser.get(link)
            landed.append(browser.title)
    assert not errors and not external, f"console errors {errors}, fetched from outside {external}"
    assert len(found["images"]) == 4, "a histogram and a chart of parts per assignment (two assignments)"
    assert all(image["loaded"] for image in found["images"]), found["images"]
    assert all(len((image["alt"] or "").split()) > 8 for image in found["images"]), "every figure says what it shows"
    assert len(feedback) == 8 and all(title.startswith("Feedback: ") for title in landed), landed
