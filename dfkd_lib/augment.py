"""Augmentation of the student's synthetic batches: random crop with padding and horizontal flip.

CMI (Fang et al. IJCAI 2021) and Fast-DFKD (Fang et al. AAAI 2022) augment every image they draw from their
memory bank before the student step (``RandomCrop(size, padding=4)`` and ``RandomHorizontalFlip()`` in their
public code), so that a bank of a few hundred images yields many different student inputs. Teacher and student
both see the augmented batch, so the KD target is the teacher's answer on exactly the image the student sees.
Switched on by ``DistillConfig.augment``; off by default, as in Algorithm 1 of DFKD-FGVC.
"""
from __future__ import annotations

import torch
from torchvision.transforms import v2

__all__ = ["augment_batch"]

#: Pixels of padding before the random crop (CMI, Fast-DFKD).
PADDING = 4


def augment_batch(x: torch.Tensor, padding: int = PADDING) -> torch.Tensor:
    """Each image of ``x`` padded by ``padding`` pixels (edge values repeated), randomly cropped back to its
    size, and flipped horizontally with probability 1/2; each image draws its own crop and flip from torch's
    global random generator (so a seeded run repeats exactly).

    Args:
        x: images ``(N, C, H, W)`` in any value range (normalised or not); not modified.
        padding: pixels of edge padding on each side, ``>= 0`` (0 leaves only the flips).

    Returns:
        A new tensor ``(N, C, H, W)``, same dtype, device and memory format as ``x``.

    Raises:
        ValueError: ``x`` is not 4-D or ``padding < 0``.
    """
    if x.dim() != 4:
        raise ValueError(f"augment_batch expects images (N, C, H, W), got shape {tuple(x.shape)}")
    if padding < 0:
        raise ValueError(f"padding must be >= 0 pixels, got {padding}")
    h, w = x.shape[-2:]
    transform = v2.Compose([v2.RandomCrop((h, w), padding=padding, padding_mode="edge"), v2.RandomHorizontalFlip()])
    out = torch.stack([transform(img) for img in x])
    return out.contiguous(memory_format=torch.channels_last) if x.is_contiguous(
        memory_format=torch.channels_last) and not x.is_contiguous() else out
