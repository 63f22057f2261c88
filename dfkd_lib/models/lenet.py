"""LeNet-5 (LeCun et al. 1998), the teacher and student of DFAD's MNIST quick start.

Three 5x5 convolutions with ReLU, the first two each followed by 2x2 max pooling, then two linear layers:
``conv(C -> w) - pool - conv(w -> 8w/3) - pool - conv(-> 20w) - fc(-> 14w) - fc(-> K)``. ``width`` is the first
convolution's channel count: ``width=6`` gives the classic 6-16-120-84 network, ``width=3`` the 3-8-60-42
"LeNet-5-half" that DFAD distils into. No BatchNorm, so BN-statistics methods cannot use it as a teacher.
Input ``(N, C, 32, 32)``.

Follows the classifier convention of :mod:`dfkd_lib.models.resnet`::

    logits, feats = model(x, return_features=True)
    # feats.stages: (N, w, 14, 14), (N, 8w/3, 5, 5), (N, 20w, 1, 1); feats.penultimate: (N, 14w)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .features import Features


class LeNet5(nn.Module):
    """LeNet-5 with ReLU and max pooling (see the module docstring).

    Args:
        num_classes: ``K``; in_channels: ``C``; width: channels of the first convolution (6: the original).

    Raises:
        ValueError: ``width < 1``.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1, width: int = 6):
        super().__init__()
        if width < 1:
            raise ValueError(f"width must be >= 1, got {width}")
        c1, c2, c3, f = width, round(width * 16 / 6), width * 20, width * 14
        self.conv1 = nn.Conv2d(in_channels, c1, 5)
        self.conv2 = nn.Conv2d(c1, c2, 5)
        self.conv3 = nn.Conv2d(c2, c3, 5)
        self.fc1 = nn.Linear(c3, f)
        self.fc2 = nn.Linear(f, num_classes)

    def forward(self, x: torch.Tensor, return_features: bool = False):
        s1 = F.max_pool2d(F.relu(self.conv1(x)), 2)
        s2 = F.max_pool2d(F.relu(self.conv2(s1)), 2)
        s3 = F.relu(self.conv3(s2))
        pen = F.relu(self.fc1(s3.flatten(1)))
        logits = self.fc2(pen)
        return (logits, Features([s1, s2, s3], pen)) if return_features else logits


def lenet5(num_classes: int = 10, in_channels: int = 1, width: int = 6, image_size: int = 32) -> LeNet5:
    """LeNet-5 for ``image_size`` px images (32 only: the third convolution reduces 5x5 to 1x1).

    Raises:
        ValueError: ``image_size != 32``.
    """
    if image_size != 32:
        raise ValueError(f"lenet5 takes 32 px images, got {image_size} px")
    return LeNet5(num_classes, in_channels, width)
