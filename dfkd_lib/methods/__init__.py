"""DFKD methods: one short module each, all run by :func:`dfkd_lib.engine.distill`.

``build_method(name, **options)`` builds one by its registry name.
"""
from __future__ import annotations

from typing import Callable

from .base import Method, Step
from .baseline import AdversarialBNDistillation

METHODS: dict[str, Callable[..., Method]] = {
    "baseline": AdversarialBNDistillation,
}


def register_method(name: str):
    """Decorator adding a :class:`Method` class to the registry under ``name``."""
    def deco(cls):
        METHODS[name] = cls
        return cls
    return deco


def build_method(name: str, **options) -> Method:
    """Build a registered method; ``KeyError`` lists the known names."""
    if name not in METHODS:
        raise KeyError(f"unknown method {name!r}; known methods: {', '.join(sorted(METHODS))}")
    return METHODS[name](**options)


__all__ = ["Method", "Step", "AdversarialBNDistillation", "METHODS", "build_method", "register_method"]
from . import dfkd_fgvc  # noqa: E402,F401  registers "dfkd-fgvc"
from . import inversion  # noqa: E402,F401  registers "deepinversion", "adi", "zskd"
from . import reference  # noqa: E402,F401  registers "real-kd", "real-labels"
