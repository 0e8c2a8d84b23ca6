"""The book as readers see it: every page of the table of contents, loaded in headless Chromium.

It checks the site that the book build left in ``_build/html``, so it runs after the
build (``make test`` does both, in that order) and is left out of the main pytest run:

    .venv/bin/python -m pytest -m browser tests/test_book_in_browser.py

The site is served on loopback and the browser is allowed to reach nothing else, so the
test needs no network. What the published book loads from CDNs (MathJax, the widget
renderer) is therefore not loaded here; the test lists it instead of failing on it.
Debian's ``chromium`` and ``chromium-driver`` drive the pages (``CHROMIUM_BIN`` and
``CHROMEDRIVER_BIN`` point elsewhere); Selenium is given both paths, so it never
tries to download a browser or a driver.
"""

from __future__ import annotations

import functools
import html.parser
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlsplit

import matplotlib.image
import pytest
import yaml

from autograder.paths import EXERCISES, ROOT
from tests.helpers import load, served

pytestmark = pytest.mark.browser

SITE = ROOT / "_build" / "html"
SCREENSHOTS = ROOT / "_build" / "screenshots"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
SOURCE_SUFFIXES = (".md", ".ipynb", ".rst")


@dataclass
class Page:
    """One page of the table of contents and what the browser found on it."""

    docname: str
    source: Path
    url: str = ""
    title: str = ""
    errors: list[str] = field(default_factory=list)
    links: list[str] = field(default_factory=list)
    images: list[dict] = field(default_factory=list)
    folded: list[dict] = field(default_factory=list)
    outputs: int = 0

    @property
    def is_notebook(self) -> bool:
        """A notebook page: an .ipynb file, or MyST Markdown with a kernel in its front matter."""
        if self.source.suffix == ".ipynb":
            return True
        text = self.source.read_text()
        return text.startswith("---") and "kernelspec:" in text.split("---", 2)[1]

    @property
    def is_exercise(self) -> bool:
        return self.source.suffix == ".ipynb" and self.source.is_relative_to(EXERCISES)

    @property
    def relpath(self) -> str:
        return self.source.relative_to(ROOT).as_posix()


def toc_pages() -> list[Page]:
    """Every page that _toc.yml lists, in reading order, read with Jupyter Book's own parser."""
    from sphinx_external_toc.parsing import parse_toc_yaml

    site_map = parse_toc_yaml(ROOT / "_toc.yml")
    docnames = list(site_map.keys())
    for pattern in sorted(site_map.globs()):
        docnames += sorted(
            p.relative_to(ROOT).with_suffix("").as_posix() for p in ROOT.glob(pattern) if p.suffix in SOURCE_SUFFIXES
        )
    pages = []
    for docname in docnames:
        source = next((ROOT / f"{docname}{s}" for s in SOURCE_SUFFIXES if (ROOT / f"{docname}{s}").is_file()), None)
        assert source is not None, f"_toc.yml lists {docname}, but there is no {docname}.md or .ipynb"
        pages.append(Page(docname, source))
    return pages


class _Ids(html.parser.HTMLParser):
    """The anchors a page offers: every id, and the names of old-style <a name> anchors."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs) -> None:
        attrs = dict(attrs)
        self.ids.update(v for k, v in attrs.items() if (k == "id" or (tag == "a" and k == "name")) and v)


def say(request, line: str) -> None:
    """Print past pytest's output capture: what was measured and where the screenshots are."""
    with request.config.pluginmanager.getplugin("capturemanager").global_and_fixture_disabled():
        print(f"\n[browser] {line}")


@pytest.fixture(scope="module")
def site() -> Path:
    if not (SITE / "index.html").is_file():
        pytest.fail(
            f"No built book in {SITE.relative_to(ROOT)}: build it first with `make book` (make test builds it before this test)."
        )
    return SITE


@pytest.fixture(scope="module")
def server(site):
    """The built site over HTTP on a free loopback port, as a reader's browser would fetch it."""
    with served(site) as base:
        yield base


# Folded content is hidden with visibility and a zero height, which checkVisibility()
# alone does not count as hidden.
VISIBLE = "const visible = el => el.checkVisibility({visibilityProperty: true, opacityProperty: true}) && el.getBoundingClientRect().height > 0;"

COLLECT = (
    VISIBLE
    + """
return {
  title: (document.querySelector('main h1') || document.querySelector('h1') || {textContent: ''}).textContent,
  links: [...document.querySelectorAll('a[href]')].map(a => a.href),
  images: [...document.images].map(i => ({src: i.currentSrc || i.src, alt: i.getAttribute('alt'), loaded: i.complete && i.naturalWidth > 0})),
  outputs: document.querySelectorAll('.cell_output').length,
  folded: [...document.querySelectorAll('.solution, .admonition.hint')].map(box => ({
    name: box.querySelector('.admonition-title') ? box.querySelector('.admonition-title').textContent.trim() : box.className,
    button: !!box.querySelector('.toggle-button'),
    hidden: [...box.children].filter(c => !c.classList.contains('admonition-title')).every(c => !visible(c)),
  })),
};
"""
)

