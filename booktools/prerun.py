"""Run the lessons that measure no speed ahead of the book build: ``python -m booktools.prerun``.

The book executes every lesson, one after the other, and that is most of its build
time. A lesson that times something (a throughput, a latency, a speed-up) has to run
alone, on a quiet machine, or its figures are wrong; the others only compute, and can
run while the machine does other work. This runs those others ahead of the build,
``--jobs`` at a time, and stores each executed page in the build's execution cache
(``_build/.jupyter_cache``) exactly as the build would: same reader, same cache key
(the code cells and the kernel), so the build finds them there and runs only the
lessons that measure speed. Nothing here decides what a page shows: a page that fails
is left out of the cache, and the build runs it again and reports the error.

``make book`` and ``make test`` run it two pages at a time before the build. (Beside the
test suite instead, it slowed the tests by more than it saved: two cores are busy then.)
"""

from __future__ import annotations

import argparse
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from contextlib import suppress
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "_build" / ".jupyter_cache"  # where `jupyter-book build .` keeps executed pages
CELL_TIMEOUT = 300  # seconds, as _config.yml's execute.timeout
# A page whose code reads a clock measures something: it runs in the build, alone.
MEASURES_TIME = re.compile(r"perf_counter|time\.monotonic|timeit|time\.time\(")


def lesson_pages() -> list[Path]:
    """The book's Markdown pages that have code to run."""
    return sorted(p for p in ROOT.glob("chapters/*/*.md") if "```{code-cell}" in p.read_text())


def read_page(page: Path) -> nbformat.NotebookNode:
    """The page as the book build reads it (myst-nb's reader): the same cache key."""
    from myst_nb.core.read import read_myst_markdown_notebook

    return read_myst_markdown_notebook(page.read_text(), add_source_map=True, path=str(page))


def execute(page: Path) -> tuple[Path, nbformat.NotebookNode | None, float, str]:
    """Run the page in its own folder, as the build would.

    Returns (page, the executed notebook or None if it failed, seconds, the error).
    """
    from jupyter_cache.executors.utils import single_nb_execution

    notebook = read_page(page)
    result = single_nb_execution(
        notebook, cwd=str(page.parent), timeout=CELL_TIMEOUT, allow_errors=False
    )
    if result.err is not None:
        return page, None, result.time, f"{type(result.err).__name__}: {str(result.err)[-300:]}"
    return page, notebook, result.time, ""


def say(line: str) -> None:
    print(f"prerun: {line}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--jobs", type=int, default=1, help="pages run at once (default: %(default)s)"
    )
    args = parser.parse_args(argv)

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(CACHE))
    todo = []
    for page in lesson_pages():
        notebook = read_page(page)
        if any(MEASURES_TIME.search(c.source) for c in notebook.cells if c.cell_type == "code"):
            continue
        with suppress(KeyError):
            cache.match_cache_notebook(notebook)
            continue  # executed before, and unchanged since
        todo.append(page)
    say(f"{len(todo)} lessons that measure no speed, {args.jobs} at a time")
    # Only this process writes the cache (an SQLite file); the pages run in worker processes.
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for page, notebook, seconds, error in pool.map(execute, todo):
            name = page.relative_to(ROOT)
            if notebook is None:
                say(f"{name} failed ({error}); the book build will run it again")
                continue
            bundle = CacheBundleIn(notebook, str(page), data={"execution_seconds": seconds})
            cache.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
            say(f"{name} in {seconds:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
