"""CIFAR Wide Residual Networks WRN-d-k (Zagoruyko & Komodakis, BMVC 2016), a heterogeneous DFKD-FGVC student.

DFKD-FGVC Table 2 distils a ResNet-34 into a WRN40-2. WRN-d-k has a 3x3 stem and three groups of
``n = (d - 4) / 6`` pre-activation basic blocks (BN-ReLU-conv3x3 twice) of ``16k, 32k, 64k`` channels at
strides 1, 2, 2, then BN-ReLU, global average pooling and a linear layer. ``width`` is the stem's channel
count (16 in the original), so the groups have ``width * k * (1, 2, 4)`` channels and ``width=16`` gives the
standard network.

Follows the classifier convention of :mod:`dfkd_lib.models.resnet`::

    logits = model(x)                                   # (N, num_classes)
    logits, feats = model(x, return_features=True)      # feats: 3 stage maps, penultimate (N, 4*width*k)

``feats.stages`` holds the outputs of the three groups, ``(N, width*k*2**i, H/2**i, W/2**i)``; the last one is
taken after the final BN-ReLU (the map that is pooled), the first two are the raw pre-activation sums. A WRN
has three stages and a ResNet four: stage-level MHAD between them is not defined, use the penultimate level
(Sec. 5.2).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import Features


class WideBasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3x3(stride)-BN-ReLU-[dropout]-conv3x3, plus a (1x1 projection) shortcut.

    Input ``(N, in_planes, H, W)``, output ``(N, planes, H/stride, W/stride)``.
    """

    def __init__(self, in_planes: int, planes: int, stride: int = 1, dropout: float = 0.0):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.dropout = dropout
        self.shortcut = None
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Conv2d(in_planes, planes, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv1(o)
        y = F.relu(self.bn2(y))
        if self.dropout > 0:
            y = F.dropout(y, self.dropout, self.training)
        y = self.conv2(y)
        # the projection shortcut reads the pre-activated input, as in the original WRN code
        return y + (self.shortcut(o) if self.shortcut is not None else x)


class WideResNet(nn.Module):
    """WRN-``depth``-``widen`` for small (28-64 px) images.

    Args:
        depth: ``d``, with ``(d - 4) % 6 == 0`` (16, 22, 28, 40, ...).
        widen: ``k`` >= 1.
        num_classes: size of the output layer.
        in_channels: image channels.
        width: stem channels (16 standard); groups have ``width * widen * (1, 2, 4)`` channels.
        dropout: dropout inside the blocks (0 by default).

    Input ``(N, in_channels, H, W)``, logits ``(N, num_classes)``. Attributes ``stage_channels`` (three
    ints) and ``feature_dim`` (``4 * width * widen``).

    Raises:
        ValueError: invalid depth, non-positive sizes; a forward input with the wrong channels.
    """

    def __init__(self, depth: int = 40, widen: int = 2, num_classes: int = 10, in_channels: int = 3,
                 width: int = 16, dropout: float = 0.0):
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, 40, ...), got {depth}")
        if min(widen, num_classes, in_channels, width) < 1:
            raise ValueError(f"widen, num_classes, in_channels and width must be positive, got "
                             f"{widen}, {num_classes}, {in_channels}, {width}")
        n = (depth - 4) // 6
        self.depth, self.widen, self.num_classes, self.in_channels = depth, widen, num_classes, in_channels
        planes = [width * widen, 2 * width * widen, 4 * width * widen]
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        groups, in_planes = [], width
        for i, p in enumerate(planes):
            blocks = []
            for j in range(n):
                blocks.append(WideBasicBlock(in_planes, p, (1 if i == 0 else 2) if j == 0 else 1, dropout))
                in_planes = p
            groups.append(nn.Sequential(*blocks))
        self.group1, self.group2, self.group3 = groups
        self.bn = nn.BatchNorm2d(planes[-1])
        self.stage_channels = planes
        self.feature_dim = planes[-1]
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        s1 = self.group1(self.stem(x))
        s2 = self.group2(s1)
        s3 = F.relu(self.bn(self.group3(s2)))
        pen = torch.flatten(F.adaptive_avg_pool2d(s3, 1), 1)
        logits = self.fc(pen)
        if return_features:
            return logits, Features([s1, s2, s3], pen)
        return logits


def wrn16_1(num_classes: int = 10, in_channels: int = 3, width: int = 16, image_size: int = 32) -> WideResNet:
    """WRN-16-1."""
    return WideResNet(16, 1, num_classes, in_channels, width)


def wrn16_2(num_classes: int = 10, in_channels: int = 3, width: int = 16, image_size: int = 32) -> WideResNet:
    """WRN-16-2."""
    return WideResNet(16, 2, num_classes, in_channels, width)


def wrn40_1(num_classes: int = 10, in_channels: int = 3, width: int = 16, image_size: int = 32) -> WideResNet:
    """WRN-40-1."""
    return WideResNet(40, 1, num_classes, in_channels, width)


def wrn40_2(num_classes: int = 10, in_channels: int = 3, width: int = 16, image_size: int = 32) -> WideResNet:
    """WRN-40-2: the heterogeneous student of DFKD-FGVC Table 2."""
    return WideResNet(40, 2, num_classes, in_channels, width)


__all__ = ["WideBasicBlock", "WideResNet", "wrn16_1", "wrn16_2", "wrn40_1", "wrn40_2"]
