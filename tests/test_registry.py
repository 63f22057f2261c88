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


def test_describe_methods_lists_every_method_with_its_images_and_citation():
    from dfkd_lib.methods import METHODS, describe_methods

    rows = {r["name"]: r for r in describe_methods()}
    assert set(rows) == set(METHODS)
    assert all(r["citation"] and r["images"] for r in rows.values())
    assert rows["dfq"]["BN prior"] and rows["cmi"]["BN prior"] and not rows["dfad"]["BN prior"]
    assert "MomentumGeneratorSynthesizer" in rows["mad"]["images"] and "RealImages" in rows["real-kd"]["images"]
    assert (rows["zskt"]["t"], rows["zskt"]["k"]) == (1, 10) and "beta=250.0" in rows["zskt"]["options"]

