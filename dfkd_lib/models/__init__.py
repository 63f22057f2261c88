"""Classifiers and generators, with a name registry for the command line and checkpoints.

Classifiers return logits, or ``(logits, Features)`` with ``return_features=True`` (see
:mod:`dfkd_lib.models.resnet`).
"""
from __future__ import annotations

from torch import nn

from ..registry import Registry
from .attention_generator import AttentionGenerator
from .features import Features
from .generators import DCGANGenerator
from .resnet import BasicBlock, CifarResNet, resnet8, resnet18, resnet34
from .wrn import wrn16_1, wrn16_2, wrn40_1, wrn40_2
from .mobilenetv2 import mobilenetv2
from .lenet import LeNet5, lenet5
from .imagenet_resnet import TorchvisionResNet, tv_resnet18, tv_resnet34

CLASSIFIERS: Registry = Registry("model", {
    "resnet8": resnet8,
    "resnet18": resnet18,
    "resnet34": resnet34,
    "wrn16_1": wrn16_1,
    "wrn16_2": wrn16_2,
    "wrn40_1": wrn40_1,
    "wrn40_2": wrn40_2,
    "mobilenetv2": mobilenetv2,
    "lenet5": lenet5,  # width 6: LeNet-5, width 3: LeNet-5-half (DFAD's MNIST quick start)
    "tv_resnet18": tv_resnet18,  # torchvision ImageNet-style, for 224 px FGVC runs
    "tv_resnet34": tv_resnet34,
})
#: Decorator adding a classifier factory ``f(num_classes, in_channels, width, image_size) -> nn.Module`` to
#: :data:`CLASSIFIERS` under a name.
register_classifier = CLASSIFIERS.register

#: Generators by name: classes with a ``for_dataset(spec, nz, width, **options)`` constructor.
GENERATORS: Registry = Registry("generator", {"dcgan": DCGANGenerator, "attention": AttentionGenerator})
#: Add a generator class to :data:`GENERATORS`: ``register_generator(name, cls)`` or as a class decorator.
register_generator = GENERATORS.register


def build_generator(name: str, spec, nz: int = 256, width: int = 64, **options) -> nn.Module:
    """Build a registered generator for a dataset spec (:class:`~dfkd_lib.data.DatasetSpec`); ``KeyError``
    lists the known names."""
    return GENERATORS[name].for_dataset(spec, nz=nz, width=width, **options)


def build_classifier(name: str, num_classes: int, in_channels: int = 3, width: int = 64,
                     image_size: int = 32) -> nn.Module:
    """Build a registered classifier by name for images of ``image_size`` px (CIFAR-style ResNets stride their
    stem above 32 px, see :func:`~dfkd_lib.models.resnet.stem_stride_for`; the other networks pool globally
    and take any size). ``KeyError`` lists the known names."""
    return CLASSIFIERS[name](num_classes=num_classes, in_channels=in_channels, width=width, image_size=image_size)


__all__ = ["BasicBlock", "CifarResNet", "Features", "resnet8", "resnet18", "resnet34", "CLASSIFIERS",
           "build_classifier", "register_classifier", "GENERATORS", "build_generator", "register_generator"]
