import pytest
import torch
from torch import nn

from dfkd_lib.checkpoint import CheckpointError, read_manifest, safe_load, save_model, sha256
from dfkd_lib.models import build_classifier, resnet18, resnet34
from dfkd_lib.models.generators import DCGANGenerator
from dfkd_lib.teachers import load_teacher


@pytest.mark.parametrize("fn,blocks", [(resnet18, 8), (resnet34, 16)])
@pytest.mark.parametrize("in_ch,size,width", [(1, 32, 4), (3, 32, 8), (3, 64, 4)])
def test_resnet_features(fn, blocks, in_ch, size, width):
    m = fn(num_classes=7, in_channels=in_ch, width=width)
    logits, f = m(torch.randn(2, in_ch, size, size), return_features=True)
    assert logits.shape == (2, 7)
    assert [s.shape[1] for s in f.stages] == [width, 2 * width, 4 * width, 8 * width]
    assert [s.shape[-1] for s in f.stages] == [size, size // 2, size // 4, size // 8]
    assert f.penultimate.shape == (2, 8 * width)
    assert sum(isinstance(x, nn.Conv2d) and x.kernel_size == (3, 3) for x in m.modules()) == 2 * blocks + 1


def test_resnet_rejects_wrong_channels():
    with pytest.raises(ValueError, match="expected input"):
        resnet18(10, 1, 4)(torch.randn(2, 3, 32, 32))


def test_unknown_model():
    with pytest.raises(KeyError, match="known models"):
        build_classifier("resnet1000", 10)


def test_generator_shapes_and_output_space():
    from dfkd_lib.data import dataset_spec

    spec = dataset_spec("fashion-mnist")
    g = DCGANGenerator.for_dataset(spec, nz=16, width=8)
    x = g(g.sample_z(3))
    assert x.shape == (3, 1, 32, 32)
    lo, hi = spec.pixel_bounds()
    assert (x >= lo - 1e-5).all() and (x <= hi + 1e-5).all()
    gt = DCGANGenerator(nz=16, out_channels=3, image_size=64, channels=(32, 16, 8, 8, 8), output="tanh")
    y = gt(torch.randn(2, 16))
    assert y.shape == (2, 3, 64, 64) and y.abs().max() <= 1
    with pytest.raises(ValueError, match="multiple of 16"):
        DCGANGenerator(image_size=28)
    with pytest.raises(ValueError, match="expected z"):
        g(torch.randn(2, 5))


def test_checkpoint_roundtrip_and_architecture_mismatch(tmp_path):
    m = resnet18(10, 1, 4)
    man = save_model(m, tmp_path / "t.pt", {"architecture": "resnet18", "width": 4, "num_classes": 10,
                                            "in_channels": 1, "dataset": "fashion-mnist", "test_accuracy": 0.1})
    assert man["sha256"] == sha256(tmp_path / "t.pt") == read_manifest(tmp_path / "t.pt")["sha256"]
    loaded, _ = load_teacher(tmp_path / "t.pt")
    x = torch.randn(2, 1, 32, 32)
    m.eval()
    assert torch.equal(loaded(x), m(x))
    assert not any(p.requires_grad for p in loaded.parameters())
    # the manifest claims another architecture than the weights hold
    bad = read_manifest(tmp_path / "t.pt")
    bad["architecture"] = "resnet34"
    (tmp_path / "t.json").write_text(__import__("json").dumps(bad))
    with pytest.raises(CheckpointError, match="another architecture"):
        load_teacher(tmp_path / "t.pt")
    with pytest.raises(FileNotFoundError, match="train-teacher"):
        load_teacher(tmp_path / "missing.pt")


def test_checkpoint_refuses_pickled_code(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(Exception):
        safe_load(tmp_path / "evil.pt")


def test_torchvision_resnets_follow_the_feature_convention():
    m = build_classifier("tv_resnet18", 5, 3)
    logits, f = m(torch.randn(2, 3, 64, 64), return_features=True)
    assert logits.shape == (2, 5) and f.penultimate.shape == (2, 512)
    assert [s.shape[1] for s in f.stages] == m.stage_channels == [64, 128, 256, 512]
    assert [s.shape[-1] for s in f.stages] == [16, 8, 4, 2]
    with pytest.raises(ValueError, match="width 64"):
        build_classifier("tv_resnet34", 5, 3, width=16)


def test_lenet5_is_the_classic_network_and_its_half():
    from dfkd_lib.models import build_classifier

    full, half = build_classifier("lenet5", 10, 1, 6), build_classifier("lenet5", 10, 1, 3)
    assert sum(p.numel() for p in full.parameters()) == 61_706          # LeCun et al.'s 6-16-120-84 network
    assert [m.out_channels for m in (half.conv1, half.conv2, half.conv3)] == [3, 8, 60]
    logits, feats = half(torch.zeros(2, 1, 32, 32), return_features=True)
    assert logits.shape == (2, 10) and feats.penultimate.shape == (2, 42)
    assert [tuple(s.shape[1:]) for s in feats.stages] == [(3, 14, 14), (8, 5, 5), (60, 1, 1)]
    with pytest.raises(ValueError, match="32 px"):
        build_classifier("lenet5", 10, 1, 6, image_size=64)
