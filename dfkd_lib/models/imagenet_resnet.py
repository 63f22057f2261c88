"""torchvision's ImageNet-style ResNets (7x7 stem + max-pool) with dfkd_lib's feature convention.

For the paper's 224 px FGVC runs (DFKD-FGVC Sec. 5.1: ResNet-34 teacher, ResNet-18 student), usually on a GPU.
No weights are downloaded: the networks start from torchvision's random initialisation (``weights=None``).
"""
from __future__ import annotations

import torch
from torch import nn
from torchvision import models as tvm

from .features import Features


class TorchvisionResNet(nn.Module):
    """Wrap a ``torchvision.models.ResNet`` so that ``forward(x, return_features=True)`` gives
    ``(logits, Features(stages=[layer1..layer4 outputs], penultimate=(N, 512)))``.

    Args:
        arch: ``"resnet18"`` or ``"resnet34"`` (any torchvision ResNet builder name works).
        num_classes: output classes.
        in_channels: image channels; anything but 3 replaces the stem convolution.
    Input ``(N, in_channels, H, W)`` (224 px in the paper); stage ``i`` has stride ``4 * 2**i``.
    """

    def __init__(self, arch: str = "resnet34", num_classes: int = 200, in_channels: int = 3):
        super().__init__()
        self.net = getattr(tvm, arch)(weights=None, num_classes=num_classes)
        if in_channels != 3:
            self.net.conv1 = nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False)
        self.num_classes, self.in_channels = num_classes, in_channels
        self.stage_channels = [getattr(self.net, f"layer{i}")[-1].bn2.num_features for i in range(1, 5)]
        self.feature_dim = self.net.fc.in_features

    def forward(self, x: torch.Tensor, return_features: bool = False):
        n = self.net
        out = n.maxpool(n.relu(n.bn1(n.conv1(x))))
        stages = []
        for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
            out = layer(out)
            stages.append(out)
        pen = torch.flatten(n.avgpool(out), 1)
        logits = n.fc(pen)
        return (logits, Features(stages, pen)) if return_features else logits


def tv_resnet18(num_classes: int = 200, in_channels: int = 3, width: int = 64, image_size: int = 224) -> TorchvisionResNet:
    """torchvision ResNet-18 (``width`` must be 64: torchvision's ResNets have a fixed width)."""
    if width != 64:
        raise ValueError("torchvision ResNets have width 64; use the CIFAR-style resnet18 for other widths")
    return TorchvisionResNet("resnet18", num_classes, in_channels)


def tv_resnet34(num_classes: int = 200, in_channels: int = 3, width: int = 64, image_size: int = 224) -> TorchvisionResNet:
    """torchvision ResNet-34 (``width`` must be 64)."""
    if width != 64:
        raise ValueError("torchvision ResNets have width 64; use the CIFAR-style resnet34 for other widths")
    return TorchvisionResNet("resnet34", num_classes, in_channels)
