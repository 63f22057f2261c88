"""Every shipped teacher still scores its recorded accuracy on the real test split."""
import json

import pytest

from dfkd_lib.checkpoint import sha256
from dfkd_lib.teachers import ASSETS, evaluate, load_teacher, real_test_loader

from conftest import needs_fmnist

SHIPPED = sorted(p.with_suffix(".pt") for p in ASSETS.glob("*.json"))


def test_a_teacher_is_shipped():
    assert any(p.name.startswith("fashion-mnist_") for p in SHIPPED)


@needs_fmnist
@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_teacher_accuracy(path):
    manifest = json.loads(path.with_suffix(".json").read_text())
    assert sha256(path) == manifest["sha256"], "checkpoint file differs from its manifest"
    model, _ = load_teacher(path)
    acc = evaluate(model, real_test_loader(manifest["dataset"]))
    assert acc == pytest.approx(manifest["test_accuracy"], abs=2e-3)
    if manifest["dataset"] == "fashion-mnist":
        assert acc >= 0.92
