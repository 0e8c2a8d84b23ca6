"""Two fixes to what Jupyter Book 1 puts on every page, so readers meet no broken button or script.

Loaded through ``sphinx: local_extensions`` in ``_config.yml``. Both run on Sphinx's
``html-page-context`` event, after the book theme has filled the page's context (its
handlers run at priority 501), and change only that page's context.
"""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

AFTER_THE_BOOK_THEME = 502


def keep_colab_for_notebooks(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    """Drop the Colab launch button where it would open a file Colab cannot read.

    Colab opens ``.ipynb`` files only, but the theme offers it on every notebook page,
    lessons written as MyST Markdown included: there Colab answers with an error. Binder
    and JupyterHub open the Markdown lesson as a notebook (jupytext), so they stay.
    """
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            group["buttons"] = [b for b in group["buttons"] if b.get("text") != "Colab" or b["url"].endswith(".ipynb")]
    context["header_buttons"] = [
        g for g in context.get("header_buttons", []) if g.get("label") != "launch-buttons" or g["buttons"]
    ]


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree) -> None:
    """Write each inline script once.

    Sphinx 7.4 keeps an inline script that an extension adds after the builder starts
    (sphinx-thebe's ``const THEBE_JS_URL``, sphinx-togglebutton's selector) twice: once
    with no file name and once with an empty one, which it does not see as equal. The
    second ``const`` declaration is a SyntaxError in every reader's console.
    """
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = (script.filename or "", script.priority, tuple(sorted(script.attributes.items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("html-page-context", keep_colab_for_notebooks, priority=AFTER_THE_BOOK_THEME)
    app.connect("html-page-context", drop_duplicate_scripts, priority=AFTER_THE_BOOK_THEME)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
