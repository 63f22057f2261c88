"""Real-photo route: a folder of RGB images (train/<class>/, test/<class>/) through resolve_spec, the teacher
and a data-free run, on a small folder of generated images (no shared data needed)."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from dfkd_lib.cli import main
from dfkd_lib.data import (CorruptImageError, DatasetNotFoundError, DatasetSpec, get_dataset, resolve_spec,
                           select_classes)
from dfkd_lib.models import build_classifier
from dfkd_lib.models.resnet import stem_stride_for

CLASSES = {"Cape_May_Warbler": (200, 40, 40), "Nashville_Warbler": (40, 200, 40), "Song_Sparrow": (40, 40, 200)}


def _folder(root, per_class=(4, 2), size=(48, 40)):
    """Noisy images around one colour per class: 4 train and 2 test per class."""
    rng = np.random.default_rng(0)
    for split, n in zip(("train", "test"), per_class):
        for name, colour in CLASSES.items():
            (root / split / name).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                px = np.clip(np.array(colour) + rng.normal(0, 20, (size[1], size[0], 3)), 0, 255).astype(np.uint8)
                Image.fromarray(px).save(root / split / name / f"{i}.jpg")
    return root


def test_spec_is_read_from_the_files(tmp_path):
    root = _folder(tmp_path)
    spec = resolve_spec("folder", root, image_size=32)
    assert spec.num_classes == 3 and spec.class_names == tuple(sorted(CLASSES))
    assert spec.image_size == 32 and spec.root == str(root)
    # the mean of the training pixels: the three class colours averaged (noise and JPEG aside)
    assert np.allclose(spec.mean, np.mean(list(CLASSES.values()), axis=0) / 255, atol=0.02)
    assert all(0.2 < s < 0.5 for s in spec.std)
    x, y = get_dataset(spec, train=False)[0]
    assert x.shape == (3, 32, 32) and y == 0
    assert DatasetSpec.from_dict(json.loads(json.dumps(spec.to_dict()))) == spec  # what manifests store


def test_class_subsets_by_name_or_pattern(tmp_path):
    root = _folder(tmp_path)
    spec = resolve_spec("folder", root, image_size=32, classes="*_Warbler")
    assert spec.class_names == ("Cape_May_Warbler", "Nashville_Warbler") and spec.num_classes == 2
    test = get_dataset(spec, train=False)
    assert len(test) == 4 and sorted(set(test.targets)) == [0, 1]
    assert select_classes(list(CLASSES), "Song_Sparrow,Cape*") == ("Cape_May_Warbler", "Song_Sparrow")
    with pytest.raises(ValueError, match="'Robin' matches none of the 3 classes"):
        resolve_spec("folder", root, classes="Robin")


def test_bad_folders_give_clear_errors(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        resolve_spec("folder", tmp_path / "nowhere")
    root = _folder(tmp_path / "a")
    (root / "train" / "Song_Sparrow" / "1.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(CorruptImageError, match="Song_Sparrow/1.jpg"):
        resolve_spec("folder", root, image_size=32)
    root = _folder(tmp_path / "b")
    (root / "train" / "Empty_Gull").mkdir()
    with pytest.raises(DatasetNotFoundError, match="Empty_Gull"):
        resolve_spec("folder", root, image_size=32)
    with pytest.raises(ValueError, match="multiple of 16"):
        resolve_spec("folder", _folder(tmp_path / "c"), image_size=40)
    with pytest.raises(ValueError, match="fixed class set"):
        resolve_spec("fashion-mnist", classes="*Shirt")


def test_fashion_mnist_root_that_does_not_exist_is_an_error(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="does not exist"):
        resolve_spec("fashion-mnist", tmp_path / "nonexistent")


def test_cifar_resnets_stride_their_stem_above_32_px():
    assert [stem_stride_for(s) for s in (28, 32, 64, 128)] == [1, 1, 2, 4]
    with pytest.raises(ValueError, match="64, 128 or 256"):
        stem_stride_for(96)
    m = build_classifier("resnet18", 5, 3, width=4, image_size=64)
    logits, feats = m(torch.randn(2, 3, 64, 64), return_features=True)
    assert logits.shape == (2, 5) and feats.stages[-1].shape[-2:] == (4, 4)


def test_teacher_and_student_on_a_folder_from_the_command_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DFKD_FAST", "1")
    root = _folder(tmp_path / "birds")
    teacher = tmp_path / "t.pt"
    assert main(["train-teacher", "--dataset", "folder", "--root", str(root), "--image-size", "32",
                 "--classes", "*_Warbler", "--width", "4", "--epochs", "1", "--batch-size", "4",
                 "--amp", "none", "--out", str(teacher)]) == 0
    manifest = json.loads(teacher.with_suffix(".json").read_text())
    assert manifest["num_classes"] == 2 and manifest["image_size"] == 32
    assert manifest["data"]["class_names"] == ["Cape_May_Warbler", "Nashville_Warbler"]
    out = tmp_path / "r.json"
    assert main(["distill", "--dataset", "folder", "--teacher", str(teacher), "--out", str(out),
                 "--student-width", "4", "--generator-width", "4"]) == 0
    res = json.loads(out.read_text())
    assert res["data"]["image_size"] == 32 and res["data"]["mean"] == manifest["data"]["mean"]
    assert res["test_images"] == 4  # the two warbler classes' test images only
    # a checkpoint names its teacher by content: the same teacher file elsewhere (a moved checkout) resumes it
    ckpt, moved = tmp_path / "r.state.pt", tmp_path / "moved" / "t.pt"
    moved.parent.mkdir()
    for suffix in (".pt", ".json"):
        moved.with_suffix(suffix).write_bytes(teacher.with_suffix(suffix).read_bytes())
    for t in (teacher, moved):
        assert main(["distill", "--dataset", "folder", "--teacher", str(t), "--out", str(tmp_path / "c.json"),
                     "--checkpoint", str(ckpt), "--student-width", "4", "--generator-width", "4"]) == 0
    resumed = json.loads((tmp_path / "c.json").read_text())
    assert resumed["resumed_from_epoch"] == len(resumed["history"])  # finished before the move: nothing rerun
    capsys.readouterr()
    assert main(["distill", "--dataset", "folder", "--teacher", str(teacher), "--image-size", "64"]) == 2
    assert "takes 32 px images, not 64 px" in capsys.readouterr().err
    assert main(["distill", "--dataset", "folder", "--teacher", str(teacher), "--root", str(tmp_path / "x")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["train-teacher", "--dataset", "fashion-mnist", "--root", str(tmp_path / "nonexistent")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nonexistent does not exist" in err


def test_pretrained_torchvision_weights_load_all_but_the_classifier(tmp_path):
    from torchvision.models import resnet18

    from dfkd_lib.teachers import load_pretrained

    imagenet = resnet18(weights=None)  # stands in for ImageNet weights a user has on disk
    torch.save(imagenet.state_dict(), tmp_path / "r18.pth")
    model = build_classifier("tv_resnet18", 12, 3)
    load_pretrained(model, tmp_path / "r18.pth")
    assert torch.equal(model.net.conv1.weight, imagenet.conv1.weight)
    assert model.net.fc.out_features == 12
    with pytest.raises(ValueError, match="use --arch tv_resnet18"):
        load_pretrained(build_classifier("resnet18", 12, 3, width=4), tmp_path / "r18.pth")
    with pytest.raises(ValueError, match="another architecture|not hold weights of this architecture"):
        load_pretrained(build_classifier("tv_resnet34", 12, 3), tmp_path / "r18.pth")


def test_examples_per_class_and_species_groups(tmp_path):
    from dfkd_lib.data import examples_per_class, groups_by_last_word

    spec = resolve_spec("folder", _folder(tmp_path), image_size=32)
    x, y = examples_per_class(get_dataset(spec, train=False), n=2, classes=[2, 0])
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [2, 2, 0, 0]
    with pytest.raises(ValueError, match="fewer than n=3"):
        examples_per_class(get_dataset(spec, train=False), n=3)
    assert groups_by_last_word(spec.class_names) == {"Warbler": [0, 1]}
    assert groups_by_last_word(spec.class_names, min_size=1) == {"Warbler": [0, 1], "Sparrow": [2]}
