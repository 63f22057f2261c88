"""Attention transfer (Zagoruyko & Komodakis, ICLR 2017), as ZSKT uses it (Micaelli & Storkey 2019, Eq. 2)."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def spatial_attention(feature_map: torch.Tensor) -> torch.Tensor:
    """``f(A) = mean_c A_c^2``, flattened and L2-normalised per image: ``(N, C, H, W) -> (N, H*W)``, unit norm.

    Raises:
        ValueError: not a 4-D tensor.
    """
    if feature_map.dim() != 4:
        raise ValueError(f"spatial_attention expects (N, C, H, W), got {tuple(feature_map.shape)}")
    return F.normalize(feature_map.float().pow(2).mean(1).flatten(1), dim=1)


def attention_transfer_loss(student_maps: Sequence[torch.Tensor], teacher_maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """``sum_l mean((f(A_S^l) - f(A_T^l))^2)`` over the paired stages ``l`` (ZSKT Eq. 2 without beta; the mean is
    over images and positions, as in ZSKT's public code). Channels may differ, spatial sizes may not.

    Args:
        student_maps, teacher_maps: stage outputs ``(N, C_l, H_l, W_l)``, shallow to deep, one per stage each.

    Returns:
        A scalar >= 0 (each term is at most 4 / (H_l W_l)).

    Raises:
        ValueError: different numbers of stages, or a pair with different batch or spatial sizes.
    """
    if len(student_maps) != len(teacher_maps) or not student_maps:
        raise ValueError(f"attention transfer pairs stages: got {len(student_maps)} student and "
                         f"{len(teacher_maps)} teacher maps")
    total = student_maps[0].new_zeros((), dtype=torch.float32)
    for s, t in zip(student_maps, teacher_maps):
        if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
            raise ValueError(f"attention transfer needs equal batch and spatial sizes, got student "
                             f"{tuple(s.shape)} and teacher {tuple(t.shape)}")
        total = total + (spatial_attention(s) - spatial_attention(t)).pow(2).mean()
    return total
