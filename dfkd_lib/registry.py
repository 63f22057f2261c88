"""Names for the building blocks: one :class:`Registry` kind for methods, classifiers and generators."""
from __future__ import annotations

from typing import Callable


class Registry(dict):
    """A mapping from names to factories (classes or functions) of one ``kind`` (e.g. ``"method"``).

    Use :meth:`register` as a decorator to add one and ``registry[name]`` to look one up: an unknown name raises
    a ``KeyError`` that lists the known names. Otherwise a plain dict (``"dfkd-fgvc" in METHODS``).
    """

    def __init__(self, kind: str, entries: dict[str, Callable] | None = None):
        super().__init__(entries or {})
        self.kind = kind
        #: name -> the paper (authors, venue, year) an entry implements, where one was given at registration
        self.citations: dict[str, str] = {}

    def register(self, name: str, factory: Callable | None = None, *, citation: str | None = None):
        """Add ``factory`` under ``name`` (with the ``citation`` of its paper); without ``factory``, a decorator
        that adds what it decorates."""
        if citation is not None:
            self.citations[name] = citation
        if factory is not None:
            self[name] = factory
            return factory

        def deco(f):
            self[name] = f
            return f
        return deco

    def __missing__(self, name: str):
        """``registry[name]`` of an unknown name: a ``KeyError`` that lists the known names."""
        raise KeyError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(sorted(self))}")
