"""The knowledge-distillation loss (Hinton et al. 2015; DFKD-FGVC Eq. 2)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float = 1.0,
            reduction: str = "batchmean") -> torch.Tensor:
    """``T^2 * KL(p_T || p_S)`` with ``p = softmax(logits / T)``.

    DFKD-FGVC Eq. 2 writes KL(S||T), but the authors' earlier code, and most DFKD code, compute
    KL(p_T || p_S): the teacher's distribution is the target. The ``T^2`` factor keeps gradient magnitudes
    independent of the temperature (Hinton et al. 2015).

    Args:
        student_logits, teacher_logits: ``(N, K)`` logits of the same images.
        temperature: softmax temperature ``T > 0`` (1 in DFKD-FGVC).
        reduction: ``"batchmean"`` (sum over classes, mean over the batch: the true KL per sample),
            ``"sum"``, or ``"none"`` (a ``(N,)`` tensor of per-sample KLs).

    Returns:
        A non-negative scalar (or ``(N,)`` for ``reduction="none"``), in nats.

    Raises:
        ValueError: shapes differ (e.g. a student with another number of classes) or ``T <= 0``.
    """
    if student_logits.shape != teacher_logits.shape:
        raise ValueError(f"student logits {tuple(student_logits.shape)} and teacher logits "
                         f"{tuple(teacher_logits.shape)} differ: student and teacher must have the same classes")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_ps = F.log_softmax(student_logits / temperature, dim=1)
    log_pt = F.log_softmax(teacher_logits / temperature, dim=1)
    per_sample = (log_pt.exp() * (log_pt - log_ps)).sum(dim=1) * temperature ** 2
    return reduce_per_sample(per_sample, reduction)


def reduce_per_sample(per_sample: torch.Tensor, reduction: str) -> torch.Tensor:
    """Reduce a ``(N,)`` tensor of per-sample divergences: ``"batchmean"`` (mean), ``"sum"`` or ``"none"``.

    Raises:
        ValueError: any other ``reduction``.
    """
    if reduction == "batchmean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"reduction must be 'batchmean', 'sum' or 'none', got {reduction!r}")
