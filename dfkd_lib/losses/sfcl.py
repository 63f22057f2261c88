"""Semantic feature contrast learning, L_SFCL (DFKD-FGVC, Shao et al. ICCV 2023, Sec. 4.3, Eq. 8-9).

The penultimate (pooled) features of teacher and student on the same ``N`` synthetic images go through one
shared MLP projector ``C`` (:class:`Projector`, "two hidden linear layers") into a common space, giving
``2N`` vectors ``F_t^1..F_t^N, F_s^1..F_s^N``. With cosine similarity ``sim`` (Eq. 8) and temperature ``tau``,
the teacher vector ``i`` is the anchor, the student vector of the same image the positive and the other
``2(N-1)`` vectors (``F_t^k`` and ``F_s^k``, ``k != i``) the negatives (NT-Xent, as in SimCLR)::

    l_i = -log  exp(sim(F_t^i, F_s^i)/tau)
               / ( sum_{k != i} exp(sim(F_t^i, F_t^k)/tau) + sum_k exp(sim(F_t^i, F_s^k)/tau) )
    L_SFCL = mean_i l_i

The denominator runs over all ``2N`` vectors except the anchor itself (the positive included), which is what
Eq. 9's indicator must mean: as printed, ``1[k != i]`` "returns 1 if i = j", a typo. Only teacher vectors are
anchors (the paper's wording); the loss is not symmetrised.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..models.mlp import two_hidden_layer_mlp


class Projector(nn.Module):
    """The SFCL projector ``C``: an MLP with two hidden layers, ``(N, in_dim) -> (N, out_dim)``.

    ``Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim, hidden_dim) - ReLU - Linear(hidden_dim, out_dim)``;
    the output is linear (its scale does not matter: :func:`sfcl_loss` L2-normalises it).

    Raises:
        ValueError: a non-positive size; an input that is not ``(N, in_dim)``.
    """

    def __init__(self, in_dim: int, hidden_dim: int, out_dim: int):
        super().__init__()
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.net = two_hidden_layer_mlp(in_dim, hidden_dim, out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_dim:
            raise ValueError(f"Projector expected (N, {self.in_dim}), got {tuple(x.shape)}")
        return self.net(x)

    @torch.no_grad()
    def activity(self, x: torch.Tensor) -> dict[str, float]:
        """How alive the projector is on a batch ``x`` ``(N, in_dim)``: the fraction of units of each hidden
        layer that respond (``> 0`` after the ReLU) to at least one input, in [0, 1], and the mean cosine of the
        inputs and of the outputs to their own mean, in [-1, 1] (1: all point one way, a collapse)."""
        def spread(v):
            return F.cosine_similarity(v, v.mean(0, keepdim=True)).mean().item()

        h1 = torch.relu(self.net[0](x))
        h2 = torch.relu(self.net[2](h1))
        return {"input: mean cos to their mean": spread(x),
                "hidden 1: units active on some input": (h1 > 0).any(0).float().mean().item(),
                "hidden 2: units active on some input": (h2 > 0).any(0).float().mean().item(),
                "output: mean cos to their mean": spread(self.net[4](h2))}


def sfcl_logits(z_teacher: torch.Tensor, z_student: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """The ``(N, 2N)`` logits of Eq. 9: row ``i`` holds ``sim(F_t^i, F_t^k)/tau`` (columns ``k < N``) and
    ``sim(F_t^i, F_s^k)/tau`` (columns ``N + k``), cosine similarities after L2 normalisation (Eq. 8), with the
    anchor itself (column ``i``) at ``-inf``; the positive of row ``i`` is column ``N + i``. Its row softmax is
    what the loss pushes onto the positives. Shapes and errors as :func:`sfcl_loss`."""
    if z_teacher.dim() != 2 or z_teacher.shape != z_student.shape:
        raise ValueError(f"sfcl_loss expects two (N, D) tensors of the same shape, got {tuple(z_teacher.shape)} "
                         f"and {tuple(z_student.shape)}")
    n = z_teacher.shape[0]
    if n < 2:
        raise ValueError(f"sfcl_loss needs N >= 2 samples (there are no negatives otherwise), got N={n}")
    if not tau > 0:
        raise ValueError(f"tau must be > 0, got {tau}")
    t = F.normalize(z_teacher, dim=1)
    s = F.normalize(z_student, dim=1)
    logits = t @ torch.cat([t, s], dim=0).t() / tau                       # (N, 2N): [t_i.t_k | t_i.s_k]
    self_mask = torch.eye(n, 2 * n, dtype=torch.bool, device=logits.device)  # the anchor itself, k == i
    return logits.masked_fill(self_mask, float("-inf"))


def sfcl_loss(z_teacher: torch.Tensor, z_student: torch.Tensor, tau: float = 0.07) -> torch.Tensor:
    """L_SFCL (DFKD-FGVC Eq. 9): NT-Xent with teacher anchors and student positives, mean over anchors.

    Args:
        z_teacher, z_student: projected features ``(N, D)`` of the same ``N`` images (row ``i`` of both is
            image ``i``); any scale (L2-normalised here, Eq. 8).
        tau: temperature ``> 0`` (not given by the paper; 0.07 as in the authors' earlier code).

    Returns:
        A scalar ``>= 0``; it is at least ``log(1 + 2(N-1) exp(-2/tau))`` and at most about
        ``2/tau + log(2N - 1)``.

    Raises:
        ValueError: inputs not 2-D or of different shapes, ``N < 2`` (no negatives), ``tau <= 0``.
    """
    logits = sfcl_logits(z_teacher, z_student, tau)
    n = logits.shape[0]
    positives = torch.arange(n, 2 * n, device=logits.device)               # column of s_i
    return F.cross_entropy(logits, positives)


__all__ = ["Projector", "sfcl_loss"]
