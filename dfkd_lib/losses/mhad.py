"""Mixed high-order attention distillation, L_MHAD (DFKD-FGVC, Shao et al. ICCV 2023, Sec. 4.2, Eq. 7).

At each tapped stage ``m`` the teacher's feature ``F_m^t`` and the (adapted) student's feature ``F_m^s`` pass
through the *same* MHA module, and the attended maps are compared::

    L_MHAD = mean_m  D( MHA_m(F_m^t), MHA_m(Adapter_m(F_m^s)) )

Eq. 7 writes ``D`` as a plain mean squared error over ``(N, C)`` (and the spatial positions): that is
``normalize=False`` here.

**The degenerate solution and its guard.** The MHA module is trainable (it is trained with the student) and it
is the only thing between the two sides, and its output is ``A * x`` with ``A`` in (0, 1). Driving ``A`` to 0
shrinks both attended maps to 0, and the plain MSE with them, without the student learning anything
(``tests/test_mhad.py`` shows it: optimising the MHA module alone makes the plain loss vanish). With
``normalize=True`` (default) each sample's attended map is flattened and divided by its L2 norm before the
comparison, so a common rescaling of both sides leaves the loss unchanged::

    D(a, b) = mean_i || a_i/||a_i|| - b_i/||b_i|| ||^2  =  mean_i (2 - 2 cos(a_i, b_i)),   in [0, 4]

(a per-sample sum over ``C*H*W``, not an element mean, so that its size does not shrink with the map size and
``beta = 10`` keeps a comparable weight to the other terms).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def attended_distance(a: torch.Tensor, b: torch.Tensor, normalize: bool = True) -> torch.Tensor:
    """Distance between two attended maps ``(N, C, H, W)`` of the same shape, a non-negative scalar.

    ``normalize=False``: mean squared error over all elements (Eq. 7). ``normalize=True``: mean over samples
    of the squared distance between the per-sample L2-normalised flattened maps, in [0, 4] (see module doc).
    """
    if not normalize:
        return F.mse_loss(a, b)
    a, b = F.normalize(a.flatten(1), dim=1), F.normalize(b.flatten(1), dim=1)
    return (a - b).pow(2).sum(dim=1).mean()


def mhad_loss(student_stages: Sequence[torch.Tensor], teacher_stages: Sequence[torch.Tensor],
              modules: Sequence[nn.Module], adapters: Sequence[nn.Module | None] | None = None,
              normalize: bool = True) -> torch.Tensor:
    """L_MHAD (DFKD-FGVC Eq. 7): attended teacher vs attended, adapted student features, averaged over stages.

    Args:
        student_stages: the tapped student maps ``(N, C_s_m, H_m, W_m)``, one per stage ``m``.
        teacher_stages: the teacher maps of the same stages ``(N, C_t_m, H_m, W_m)``.
        modules: one MHA module per stage (:class:`~dfkd_lib.models.attention.MixedHighOrderAttention` with
            ``C_t_m`` channels), applied to both sides.
        adapters: one module per stage lifting ``C_s_m`` to ``C_t_m`` (e.g.
            :class:`~dfkd_lib.models.attention.Adapter`), or ``None`` for a stage (or for all) whose channels
            already match.
        normalize: compare per-sample L2-normalised maps (default; the guard against the collapse of both
            sides to 0) or use the plain MSE of Eq. 7.

    Returns:
        A non-negative scalar: mean over stages of :func:`attended_distance` (in [0, 4] when ``normalize``).

    Raises:
        ValueError: empty or mismatched list lengths; a stage whose batch or spatial sizes differ between
            student and teacher; a channel mismatch that no adapter resolves.
    """
    n = len(teacher_stages)
    if n == 0:
        raise ValueError("mhad_loss needs at least one stage")
    if adapters is None:
        adapters = [None] * n
    if not (len(student_stages) == n == len(modules) == len(adapters)):
        raise ValueError(f"mhad_loss got {len(student_stages)} student stages, {n} teacher stages, "
                         f"{len(modules)} MHA modules and {len(adapters)} adapters: the lengths must match")
    total = 0.0
    for m, (s, t, mha, adapter) in enumerate(zip(student_stages, teacher_stages, modules, adapters)):
        if s.dim() != 4 or t.dim() != 4:
            raise ValueError(f"stage {m}: expected (N, C, H, W) maps, got student {tuple(s.shape)} and teacher "
                             f"{tuple(t.shape)}")
        if s.shape[0] != t.shape[0] or s.shape[2:] != t.shape[2:]:
            raise ValueError(f"stage {m}: student map {tuple(s.shape)} and teacher map {tuple(t.shape)} differ in "
                             "batch or spatial size; tap stages of equal resolution (or use the penultimate level)")
        if adapter is not None:
            s = adapter(s)
        if s.shape[1] != t.shape[1]:
            raise ValueError(f"stage {m}: student has {s.shape[1]} channels but the teacher {t.shape[1]}; give an "
                             f"Adapter({s.shape[1]}, {t.shape[1]}) for this stage")
        total = total + attended_distance(mha(t), mha(s), normalize)
    return total / n


__all__ = ["mhad_loss", "attended_distance"]
