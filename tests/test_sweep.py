import json

import pytest

from dfkd_lib.sweep import load_spec, planned_runs, result_path


def test_planned_runs_merge_common_and_variant_options(tmp_path):
    spec = {"name": "s", "datasets": ["fashion-mnist", "fashion-mnist-upper"], "seeds": [0, 1],
            "common": {"student": "resnet18", "method_options": {"alpha": 0.3}, "config": {"epochs": 3}},
            "variants": {"a": {"method": "baseline"},
                         "b": {"method": "dfkd-fgvc", "method_options": {"beta": 10}, "config": {"epochs": 4}}}}
    p = tmp_path / "s.json"
    p.write_text(json.dumps(spec))
    runs = planned_runs(p)
    assert len(runs) == 2 * 2 * 2
    b = [r for r in runs if r["variant"] == "b" and r["seed"] == 1 and r["dataset"] == "fashion-mnist"][0]
    assert b["kwargs"]["method_options"] == {"alpha": 0.3, "beta": 10}
    assert b["config"] == {"epochs": 4, "seed": 1}
    assert b["out"] == result_path(p, "b", "fashion-mnist", 1)
    assert result_path(p, "b", "fashion-mnist", 1, fast=False) == tmp_path / "s" / "b__fashion-mnist__s1.json"
    assert result_path(p, "b", "fashion-mnist", 1, fast=True).name == "b__fashion-mnist__s1.fast.json"


def test_spec_must_name_its_parts(tmp_path):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"name": "x", "seeds": [0]}))
    with pytest.raises(ValueError, match="datasets"):
        load_spec(p)
