"""DFKD methods: one short module each, all run by :func:`dfkd_lib.engine.distill`.

``build_method(name, **options)`` builds one by its registry name.
"""
from __future__ import annotations

from ..registry import Registry
from .base import Method, Step
from .baseline import AdversarialBNDistillation

METHODS: Registry = Registry("method", {"baseline": AdversarialBNDistillation})
METHODS.citations["baseline"] = ("Shao et al., ICCV 2023 (DFKD-FGVC), Table 3's baseline "
                                  "(Eq. 10-11 with beta = gamma = 0)")
#: Decorator adding a :class:`Method` class (or factory) to :data:`METHODS` under a name.
register_method = METHODS.register


def method_options(name: str) -> dict[str, object]:
    """The options of a registered method and their defaults (from its constructor's signature)."""
    import inspect

    return {k: p.default for k, p in inspect.signature(METHODS[name]).parameters.items()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k != "name"}


def check_options(name: str, options: dict) -> None:
    """Check ``options`` against the method's own before anything is built.

    Raises:
        KeyError: an unknown method. ValueError: an option the method does not have (the message lists its
        options and names the methods that do have it), or a value of the wrong type for a numeric or boolean
        option.
    """
    known = method_options(name)
    for key, value in options.items():
        if key not in known:
            owners = sorted(m for m in METHODS if key in method_options(m))
            where = f"; {key!r} is an option of {', '.join(owners)}" if owners else ""
            raise ValueError(f"method {name!r} has no option {key!r} (its options: {', '.join(known)}){where}")
        default = known[key]
        if isinstance(default, bool) and not isinstance(value, bool):
            raise ValueError(f"option {key!r} of {name!r} is true or false, got {value!r}")
        if isinstance(default, (int, float)) and not isinstance(default, bool) and (
                isinstance(value, bool) or not isinstance(value, (int, float))):
            raise ValueError(f"option {key!r} of {name!r} is a number, got {value!r}")


def describe_methods() -> list[dict]:
    """One row per registered method, for tables: ``name``, ``citation``, ``images`` (how the student's images
    are made, :attr:`Method.synthesis`), ``BN prior`` (whether the teacher's BN statistics shape them), ``t`` and
    ``k`` (its default steps per iteration; a run's ``DistillConfig`` may override them) and ``options`` (its
    other options with their defaults)."""
    rows = []
    for name in METHODS:
        m = build_method(name)
        opts = {k: v for k, v in method_options(name).items() if k not in ("generator_steps", "student_steps")}
        rows.append({"name": name, "citation": METHODS.citations.get(name, ""), "images": m.synthesis,
                     "BN prior": bool(m.uses_bn if m.bn_prior is None else m.bn_prior),
                     "t": m.generator_steps, "k": m.student_steps,
                     "options": ", ".join(f"{k}={v}" for k, v in opts.items())})
    return rows


def build_method(name: str, **options) -> Method:
    """Build a registered method after :func:`check_options`; ``KeyError`` lists the known names."""
    check_options(name, options)
    return METHODS[name](**options)


__all__ = ["Method", "Step", "AdversarialBNDistillation", "METHODS", "build_method", "check_options", "describe_methods",
           "method_options",
           "register_method"]
from . import dfkd_fgvc  # noqa: E402,F401  registers "dfkd-fgvc"
from . import inversion  # noqa: E402,F401  registers "deepinversion", "adi", "zskd"
from . import reference  # noqa: E402,F401  registers "real-kd", "real-labels"
from . import dfad  # noqa: E402,F401  registers "dfad"
from . import dafl  # noqa: E402,F401  registers "dafl"
from . import zskt  # noqa: E402,F401  registers "zskt"
from . import dfq  # noqa: E402,F401  registers "dfq"
from . import mad  # noqa: E402,F401  registers "mad"
from . import cmi  # noqa: E402,F401  registers "cmi"
from . import spaceshipnet  # noqa: E402,F401  registers "spaceshipnet"
