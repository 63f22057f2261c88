"""Heterogeneous students of DFKD-FGVC Table 2: CIFAR WRN-d-k and MobileNetV2."""
import pytest
import torch
import torchvision
from torch import nn

from dfkd_lib.models import CLASSIFIERS, Features, build_classifier
from dfkd_lib.models.mobilenetv2 import MobileNetV2, make_divisible, mobilenetv2
from dfkd_lib.models.wrn import WideResNet, wrn16_1, wrn16_2, wrn40_1, wrn40_2


def _n(model):
    return sum(p.numel() for p in model.parameters())


def _wrn_params(depth, k, width=16, in_ch=3, classes=10):
    """WRN parameter count by hand: stem, blocks (2 BN, 2 conv3x3, 1x1 shortcut when the shape changes),
    final BN and linear layer."""
    n = (depth - 4) // 6
    total, c_in = in_ch * width * 9, width
    for c in (width * k, 2 * width * k, 4 * width * k):
        for j in range(n):
            total += 2 * c_in + c_in * c * 9 + 2 * c + c * c * 9
            if c_in != c:
                total += c_in * c
            c_in = c
    return total + 2 * c_in + c_in * classes + classes


@pytest.mark.parametrize("factory,depth,k", [(wrn16_1, 16, 1), (wrn16_2, 16, 2), (wrn40_1, 40, 1),
                                             (wrn40_2, 40, 2)])
def test_wrn_parameter_count(factory, depth, k):
    assert _n(factory(10)) == _wrn_params(depth, k)


def test_wrn40_2_has_the_published_size():
    assert 2.2e6 < _n(wrn40_2(10)) < 2.3e6  # WRN-40-2: 2.2M parameters (Zagoruyko & Komodakis, Table 1)


@pytest.mark.parametrize("depth,k,width", [(16, 1, 4), (16, 2, 8), (10, 3, 2)])
@pytest.mark.parametrize("in_ch,size", [(3, 32), (1, 28)])
def test_wrn_shapes(depth, k, width, in_ch, size):
    m = WideResNet(depth, k, num_classes=5, in_channels=in_ch, width=width)
    x = torch.randn(2, in_ch, size, size)
    logits, feats = m(x, return_features=True)
    assert isinstance(feats, Features) and logits.shape == (2, 5)
    assert m.stage_channels == [width * k, 2 * width * k, 4 * width * k] and m.feature_dim == 4 * width * k
    sides = [size, (size + 1) // 2, ((size + 1) // 2 + 1) // 2]
    assert [tuple(f.shape) for f in feats.stages] == [(2, c, s, s) for c, s in zip(m.stage_channels, sides)]
    assert feats.penultimate.shape == (2, m.feature_dim)
    torch.testing.assert_close(feats.penultimate, feats.stages[-1].mean(dim=(2, 3)))
    assert (feats.stages[-1] >= 0).all()  # after the final BN-ReLU
    torch.testing.assert_close(m(x), logits)


def test_wrn_errors():
    with pytest.raises(ValueError):
        WideResNet(depth=15)
    with pytest.raises(ValueError):
        WideResNet(depth=16, widen=0)
    with pytest.raises(ValueError):
        wrn16_1(in_channels=1)(torch.randn(2, 3, 32, 32))


def test_mobilenetv2_matches_torchvision_parameter_count():
    # same layers as the ImageNet network (only strides differ), so the same parameter count
    assert _n(MobileNetV2(10, 3, 1.0)) == _n(torchvision.models.mobilenet_v2(num_classes=10))


@pytest.mark.parametrize("width", [4, 8, 32])
@pytest.mark.parametrize("in_ch,size", [(3, 32), (1, 28), (3, 16)])
def test_mobilenetv2_shapes(width, in_ch, size):
    m = mobilenetv2(num_classes=7, in_channels=in_ch, width=width)
    assert m.width_mult == width / 32
    x = torch.randn(2, in_ch, size, size)
    logits, feats = m(x, return_features=True)
    assert logits.shape == (2, 7)
    mult = width / 32
    assert m.stage_channels == [make_divisible(c * mult) for c in (24, 32, 96, 1280)]
    sides = [size]
    for _ in range(3):
        sides.append((sides[-1] + 1) // 2)
    assert [tuple(f.shape) for f in feats.stages] == [(2, c, s, s) for c, s in zip(m.stage_channels, sides)]
    assert feats.penultimate.shape == (2, m.feature_dim) and m.feature_dim == m.stage_channels[-1]
    torch.testing.assert_close(feats.penultimate, feats.stages[-1].mean(dim=(2, 3)))


def test_mobilenetv2_blocks():
    m = MobileNetV2(10, 3, 1.0)
    depthwise = [c for c in m.modules() if isinstance(c, nn.Conv2d) and c.groups > 1]
    assert len(depthwise) == 17 and all(c.groups == c.in_channels == c.out_channels for c in depthwise)
    assert sum(b.residual for g in m.groups for b in g) == 10  # the repeated blocks of each group
    assert make_divisible(32 * 0.125) == 8 and make_divisible(24 * 0.75) == 24 and make_divisible(96) == 96


def test_mobilenetv2_errors():
    with pytest.raises(ValueError):
        MobileNetV2(width_mult=0)
    with pytest.raises(ValueError):
        mobilenetv2(width=0)
    with pytest.raises(ValueError):
        mobilenetv2(in_channels=3, width=4)(torch.randn(2, 1, 32, 32))


@pytest.mark.parametrize("name", ["wrn16_1", "wrn16_2", "wrn40_1", "wrn40_2", "mobilenetv2"])
def test_registered_and_trainable(name):
    assert name in CLASSIFIERS
    m = build_classifier(name, num_classes=3, in_channels=1, width=4)
    x = torch.randn(4, 1, 16, 16)
    logits = m(x)
    assert logits.shape == (4, 3)
    nn.functional.cross_entropy(logits, torch.tensor([0, 1, 2, 0])).backward()
    assert all(p.grad is not None for p in m.parameters())