UNFOLD = (
    VISIBLE
    + """
return [...document.querySelectorAll('.solution, .admonition.hint')].map(box => {
  const button = box.querySelector('.toggle-button');
  if (button) button.click();
  return [...box.children].filter(c => !c.classList.contains('admonition-title')).some(visible);
});
"""
)


@pytest.fixture(scope="module")
def pages(browser, server, request) -> list[Page]:
    """Every page of the table of contents, visited once in the browser, with what was found on it."""
    started, pages, external = time.perf_counter(), toc_pages(), set()
    missing = [p.docname for p in pages if not (SITE / f"{p.docname}.html").is_file()]
    assert not missing, f"pages in _toc.yml that the built site lacks (rebuild the book): {missing}"
    for page in pages:
        page.url = f"{server}{page.docname}.html"
        page.errors, blocked = load(browser, server, f"{page.docname}.html")
        external.update(blocked)
        found = browser.execute_script(COLLECT)
        page.title, page.links, page.images = found["title"].strip(), found["links"], found["images"]
        page.outputs, page.folded = found["outputs"], found["folded"]
        if page.folded:
            page.folded = [{**box, "opens": opened} for box, opened in zip(page.folded, browser.execute_script(UNFOLD))]
    seconds = time.perf_counter() - started
    say(request, f"{len(pages)} pages of _toc.yml loaded in {seconds:.1f} s (Chromium {browser.capabilities['browserVersion']})")
    if external:
        say(request, "not loaded, outside loopback (the published book loads them): " + ", ".join(sorted(external)))
    return pages


@pytest.fixture(scope="module")
def fetch(server):
    """GET a URL of the served site: (status, content type, body)."""

    @functools.cache
    def get(url: str) -> tuple[int, str, bytes]:
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                return response.status, response.headers.get_content_type(), response.read()
        except urllib.error.HTTPError as error:
            return error.code, "", b""

    return get


def test_every_page_loads_without_console_errors(pages):
    "Does every page in the table of contents load in Chromium with no error in the console?"
    failures = {p.docname: p.errors for p in pages if p.errors}
    assert not failures, f"console errors: {failures}"


def test_internal_links_resolve(pages, server, fetch):
    "Does every link between the book's pages lead to a file that exists, and to the anchor it names?"
    targets: dict[str, set[str]] = {}
    for page in pages:
        for link in page.links:
            if link.startswith(server):
                target, fragment = urldefrag(link)
                targets.setdefault(urlsplit(target)._replace(query="").geturl(), set()).add(unquote(fragment))
    broken = []
    for target, fragments in sorted(targets.items()):
        status, kind, body = fetch(target)
        if status != 200:
            broken.append(f"{target} (HTTP {status})")
        elif kind == "text/html" and fragments - {""}:
            ids = _Ids()
            ids.feed(body.decode())
            broken += [f"{target}#{f} (no such anchor)" for f in sorted(fragments - {""} - ids.ids)]
    assert targets, "no internal links found: the pages did not render"
    assert not broken, f"broken internal links: {broken}"


def test_images_load_and_carry_alt_text(pages):
    "Does every image on every page load, with alt text that describes it rather than its file name?"
    problems = []
    for page in pages:
        for image in page.images:
            name = image["src"].rsplit("/", 1)[-1]
            if not image["loaded"]:
                problems.append(f"{page.docname}: {name} did not load")
            alt = (image["alt"] or "").strip()
            if not alt or name in alt or re.search(r"\.(png|jpe?g|svg|gif)$", alt):
                problems.append(f"{page.docname}: {name} has no alt text (give the figure's cell `mystnb: image: alt:`)")
    assert any(p.images for p in pages), "no image on any page: the figures did not render"
    assert not problems, problems


def test_search_finds_a_chapter(pages, browser, server):
    "Does the search page find the first chapter by the longest word of its title?"
    from selenium.webdriver.support.ui import WebDriverWait

    chapter = next(p for p in pages if p.docname.startswith("chapters/"))
    term = max(re.findall(r"[A-Za-z]{5,}", chapter.title), key=len)
    errors, _ = load(browser, server, f"search.html?q={term}")
    results = "#search-results ul.search li a"
    WebDriverWait(browser, 30).until(
        lambda d: d.execute_script(
            f"return document.querySelectorAll('{results}').length > 0 || /finished/i.test(document.body.innerText)"
        )
    )
    found = [
        urlsplit(href).path
        for href in browser.execute_script(f"return [...document.querySelectorAll('{results}')].map(a => a.href)")
    ]
    assert not errors, f"console errors on the search page: {errors}"
    assert f"/{chapter.docname}.html" in found, f"searching {term!r} did not find {chapter.docname}; it found {found}"


