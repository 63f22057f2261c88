"""CIFAR-style ResNets (3x3 stem, no max-pool) that expose their features.

The paper pair of DFKD-FGVC is a ResNet-34 teacher and a ResNet-18 student (Sec. 5.1). On 32x32 inputs the
CIFAR stem keeps the last of four stages at 4x4, large enough for attention maps and CAMs. ``width`` is the
channel count of the first stage (64 in the standard networks); the four stages have
``width, 2*width, 4*width, 8*width`` channels, so ``width=16`` gives a network that trains on a laptop CPU.

Every classifier of dfkd_lib follows one convention::

    logits = model(x)                                   # (N, num_classes)
    logits, feats = model(x, return_features=True)      # feats: Features(stages=[...], penultimate=(N, D))
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import Features


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 projection) shortcut (He et al. 2016)."""

    expansion = 1

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.shortcut = nn.Sequential()
        if stride != 1 or in_planes != planes:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_planes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


def stem_stride_for(image_size: int) -> int:
    """Stride of the 3x3 stem that keeps a CIFAR-style ResNet's last stage at ``image_size / 8`` for inputs up to
    32 px and at 4x4 above: 1 up to 32 px, ``image_size // 32`` for 64, 128 and 256 px.

    Raises:
        ValueError: an ``image_size`` above 32 that is not 64, 128 or 256.
    """
    if image_size <= 32:
        return 1
    if image_size not in (64, 128, 256):
        raise ValueError(f"CIFAR-style ResNets take inputs up to 32 px or of 64, 128 or 256 px, got {image_size}; "
                         "resize the images (image_size=64) or use a tv_resnet for 224 px")
    return image_size // 32


class CifarResNet(nn.Module):
    """ResNet with a 3x3 stem and no max-pool, for 28-32 px inputs (and 64-256 px with a strided stem).

    Args:
        blocks: number of BasicBlocks in each of the four stages, e.g. ``(2, 2, 2, 2)`` for ResNet-18.
        num_classes: size of the output layer.
        in_channels: image channels (1 for Fashion-MNIST, 3 for RGB).
        width: channels of the first stage; stages have ``width * (1, 2, 4, 8)`` channels.
        stem_stride: stride of the stem convolution (:func:`stem_stride_for` picks it from the image size, so
            that a 64 px image costs about what a 32 px one does and the last stage stays 4x4).

    Input ``(N, in_channels, H, W)``, output logits ``(N, num_classes)``. Stage ``i`` has spatial size
    ``H / (stem_stride * 2**i)`` (stride 2 at stages 2-4).
    """

    def __init__(self, blocks: tuple[int, int, int, int], num_classes: int = 10, in_channels: int = 3,
                 width: int = 64, stem_stride: int = 1):
        super().__init__()
        if num_classes < 1 or in_channels < 1 or width < 1:
            raise ValueError(f"num_classes, in_channels and width must be positive, got "
                             f"{num_classes}, {in_channels}, {width}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, width, 3, stem_stride, 1, bias=False), nn.BatchNorm2d(width),
            nn.ReLU(inplace=True)
        )
        planes = [width, 2 * width, 4 * width, 8 * width]
        layers, in_planes = [], width
        for i, (n, p) in enumerate(zip(blocks, planes)):
            stride = 1 if i == 0 else 2
            stage = []
            for j in range(n):
                stage.append(BasicBlock(in_planes, p, stride if j == 0 else 1))
                in_planes = p
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.stage_channels = planes
        self.feature_dim = planes[-1]
        self.fc = nn.Linear(self.feature_dim, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        if x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected input (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        out = self.stem(x)
        stages = []
        for layer in (self.layer1, self.layer2, self.layer3, self.layer4):
            out = layer(out)
            stages.append(out)
        pen = torch.flatten(F.adaptive_avg_pool2d(out, 1), 1)
        logits = self.fc(pen)
        if return_features:
            return logits, Features(stages, pen)
        return logits


def resnet8(num_classes: int = 10, in_channels: int = 3, width: int = 64, image_size: int = 32) -> CifarResNet:
    """ResNet-8: one BasicBlock per stage."""
    return CifarResNet((1, 1, 1, 1), num_classes, in_channels, width, stem_stride_for(image_size))


def resnet18(num_classes: int = 10, in_channels: int = 3, width: int = 64, image_size: int = 32) -> CifarResNet:
    """ResNet-18: the DFKD-FGVC student (Sec. 5.1), CIFAR stem."""
    return CifarResNet((2, 2, 2, 2), num_classes, in_channels, width, stem_stride_for(image_size))


def resnet34(num_classes: int = 10, in_channels: int = 3, width: int = 64, image_size: int = 32) -> CifarResNet:
    """ResNet-34: the DFKD-FGVC teacher (Sec. 5.1), CIFAR stem."""
    return CifarResNet((3, 4, 6, 3), num_classes, in_channels, width, stem_stride_for(image_size))
