"""Jensen-Shannon divergence and Adaptive DeepInversion's competition loss.

Adaptive DeepInversion (ADI; Yin et al. CVPR 2020, Sec. 3.3) adds to DeepInversion's objective the term
``R_compete(x) = 1 - JS(p_T(x), p_S(x))``: minimising it *maximises* the disagreement between teacher and
student, so new images land where the current student is still wrong.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from .kd import reduce_per_sample

LOG2 = math.log(2.0)


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor, temperature: float = 1.0,
                  reduction: str = "batchmean") -> torch.Tensor:
    """Textbook Jensen-Shannon divergence between ``P = softmax(logits_p / T)`` and ``Q = softmax(logits_q / T)``.

    ::

        M  = (P + Q) / 2
        JS = 0.5 * KL(P || M) + 0.5 * KL(Q || M),   KL(A || B) = sum_k A_k (log A_k - log B_k)

    summed over classes, averaged over the batch (``"batchmean"``), in nats: ``0 <= JS <= log 2``, ``0`` iff
    ``P = Q``, close to ``log 2`` for distributions with disjoint supports. It is symmetric in ``P`` and ``Q``.
    Computed from log-probabilities (``log M`` by ``logaddexp``), without clamping, so it stays finite and
    differentiable for extreme logits. No ``T^2`` factor is applied (JS is bounded).

    How NVlabs' DeepInversion code differs (ADI, ``cifar10/deepinversion_cifar10.py``): it clamps ``P``, ``Q``
    and ``M`` to ``[0.01, 0.99]`` (without renormalising) and computes
    ``0.5 * KL(M || P) + 0.5 * KL(M || Q)`` (``KLDivLoss(log P, M)`` is ``KL(M || P)``), the *reverse*
    direction of the textbook definition above, which is neither bounded by ``log 2`` nor the JS divergence;
    it then clamps the result to ``[0, 1]``. This function implements the textbook JS.

    Args:
        logits_p, logits_q: ``(N, K)`` logits (any real values) of the same images.
        temperature: softmax temperature ``T > 0`` (ADI uses 3 in its code; see :func:`competition_loss`).
        reduction: ``"batchmean"`` (mean over the batch of the per-sample JS), ``"sum"`` or ``"none"``
            (a ``(N,)`` tensor).

    Returns:
        A scalar in ``[0, log 2]`` nats (``(N,)`` for ``reduction="none"``).

    Raises:
        ValueError: shapes differ or are not 2-D, ``T <= 0``, or an unknown reduction.
    """
    if logits_p.shape != logits_q.shape or logits_p.dim() != 2:
        raise ValueError(f"expected two (N, K) logit tensors of the same shape, got {tuple(logits_p.shape)} "
                         f"and {tuple(logits_q.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    log_p = F.log_softmax(logits_p.float() / temperature, dim=1)
    log_q = F.log_softmax(logits_q.float() / temperature, dim=1)
    log_m = torch.logaddexp(log_p, log_q) - LOG2
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(dim=1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(dim=1)
    # Rounding can push a per-sample value a hair outside [0, log 2]; the clamp only removes that noise.
    per_sample = (0.5 * kl_pm + 0.5 * kl_qm).clamp(0.0, LOG2)
    return reduce_per_sample(per_sample, reduction)


def competition_loss(teacher_logits: torch.Tensor, student_logits: torch.Tensor,
                     temperature: float = 3.0) -> torch.Tensor:
    """ADI's competition term ``R_compete = 1 - JS(p_T, p_S)`` (Yin et al. CVPR 2020, Sec. 3.3).

    Uses the textbook :func:`js_divergence` (batch mean, nats) at softmax temperature ``T`` (3 in NVlabs'
    code), so the value lies in ``[1 - log 2, 1]`` ~ ``[0.307, 1]``: 1 when student and teacher agree,
    smaller the more they disagree. The images minimise it; the networks are not trained by it.

    Args:
        teacher_logits, student_logits: ``(N, K)``.
        temperature: softmax temperature ``T > 0``.

    Returns:
        A scalar in ``[1 - log 2, 1]``.

    Raises:
        ValueError: as :func:`js_divergence`.
    """
    return 1.0 - js_divergence(teacher_logits, student_logits, temperature)