def test_every_page_offers_its_source_for_download(pages, server, fetch):
    "Can a reader download every page as its source, and every notebook page as .ipynb?"
    problems = []
    for page in pages:
        wanted = {f"{server}_sources/{page.docname}{page.source.suffix}"}
        if page.is_notebook:
            wanted.add(f"{server}_sources/{page.docname}.ipynb")
        for url in sorted(wanted):
            if url not in page.links:
                problems.append(f"{page.docname}: no download link to {url.removeprefix(server)}")
            elif fetch(url)[0] != 200:
                problems.append(f"{page.docname}: {url.removeprefix(server)} does not download")
    assert not problems, problems


def launch_links(page: Page) -> dict[str, list[str]]:
    """The page's launch links by service, for each service that _config.yml turns on."""
    services = {
        k.removesuffix("_url"): v.rstrip("/") for k, v in CONFIG.get("launch_buttons", {}).items() if k.endswith("_url") and v
    }
    return {name: [link for link in page.links if link.startswith(url + "/")] for name, url in services.items()}


def test_launch_buttons_open_the_page_in_the_repository(pages):
    "Does every notebook page launch on each configured service, opening that page's file in the configured repository?"
    repository = CONFIG["repository"]["url"].rstrip("/").removeprefix("https://github.com/")
    problems = []
    for page in (p for p in pages if p.is_notebook):
        for service, links in launch_links(page).items():
            # Colab opens notebooks only: a Markdown lesson has no Colab button (_ext/course_book.py).
            if service == "colab" and page.source.suffix != ".ipynb":
                problems += [f"{page.docname}: a Colab link to a file Colab cannot open: {link}" for link in links]
                continue
            if not links:
                problems.append(f"{page.docname}: no {service} launch link")
            for link in links:
                if repository not in link or page.relpath not in unquote(link):
                    problems.append(f"{page.docname}: {service} link does not open {repository}/{page.relpath}: {link}")
    assert repository, "_config.yml names no repository"
    assert not problems, problems


def test_exercise_pages_link_to_their_learner_notebook(pages, server, fetch):
    "Does each exercise page show the learner notebook unexecuted, and let a reader download and launch exactly that file?"
    exercises = [p for p in pages if p.is_exercise]
    assert exercises, "no exercise notebook in _toc.yml"
    for page in exercises:
        status, _, body = fetch(f"{server}_sources/{page.docname}.ipynb")
        assert status == 200 and body == page.source.read_bytes(), (
            f"{page.docname}: the download is not {page.relpath} as committed"
        )
        assert page.outputs == 0, (
            f"{page.docname}: the book shows {page.outputs} cell outputs; exercise pages must not be executed"
        )
        launches = launch_links(page)
        assert launches.get("colab") and launches.get("binderhub"), f"{page.docname}: no Colab or Binder launch link: {launches}"


def test_solutions_and_hints_are_folded_away(pages):
    "Are the lessons' solutions and hints folded away until the reader clicks them open?"
    boxes = [(p.docname, box) for p in pages for box in p.folded]
    assert boxes, "no solution or hint on any page: sphinx-exercise's solutions did not render"
    shown = [f"{doc}: {box['name']}" for doc, box in boxes if not (box["button"] and box["hidden"])]
    stuck = [f"{doc}: {box['name']}" for doc, box in boxes if box["button"] and not box["opens"]]
    assert not shown, f"shown outright (give them `:class: dropdown`): {shown}"
    assert not stuck, f"folded, but the button does not open them: {stuck}"


def test_home_page_and_a_chapter_render(pages, browser, server, request):
    "Does the site's address open the home page, and do it and the first chapter render with content (screenshots saved)?"
    from selenium.webdriver.support.ui import WebDriverWait

    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    home, chapter = pages[0], next(p for p in pages if p.docname.startswith("chapters/"))
    for name, page in {"home": home, chapter.docname.replace("/", "-"): chapter}.items():
        if page is home:
            # A reader arrives at the site's address; Jupyter Book's index.html redirects to the root page.
            load(browser, server, "")
            WebDriverWait(browser, 30).until(lambda d, url=page.url: d.current_url == url)
        else:
            load(browser, server, f"{page.docname}.html")
        target = SCREENSHOTS / f"{name}.png"
        assert browser.save_screenshot(str(target)), f"could not save {target}"
        pixels = matplotlib.image.imread(target)
        # A blank or unstyled page is nearly one colour; a rendered page has text, a sidebar and a header.
        assert pixels.std() > 0.05, f"{page.docname} rendered as a nearly blank page: see {target}"
        say(request, f"screenshot of {page.docname}: {target.relative_to(ROOT)}")
