"""One forward pass of teacher and student on a batch, packed for the losses (:class:`Step`), and the checks
around it: what the engine and every synthesiser share."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
import torch
from torch import nn

from .hooks import BNStatistics
from .models.features import Features
from .utils import autocast


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stopped and the last good checkpoint was kept."""



@dataclass
class Step:
    """Everything a loss may look at in one optimisation step.

    Attributes:
        x: synthetic images ``(N, C, H, W)`` in the teacher's input space (requires grad in the generator phase).
        teacher_logits, student_logits: ``(N, K)``.
        teacher_features, student_features: :class:`~dfkd_lib.models.features.Features` of the same images.
        bn_loss: the teacher's BN-statistics distance (scalar, DFKD-FGVC Eq. 3), or ``None`` when the
            method has ``uses_bn = False``.
        phase: ``"generator"`` or ``"student"``.
        labels: ``(N,)`` true classes when the batch comes from a labelled source (the real-data reference
            runs), else ``None``.
    """

    x: torch.Tensor
    teacher_logits: torch.Tensor
    teacher_features: Features
    student_logits: torch.Tensor
    student_features: Features
    bn_loss: torch.Tensor | None
    phase: str
    labels: torch.Tensor | None = None


def forward_step(teacher: nn.Module, student: nn.Module, x: torch.Tensor, method: nn.Module, phase: str,
                 amp: str | None = None, labels: torch.Tensor | None = None) -> Step:
    """Run teacher and student on ``x`` and pack a :class:`Step`.

    In the generator phase gradients flow through both networks into ``x`` (their weights are frozen by the
    caller) and the teacher's BN statistics are recorded when ``method.uses_bn``; in the student phase the
    teacher runs under ``no_grad``, unless ``method.teacher_graph`` asks for its graph (on a detached copy of
    ``x`` that requires grad, so that gradients *within* the teacher can be taken, e.g. for its Grad-CAMs).
    """
    device = x.device
    bn_ctx = BNStatistics(teacher) if (method.uses_bn and phase == "generator") else contextlib.nullcontext()
    teacher_graph = phase == "student" and getattr(method, "teacher_graph", False)
    grad_ctx = torch.enable_grad() if phase == "generator" or teacher_graph else torch.no_grad()
    t_in = x.detach().requires_grad_(True) if teacher_graph else x
    with autocast(device, amp):
        with bn_ctx as bn, grad_ctx:
            t_logits, t_feats = teacher(t_in, return_features=True)
        s_logits, s_feats = student(x, return_features=True)
    bn_loss = bn.loss() if bn is not None else None
    return Step(x, t_logits.float(), t_feats, s_logits.float(), s_feats, bn_loss, phase, labels)


def as_batch(sample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A synthesiser's sample as ``(images, labels or None)``, detached (labelled sources return a pair)."""
    x, y = sample if isinstance(sample, tuple) else (sample, None)
    return x.detach(), y
def check_finite(loss: torch.Tensor, where: str) -> None:
    """Raise :class:`NonFiniteLossError` if ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"{where} loss became {loss.item()}; stopping (the last checkpoint written, "
                                 "if any, is the last good one)")
