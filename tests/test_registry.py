import pytest

from dfkd_lib.methods import METHODS, register_method
from dfkd_lib.models import CLASSIFIERS, GENERATORS, build_generator
from dfkd_lib.registry import Registry


def test_registry_adds_by_decorator_or_call_and_lists_names_when_unknown():
    r = Registry("widget", {"a": int})
    assert r.register("b")(float) is float and r.register("c", str) is str
    assert r["b"] is float and set(r) == {"a", "b", "c"}
    with pytest.raises(KeyError, match="unknown widget 'd'; known widgets: a, b, c"):
        r["d"]


def test_the_three_registries_are_one_kind(monkeypatch):
    assert all(isinstance(r, Registry) for r in (METHODS, CLASSIFIERS, GENERATORS))
    monkeypatch.setitem(METHODS, "x", None)  # a plain dict underneath
    with pytest.raises(KeyError, match="unknown generator 'gan'; known generators: attention, dcgan"):
        build_generator("gan", None)
    assert register_method.__self__ is METHODS


def test_every_method_is_registered_with_its_citation():
    assert set(METHODS.citations) == set(METHODS)
    assert "ICCV 2023" in METHODS.citations["dfkd-fgvc"] and "NeurIPS 2019" in METHODS.citations["zskt"]
