"""Where a classifier looks: Grad-CAM (Selvaraju et al. ICCV 2017) through ``pytorch_grad_cam``, wrapped so that
it is safe on the book's models, and the teacher-student CAM difference of SpaceshipNet's supplementary Table C.

:func:`grad_cam` leaves the model as it found it (modes, ``requires_grad`` flags, no hook left behind), works on
frozen teachers and under a caller's ``torch.no_grad()``, hooks whole residual blocks only (a sub-layer's hook can
fire twice or see an in-place-modified tensor), and checks the class targets itself (the library swallows an
``IndexError`` raised inside its context).
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from .images import to_pixels


def stage_block(model: nn.Module, stage: int) -> nn.Module:
    """The last residual block of stage ``stage`` (0-3) of a dfkd_lib ResNet (CIFAR-style or torchvision).

    Raises:
        ValueError: ``stage`` outside 0..3, or a model without ``layer1``..``layer4``.
    """
    if not 0 <= stage <= 3:
        raise ValueError(f"stage must be 0..3, got {stage}")
    for owner in (model, getattr(model, "net", None)):
        layer = getattr(owner, f"layer{stage + 1}", None) if owner is not None else None
        if isinstance(layer, nn.Sequential) and len(layer):
            return layer[-1]
    raise ValueError(f"{type(model).__name__} has no layer1..layer4 stages; pass the block to hook as target_layer")


def grad_cam(model: nn.Module, x: torch.Tensor, targets: torch.Tensor | Sequence[int], stage: int = 3,
             target_layer: nn.Module | None = None) -> np.ndarray:
    """Grad-CAM maps of ``model`` for ``x``, one per image, for the given classes.

    Args:
        model: classifier ``(N, C, H, W) -> (N, K)``.
        x: images ``(N, C, H, W)`` in the model's input space (detached inside; generator output is fine).
        targets: class index per image, ``(N,)``.
        stage: which stage's last block to hook (0-3; 3 is the deepest, the paper's choice).
        target_layer: a block to hook instead of ``stage``.

    Returns:
        ``(N, H, W)`` float32 maps in [0, 1], resized to the input size (``pytorch_grad_cam``'s scaling).

    Raises:
        ValueError: a target outside ``[0, K)``, or a number of targets other than ``N``.
    """
    from pytorch_grad_cam import GradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    targets = [int(t) for t in (targets.tolist() if torch.is_tensor(targets) else targets)]
    if len(targets) != x.shape[0]:
        raise ValueError(f"{len(targets)} targets for {x.shape[0]} images")
    layer = target_layer if target_layer is not None else stage_block(model, stage)
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    try:
        with torch.enable_grad():
            with torch.no_grad():
                k = model.eval()(x[:1]).shape[1]
            bad = [t for t in targets if not 0 <= t < k]
            if bad:
                raise ValueError(f"targets must be class indices in [0, {k}), got {bad[:5]}")
            inp = x.detach().clone().float().requires_grad_(True)
            with GradCAM(model=model, target_layers=[layer]) as cam:
                maps = cam(input_tensor=inp, targets=[ClassifierOutputTarget(t) for t in targets])
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)
            p.grad = None
    return np.asarray(maps, dtype=np.float32)


def cam_difference(cam_a: np.ndarray, cam_b: np.ndarray) -> dict[str, float]:
    """Mean absolute and mean squared difference of two sets of CAMs ``(N, H, W)`` in [0, 1], after rescaling
    both to [0, 255] (SpaceshipNet, supplementary Table C: teacher vs student CAM difference).

    Raises:
        ValueError: the two sets differ in shape.
    """
    a, b = np.asarray(cam_a, dtype=np.float64) * 255, np.asarray(cam_b, dtype=np.float64) * 255
    if a.shape != b.shape:
        raise ValueError(f"CAM sets differ in shape: {a.shape} vs {b.shape}")
    return {"mae": float(np.abs(a - b).mean()), "mse": float(((a - b) ** 2).mean())}


def cam_overlays(x: torch.Tensor, cams: np.ndarray, spec, weight: float = 0.5) -> np.ndarray:
    """CAMs laid over their images (``pytorch_grad_cam.utils.image.show_cam_on_image``): ``(N, H, W, 3)`` uint8.

    ``x`` is in the teacher's input space; :meth:`~dfkd_lib.data.DatasetSpec.denormalize` brings it back to
    [0, 1] RGB (grey images are repeated to three channels).
    """
    from pytorch_grad_cam.utils.image import show_cam_on_image

    pixels = to_pixels(x, spec)
    if pixels.shape[-1] == 1:
        pixels = np.repeat(pixels, 3, axis=-1)
    return np.stack([show_cam_on_image(p.astype(np.float32), c, use_rgb=True, image_weight=1 - weight)
                     for p, c in zip(pixels, cams)])
