"""The stored DeepInversion grid: spec checks, one file per setting, resume, stale files rerun, the CLI."""
import json

import pytest
import torch

from dfkd_lib.checkpoint import save_model
from dfkd_lib.cli import main
from dfkd_lib.data import dataset_spec
from dfkd_lib.inversion_grid import grid_targets, inversion_grid, load_grid_spec
from dfkd_lib.models import resnet8

SPEC = {"name": "grid", "teacher": "fashion-mnist", "per_class": 1, "steps": 2, "seed": 0, "snapshot_every": 1,
        "amp": None, "settings": {"f0": {"alpha_f": 0.0}, "f1": {"alpha_f": 1.0, "alpha_tv": 0.0}}}


@pytest.fixture
def teacher_and_manifest():
    torch.manual_seed(0)
    teacher = resnet8(10, 1, 4).eval()
    return teacher, {"dataset": "fashion-mnist", "sha256": "abc", "data": dataset_spec("fashion-mnist").to_dict()}


def write(tmp_path, **changes):
    path = tmp_path / "grid.json"
    path.write_text(json.dumps({**SPEC, **changes}))
    return path


def test_targets_cover_every_class_in_order():
    assert grid_targets(3, 2).tolist() == [0, 0, 1, 1, 2, 2]


@pytest.mark.parametrize("changes, match", [({"stepz": 3}, "unknown keys"), ({"steps": 0}, "positive integer"),
                                            ({"settings": {"a": 1}}, "dicts of deep_inversion options")])
def test_bad_spec_is_refused_with_the_key(tmp_path, changes, match):
    with pytest.raises(ValueError, match=match):
        load_grid_spec(write(tmp_path, **changes))


def test_missing_spec_names_an_example(tmp_path):
    with pytest.raises(FileNotFoundError, match="bn_inversion_grid.json"):
        load_grid_spec(tmp_path / "nope.json")


def test_runs_stores_and_loads_equal_results(tmp_path, teacher_and_manifest):
    teacher, manifest = teacher_and_manifest
    spec, out = write(tmp_path), tmp_path / "out"
    first = inversion_grid(spec, teacher, manifest, out_dir=out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["f0.pt", "f1.pt"]
    assert first["f1"].images.shape == (10, 1, 32, 32) and len(first["f1"].history) == 2
    assert [s for s, _ in first["f1"].snapshots] == [0, 1, 2]
    mtime = (out / "f0.pt").stat().st_mtime_ns
    again = inversion_grid(spec, teacher, manifest, out_dir=out, progress=False)
    assert (out / "f0.pt").stat().st_mtime_ns == mtime  # loaded, not rerun
    for name in first:
        assert torch.equal(first[name].images.cpu(), again[name].images)
        assert first[name].history == again[name].history and first[name].final == again[name].final
    # the settings differ from each other: BN statistics change the images
    assert not torch.equal(again["f0"].images, again["f1"].images)


def test_stale_files_are_rerun(tmp_path, teacher_and_manifest):
    teacher, manifest = teacher_and_manifest
    out = tmp_path / "out"
    inversion_grid(write(tmp_path), teacher, manifest, out_dir=out, progress=False)
    mtime = (out / "f0.pt").stat().st_mtime_ns
    other_teacher = {**manifest, "sha256": "def"}
    inversion_grid(write(tmp_path), teacher, other_teacher, out_dir=out, progress=False)
    assert (out / "f0.pt").stat().st_mtime_ns != mtime
    mtime = (out / "f1.pt").stat().st_mtime_ns
    inversion_grid(write(tmp_path, steps=3), teacher, other_teacher, out_dir=out, progress=False)
    assert (out / "f1.pt").stat().st_mtime_ns != mtime


def test_overrides_never_write(tmp_path, teacher_and_manifest):
    teacher, manifest = teacher_and_manifest
    out = tmp_path / "out"
    res = inversion_grid(write(tmp_path), teacher, manifest, steps=1, out_dir=out, progress=False)
    assert not out.exists() and len(res["f0"].history) == 1


def test_cli_refuses_a_bad_spec_in_one_line(tmp_path, capsys):
    assert main(["invert", str(write(tmp_path, settings=[]))]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("python -m dfkd_lib invert: error:") and "\n" not in err


def test_cli_runs_a_grid_with_a_saved_teacher(tmp_path, monkeypatch, capsys):
    import dfkd_lib.inversion_grid as grid
    import dfkd_lib.teachers as teachers

    save_model(resnet8(10, 1, 4), tmp_path / "t.pt", {"architecture": "resnet8", "width": 4, "num_classes": 10,
                                                      "in_channels": 1, "dataset": "fashion-mnist"})
    monkeypatch.setattr(teachers, "default_teacher_path", lambda *a, **k: tmp_path / "t.pt")
    monkeypatch.setattr(grid, "project_root", lambda: tmp_path)
    assert main(["invert", str(write(tmp_path))]) == 0
    assert "2 settings -> results/grid/" in capsys.readouterr().out
    assert (tmp_path / "results" / "grid" / "f1.pt").is_file()
