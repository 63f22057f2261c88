"""Forward hooks as context managers that always remove themselves.

:class:`BNStatistics` is the heart of every BN-inversion method: it compares the statistics of the batch
flowing into each ``BatchNorm2d`` of the (frozen) teacher with the running statistics that layer stored
during training on real data (DeepInversion's ``R_feature``, Yin et al. CVPR 2020, Sec. 3.2; DFKD-FGVC
Eq. 3). Derived in the book's chapter "BN inversion".
"""
from __future__ import annotations

import torch
from torch import nn


class NoBatchNormError(ValueError):
    """A BN-statistics method was given a network that has no ``BatchNorm2d`` layer."""


def batchnorm_layers(model: nn.Module) -> list[nn.BatchNorm2d]:
    """All ``nn.BatchNorm2d`` modules of ``model`` in forward-definition order."""
    return [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]


class BNStatistics:
    """Record the BN-statistics distance of every ``BatchNorm2d`` layer during forward passes.

    For layer ``l`` with input ``x`` of shape ``(N, C, H, W)``::

        mu_l  = x.mean((0, 2, 3))                    # (C,)
        var_l = x.var((0, 2, 3), unbiased=False)     # (C,) biased, as BatchNorm normalises with
        loss_l = ||mu_l - running_mean_l||_2 + ||var_l - running_var_l||_2

    (plain, not squared, L2 norms: DFKD-FGVC Eq. 3 / DeepInversion's ``R_feature``).

    Use as a context manager around the teacher's forward; ``loss()`` then returns the weighted sum over
    layers of the *last* forward pass, differentiable with respect to the input::

        with BNStatistics(teacher) as bn:
            logits = teacher(x)
            l_bn = bn.loss()

    Args:
        model: the network whose BN layers are hooked (its running statistics are read, never changed).
        first_bn_multiplier: weight of the first BN layer (DeepInversion's code uses 10 on ImageNet); 1 here.

    Raises:
        NoBatchNormError: the model has no ``BatchNorm2d`` (use a method without a BN prior, e.g. DFAD).
    """

    def __init__(self, model: nn.Module, first_bn_multiplier: float = 1.0):
        self.layers = batchnorm_layers(model)
        if not self.layers:
            raise NoBatchNormError(
                f"{type(model).__name__} has no BatchNorm2d layer, so the BN-statistics loss (DeepInversion, "
                "DFKD-FGVC Eq. 3) cannot be computed. Use a teacher trained with BatchNorm, or a method that "
                "needs no BN statistics (e.g. DFAD), or set the BN weight alpha to 0.")
        self.first_bn_multiplier = first_bn_multiplier
        self._handles: list = []
        self.layer_losses: list[torch.Tensor | None] = [None] * len(self.layers)
        self.sample_means: list[torch.Tensor | None] = [None] * len(self.layers)

    def _hook(self, index: int):
        def fn(module: nn.BatchNorm2d, inputs, output):
            x = inputs[0].float()  # statistics in fp32 also under bf16 autocast
            var, mean = torch.var_mean(x, dim=(0, 2, 3), unbiased=False)
            rm, rv = module.running_mean, module.running_var
            self.layer_losses[index] = torch.norm(mean - rm, 2) + torch.norm(var - rv, 2)
            self.sample_means[index] = x.mean((2, 3))
        return fn

    def __enter__(self) -> "BNStatistics":
        self._handles = [layer.register_forward_hook(self._hook(i)) for i, layer in enumerate(self.layers)]
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def remove(self) -> None:
        """Remove the hooks (called automatically on leaving the ``with`` block)."""
        for h in self._handles:
            h.remove()
        self._handles = []

    def loss(self) -> torch.Tensor:
        """Sum over layers of the per-layer distances of the last forward (first layer weighted); a scalar."""
        if any(l is None for l in self.layer_losses):
            raise RuntimeError("BNStatistics.loss() called before a forward pass through the hooked model")
        weights = [self.first_bn_multiplier] + [1.0] * (len(self.layer_losses) - 1)
        return sum(w * l for w, l in zip(weights, self.layer_losses))

    def channel_means(self) -> torch.Tensor:
        """Each image's per-channel mean of every BN layer's input in the last forward, concatenated over the
        layers: ``(N, sum_l C_l)``, differentiable (CMI's embedding of an image)."""
        if any(m is None for m in self.sample_means):
            raise RuntimeError("BNStatistics.channel_means() called before a forward pass through the hooked model")
        return torch.cat(self.sample_means, dim=1)

    def per_layer(self) -> list[float]:
        """The per-layer distances of the last forward as floats (for plots)."""
        return [float(l.detach()) for l in self.layer_losses if l is not None]


class batch_statistics:
    """Context manager: the model's ``BatchNorm2d`` layers normalise with the statistics of each batch instead of
    their running statistics, which stay exactly as they were; everything else stays in eval mode.

    A diagnostic, not a way to evaluate: it tells whether a student trained on synthetic images fails on real
    ones because its running statistics (collected on the synthetic images) do not fit real data, or because its
    features do not. Predictions then depend on the batch, so use batches of hundreds of images::

        with batch_statistics(student):
            preds, targets = predict(student, real_test_loader)

    On exit every module's mode, and each BN layer's momentum and ``num_batches_tracked``, are restored.

    Raises:
        NoBatchNormError: the model has no ``BatchNorm2d``.
    """

    def __init__(self, model: nn.Module):
        self.model = model
        self.layers = batchnorm_layers(model)
        if not self.layers:
            raise NoBatchNormError(f"{type(model).__name__} has no BatchNorm2d layer")

    def __enter__(self) -> nn.Module:
        self._modes = [(m, m.training) for m in self.model.modules()]
        self._saved = [(l.momentum, l.num_batches_tracked.clone()) for l in self.layers]
        self.model.eval()
        for layer in self.layers:
            layer.train()
            layer.momentum = 0.0  # running <- 1 * running + 0 * batch: unchanged
        return self.model

    def __exit__(self, *exc) -> None:
        for layer, (momentum, tracked) in zip(self.layers, self._saved):
            layer.momentum = momentum
            layer.num_batches_tracked.copy_(tracked)
        for m, mode in self._modes:
            m.train(mode)
