"""The book's build and publishing settings: what makes a broken book fail before a reader sees it."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from autograder.paths import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))


def book_build_flags() -> list[str]:
    """The flags that `make book` and `make test` pass to `jupyter-book build .`."""
    line = re.search(r"^BUILD_BOOK := \S+/jupyter-book build \. (.*)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert line, "the Makefile no longer defines BUILD_BOOK as `.../jupyter-book build . FLAGS`"
    return line.group(1).split()


def one_page_book(folder: Path, page: str) -> Path:
    """A book with the course's own configuration and one page."""
    folder.mkdir(parents=True)
    for name in ("_config.yml", "_ext", "_static"):
        source = ROOT / name
        (shutil.copytree if source.is_dir() else shutil.copy)(source, folder / name)
    (folder / "_toc.yml").write_text("format: jb-book\nroot: intro\n")
    (folder / "intro.md").write_text(f"(intro)=\n# A page\n\n{page}\n")
    return folder


# One of each kind of reference a lesson uses: a label, a page, a Markdown link to a page.
BROKEN = {
    "a-label-that-does-not-exist": "{ref}`a-label-that-does-not-exist`",
    "a_page_that_does_not_exist": "{doc}`a_page_that_does_not_exist`",
    "another_page_that_does_not_exist": "[a link](another_page_that_does_not_exist.md)",
}


@pytest.mark.slow
def test_a_broken_cross_reference_fails_the_build(tmp_path):
    "Does the Makefile's book build fail, naming each target, when cross-references point nowhere?"
    jupyter_book = Path(sys.executable).with_name("jupyter-book")
    book = one_page_book(tmp_path / "book", "See {ref}`intro`.")
    build = [str(jupyter_book), "build", "--path-output", str(tmp_path / "out"), str(book), *book_build_flags()]

    good = subprocess.run(build, capture_output=True, text=True, timeout=300)
    assert good.returncode == 0, f"the one-page book does not build even without a broken reference:\n{good.stdout}{good.stderr}"

    (book / "intro.md").write_text("(intro)=\n# A page\n\n" + "\n\n".join(BROKEN.values()) + "\n")
    broken = subprocess.run(build, capture_output=True, text=True, timeout=300)
    output = broken.stdout + broken.stderr
    assert broken.returncode != 0, f"the build passed with broken references:\n{output}"
    unnamed = [target for target in BROKEN if target not in output]
    assert not unnamed, f"the build failed without naming {unnamed}:\n{output}"


def test_lessons_that_draw_figures_use_the_course_style():
    "Does every lesson that draws a matplotlib figure first set the book's one figure style?"
    drawing = [p for p in sorted((ROOT / "chapters").rglob("*.md")) if re.search(r"\bplt\.|\.subplots\(", p.read_text())]
    unstyled = [p.relative_to(ROOT).as_posix() for p in drawing if "use_course_style()" not in p.read_text()]
    assert drawing, "no lesson draws a figure: the pattern no longer matches how chapters plot"
    assert not unstyled, f"call booktools.plotting.use_course_style() in the hidden preamble of: {unstyled}"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_execution_cache_is_restored_only_on_an_exact_key(path):
    "Does each workflow restore executed lessons only for the same pages, course code and pins, never a stale cache?"
    workflow = yaml.safe_load(path.read_text())
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    assert steps, f"{path.name} has no steps"
    caches = [s for s in steps if s.get("uses", "").startswith("actions/cache@") and ".jupyter_cache" in s["with"]["path"]]
    for step in caches:
        key = step["with"]["key"]
        assert "restore-keys" not in step["with"], f"{path.name}: restore-keys would bring back outputs of older course code"
        for source in ("chapters/", "autograder/", "casestudy/", "booktools/", "requirements.txt"):
            assert source in key, f"{path.name}: the jupyter-cache key does not cover {source}: {key}"
    builds_the_book = any(command in (s.get("run") or "") for s in steps for command in (".ci/run", "make test", "make book"))
    assert caches or not builds_the_book, (
        f"{path.name} builds the book without the execution cache: every run re-executes every lesson"
    )


def test_the_publish_workflow_builds_with_the_readme_command_and_deploys_the_site():
    "Does the Pages workflow build with `make book` from main and deploy exactly the built site?"
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "publish.yml").read_text())
    # PyYAML reads the bare key `on` as True.
    triggers = workflow.get("on", workflow.get(True))
    steps = [step for job in workflow["jobs"].values() for step in job.get("steps", [])]
    assert triggers["push"]["branches"] == ["main"]
    assert any(s.get("run") == "make book" for s in steps), "the site must be built by the README's command"
    upload = next(s for s in steps if s.get("uses", "").startswith("actions/upload-pages-artifact@"))
    assert upload["with"]["path"] == "_build/html"
    assert any(s.get("uses", "").startswith("actions/deploy-pages@") for s in steps)
