"""Sphinx extension: each page's ``<script>`` tags without duplicates.

Sphinx 7.x (the series Jupyter Book 1 runs on) writes an inline script twice when an extension adds it with
``app.add_js_file(None, body=...)`` after the builder has started: once as given, and once more when
``prepare_writing`` re-adds the registered scripts with the file name ``''`` instead of ``None``, which its
duplicate check treats as a different script (fixed upstream by sphinx-doc/sphinx#13402, Sphinx 8.2).
sphinx-thebe's ``const THEBE_JS_URL = ...`` is such a script, so every page logged
``Uncaught SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``; sphinx-togglebutton's
``var togglebuttonSelector = ...`` was written twice too.

This extension runs after the other ``html-page-context`` handlers and keeps the first of scripts that are
equal up to that ``None``/``''`` difference (same file or inline body, same attributes).
"""
from __future__ import annotations

from typing import Any


def _key(script: Any) -> tuple:
    """What makes two page scripts the same: file name (``None`` and ``''`` alike), priority, attributes."""
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (str(filename), getattr(script, "priority", None), tuple(sorted(attributes.items())))


def drop_duplicate_scripts(app, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Replace ``context["script_files"]`` by its scripts in order, each once."""
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app):
    # Priority 900: after the handlers of myst-nb, the theme and sphinx.ext.mathjax (default 500) add theirs.
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
