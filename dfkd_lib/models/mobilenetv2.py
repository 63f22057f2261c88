"""CIFAR-style MobileNetV2 (Sandler et al., CVPR 2018), a heterogeneous DFKD-FGVC student (Table 2).

Inverted residual blocks (1x1 expansion, 3x3 depthwise, linear 1x1 projection; identity shortcut when the
shape is kept) with the ImageNet configuration ``(t, c, n, s)``::

    (1, 16, 1, 1), (6, 24, 2, 1*), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)

then a 1x1 conv to 1280 channels, BN-ReLU6, global average pooling and a linear layer. For 28-64 px inputs
the stem (3x3 conv, 32 channels) and the second group (*) use stride 1 instead of 2, so a 32x32 input is
downsampled 8 times, to 4x4, like the CIFAR ResNets.

All channel counts, the last conv's 1280 included, are multiplied by ``width_mult`` and rounded to a multiple
of 8 (at least 8). (The reference architecture keeps 1280 channels for ``width_mult < 1``; here the multiplier
shrinks the whole network, penultimate width included, so that ``width`` makes CPU-sized students.)

Follows the classifier convention of :mod:`dfkd_lib.models.resnet`; ``feats.stages`` holds four maps at
strides 1, 2, 4, 8: the outputs of groups 2 (24 ch), 3 (32 ch), 5 (96 ch) and of the final 1x1 conv
(1280 ch, after BN-ReLU6, the map that is pooled), i.e. for a 32x32 input spatial sizes 32, 16, 8, 4 as the
ResNet stages. ``feats.penultimate`` is ``(N, last_channels)``.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import Features

CONFIG = ((1, 16, 1, 1), (6, 24, 2, 1), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
          (6, 320, 1, 1))
STAGE_GROUPS = (1, 2, 4)  # groups whose outputs are stages 1-3 (stage 4: the final 1x1 conv)


def make_divisible(v: float, divisor: int = 8) -> int:
    """Round ``v`` to the nearest multiple of ``divisor`` (at least ``divisor``), never below 90% of ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new < 0.9 * v:
        new += divisor
    return new


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(c_out)]
    if act:
        layers.append(nn.ReLU6(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: [1x1 expand x t, BN, ReLU6] -> 3x3 depthwise (stride), BN, ReLU6 -> 1x1 project, BN.

    Input ``(N, c_in, H, W)``, output ``(N, c_out, H/stride, W/stride)``; residual when ``stride == 1`` and
    ``c_in == c_out``.
    """

    def __init__(self, c_in: int, c_out: int, stride: int, expand: int):
        super().__init__()
        hidden = c_in * expand
        layers = [] if expand == 1 else [_conv_bn(c_in, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, c_out, 1, act=False)]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetV2(nn.Module):
    """MobileNetV2 for small images with a width multiplier.

    Args:
        num_classes: size of the output layer.
        in_channels: image channels.
        width_mult: channel multiplier (1.0 standard; > 0).

    Input ``(N, in_channels, H, W)``, logits ``(N, num_classes)``. Attributes ``stage_channels`` (four ints)
    and ``feature_dim``.

    Raises:
        ValueError: non-positive sizes or multiplier; a forward input with the wrong channels.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, width_mult: float = 1.0):
        super().__init__()
        if num_classes < 1 or in_channels < 1 or not width_mult > 0:
            raise ValueError(f"num_classes, in_channels and width_mult must be positive, got "
                             f"{num_classes}, {in_channels}, {width_mult}")
        self.num_classes, self.in_channels, self.width_mult = num_classes, in_channels, width_mult
        c = make_divisible(32 * width_mult)
        self.stem = _conv_bn(in_channels, c, 3, 1)
        groups = []
        for t, ch, n, s in CONFIG:
            out = make_divisible(ch * width_mult)
            blocks = []
            for i in range(n):
                blocks.append(InvertedResidual(c, out, s if i == 0 else 1, t))
                c = out
            groups.append(nn.Sequential(*blocks))
        self.groups = nn.ModuleList(groups)
        self.last_channels = make_divisible(1280 * width_mult)
        self.head = _conv_bn(c, self.last_channels, 1)
        self.stage_channels = [make_divisible(CONFIG[g][1] * width_mult) for g in STAGE_GROUPS]
        self.stage_channels.append(self.last_channels)
        self.feature_dim = self.last_channels
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        out, stages = self.stem(x), []
        for i, group in enumerate(self.groups):
            out = group(out)
            if i in STAGE_GROUPS:
                stages.append(out)
        out = self.head(out)
        stages.append(out)
        pen = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        logits = self.fc(pen)
        if return_features:
            return logits, Features(stages, pen)
        return logits


def mobilenetv2(num_classes: int = 10, in_channels: int = 3, width: int = 32, image_size: int = 32) -> MobileNetV2:
    """MobileNetV2 with stem width ``width`` (32 standard), i.e. ``width_mult = width / 32``."""
    if width < 1:
        raise ValueError(f"width must be positive, got {width}")
    return MobileNetV2(num_classes, in_channels, width / 32)


__all__ = ["InvertedResidual", "MobileNetV2", "make_divisible", "mobilenetv2"]
