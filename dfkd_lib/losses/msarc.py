"""SpaceshipNet's multi-scale spatial activation region consistency (mSARC): the student's class activation maps
must match the teacher's at every stage (Yu et al., "Data-Free Knowledge Distillation via Feature Exchange and
Activation Region Constraint", CVPR 2023, supplementary Eq. A1-A3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fc_cam(features: torch.Tensor, fc_weight: torch.Tensor) -> torch.Tensor:
    """CAMs of every class from the last stage (Eq. A2; Zhou et al. 2016): the final linear layer as a 1x1 conv.

    Args:
        features: the map that is globally pooled before the final linear layer, ``(N, C, h, w)``.
        fc_weight: that layer's weight ``(K, C)``.

    Returns:
        ``(N, K, h, w)``: channel ``c`` is ``sum_p w_p^c f_p``.
    """
    return torch.einsum("kc,nchw->nkhw", fc_weight.to(features.dtype), features)


def grad_weighted_cam(stage: torch.Tensor, scores: torch.Tensor, create_graph: bool = False) -> torch.Tensor:
    """Grad-CAM-style CAM of a shallower stage (Eq. A3; Selvaraju et al. 2017): ``sum_p alpha_p f_p`` with
    ``alpha_p`` the spatial mean of ``d score / d f_p``.

    Args:
        stage: a feature map ``(N, C, h, w)`` that ``scores`` depend on.
        scores: one pre-softmax class score per image ``(N,)`` (e.g. the teacher's predicted class).
        create_graph: keep the graph of the gradient (to train through the CAM, as for the student).

    Returns:
        ``(N, 1, h, w)``.
    """
    grads, = torch.autograd.grad(scores.sum(), stage, create_graph=create_graph, retain_graph=True)
    return (grads.mean((2, 3), keepdim=True) * stage).sum(1, keepdim=True)


def msarc_loss(student_cams: list[torch.Tensor], teacher_cams: list[torch.Tensor]) -> torch.Tensor:
    """``sum_k mean ||CAM_k(S) - CAM_k(T)||^2`` over the paired stages (Eq. A1; mean over images, classes and
    positions), a scalar ``>= 0``.

    Raises:
        ValueError: different numbers of maps, or a pair of different shapes.
    """
    if len(student_cams) != len(teacher_cams):
        raise ValueError(f"{len(student_cams)} student CAMs but {len(teacher_cams)} teacher CAMs")
    total = student_cams[0].new_zeros(())
    for s, t in zip(student_cams, teacher_cams):
        if s.shape != t.shape:
            raise ValueError(f"CAM shapes differ: student {tuple(s.shape)}, teacher {tuple(t.shape)}")
        total = total + F.mse_loss(s.float(), t.float())
    return total
