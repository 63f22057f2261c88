"""CMI's instance-discrimination loss: each synthetic image's global view must find its own local view among the
other images of the batch and the memory bank (Fang et al., "Contrastive Model Inversion for Data-Free Knowledge
Distillation", IJCAI 2021, Sec. 3.3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def instance_contrastive_loss(anchor: torch.Tensor, positive: torch.Tensor, bank: torch.Tensor | None = None,
                              temperature: float = 0.1) -> torch.Tensor:
    """InfoNCE over L2-normalised embeddings, batch mean (nats)::

        L = -1/N sum_i log( exp(a_i . p_i / tau) / (sum_j exp(a_i . p_j / tau) + sum_m exp(a_i . b_m / tau)) )

    The positives of the other images (``p_j``, ``j != i``) and the bank entries ``b_m`` are the negatives.

    Args:
        anchor: embeddings of the global views ``(N, D)``.
        positive: embeddings of the local views of the same images ``(N, D)``.
        bank: embeddings of earlier images ``(M, D)``, or ``None``.
        temperature: ``tau > 0``.

    Returns:
        A scalar ``>= 0``; ``log(N + M)`` when all embeddings are equal.

    Raises:
        ValueError: mismatched shapes or ``temperature <= 0``.
    """
    if anchor.dim() != 2 or anchor.shape != positive.shape:
        raise ValueError(f"anchor and positive must both be (N, D), got {tuple(anchor.shape)} and "
                         f"{tuple(positive.shape)}")
    if bank is not None and (bank.dim() != 2 or bank.shape[1] != anchor.shape[1]):
        raise ValueError(f"bank must be (M, {anchor.shape[1]}), got {tuple(bank.shape)}")
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    a, p = F.normalize(anchor, dim=1), F.normalize(positive, dim=1)
    keys = p if bank is None or len(bank) == 0 else torch.cat([p, F.normalize(bank, dim=1)])
    logits = a @ keys.t() / temperature                     # (N, N + M); the diagonal holds the positives
    return F.cross_entropy(logits, torch.arange(len(a), device=a.device))
