"""Image priors of model inversion: total variation and the l2 norm of the image.

DeepDream-style priors that DeepInversion (Yin et al. CVPR 2020, Sec. 3.2) keeps in its regulariser
``R_prior(x) = alpha_tv * R_TV(x) + alpha_l2 * R_l2(x)`` (DeepInversion's image prior, Sec. 3.1, after DeepDream): total variation favours
piecewise-smooth images, the l2 norm keeps pixel values small. Neither the paper's text nor its equation fixes
the exact norm, the neighbourhood or how a batch is reduced; this module makes each of these a named option.
Both functions are pure functions of a tensor and differentiable with respect to it.

Reductions (the public codes disagree silently, so every function says which one it computes):

``"mean"`` (default)
    the per-image value averaged over the batch: independent of the batch size, and its gradient per pixel
    scales like that of a batch-mean cross-entropy (``1/N``).
``"sum"``
    the per-image values summed over the batch.
``"none"``
    the per-image values, a ``(N,)`` tensor.
``"global"``
    what NVlabs' DeepInversion code computes: the norm of the *whole batch tensor* (for the l2 forms), i.e.
    ``sqrt(sum_i v_i**2)`` of the per-image norms ``v_i``. It grows like ``sqrt(N)``: a weight tuned for
    ``"global"`` at batch size ``N`` corresponds to ``weight * sqrt(N)`` under ``"mean"``.
"""
from __future__ import annotations

import torch

_REDUCTIONS = ("mean", "sum", "none", "global")


def _check_image(x: torch.Tensor, name: str) -> None:
    if x.dim() != 4:
        raise ValueError(f"{name} expects images (N, C, H, W), got a tensor of shape {tuple(x.shape)}")


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {', '.join(map(repr, _REDUCTIONS))}, got {reduction!r}")


def image_differences(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The four neighbour differences of DeepInversion's total variation.

    With ``x[n, c, i, j]`` (row ``i``, column ``j``)::

        horizontal     x[..., i, j]     - x[..., i, j + 1]       (N, C, H,     W - 1)
        vertical       x[..., i, j]     - x[..., i + 1, j]       (N, C, H - 1, W)
        anti-diagonal  x[..., i + 1, j] - x[..., i, j + 1]       (N, C, H - 1, W - 1)
        diagonal       x[..., i, j]     - x[..., i + 1, j + 1]   (N, C, H - 1, W - 1)

    Args:
        x: images ``(N, C, H, W)``, any real values.

    Returns:
        The four difference tensors in the order above.

    Raises:
        ValueError: ``x`` is not 4-D.
    """
    _check_image(x, "image_differences")
    horizontal = x[:, :, :, :-1] - x[:, :, :, 1:]
    vertical = x[:, :, :-1, :] - x[:, :, 1:, :]
    anti_diagonal = x[:, :, 1:, :-1] - x[:, :, :-1, 1:]
    diagonal = x[:, :, :-1, :-1] - x[:, :, 1:, 1:]
    return horizontal, vertical, anti_diagonal, diagonal


def total_variation(x: torch.Tensor, reduction: str = "mean", norm: str = "l2") -> torch.Tensor:
    """DeepInversion's four-direction total variation ``R_TV`` (Yin et al. CVPR 2020, Sec. 3.1).

    For each image ``x_i`` and each of the four difference tensors ``D_d x_i`` of :func:`image_differences`
    (horizontal, vertical and the two diagonals):

    ``norm="l2"`` (default; DeepInversion's ``R_TV`` on CIFAR-10 and its ``tv_l2`` term on ImageNet)::

        TV_l2(x_i) = sum_d || D_d x_i ||_2        # Frobenius norm over (C, H', W'), NOT squared

    ``norm="l1"`` (the ``tv_l1`` option of DeepInversion's ImageNet code)::

        TV_l1(x_i) = sum_d mean |D_d x_i|         # mean absolute difference over (C, H', W')

    then reduced over the batch as ``reduction`` says (see the module docstring): ``"mean"`` (default),
    ``"sum"``, ``"none"`` (a ``(N,)`` tensor) or ``"global"`` (NVlabs' exact form: for ``"l2"`` the norm of
    each difference over the whole batch, ``sum_d ||D_d x||_2``; for ``"l1"`` it equals ``"mean"``).

    Args:
        x: images ``(N, C, H, W)`` (any value range: usually the teacher's normalised input space).
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"global"``.
        norm: ``"l2"`` or ``"l1"``.

    Returns:
        A non-negative scalar (``(N,)`` for ``reduction="none"``), zero exactly for constant images.

    Raises:
        ValueError: ``x`` is not 4-D, or an unknown ``reduction`` / ``norm``.
    """
    _check_reduction(reduction)
    if norm not in ("l2", "l1"):
        raise ValueError(f"norm must be 'l2' or 'l1', got {norm!r}")
    diffs = image_differences(x)
    n = x.shape[0]
    if norm == "l2":
        if reduction == "global":
            return sum(torch.linalg.vector_norm(d) for d in diffs)
        per_image = sum(torch.linalg.vector_norm(d.reshape(n, -1), dim=1) for d in diffs)
    else:
        per_image = sum(d.abs().reshape(n, -1).mean(dim=1) for d in diffs)
        if reduction == "global":
            return per_image.mean()
    return _reduce(per_image, reduction)


def l2_prior(x: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    """The l2 image prior ``R_l2`` of DeepInversion (Yin et al. CVPR 2020, Sec. 3.1; DeepDream's prior).

    Per image the plain (not squared) Euclidean norm over all its values, ``||x_i||_2`` over ``(C, H, W)``, as
    in DeepInversion's ImageNet code, then reduced over the batch: ``"mean"`` (default, the ImageNet code's
    choice), ``"sum"``, ``"none"`` (a ``(N,)`` tensor) or ``"global"`` (the norm of the whole batch tensor,
    as in the CIFAR-10 code). In the teacher's *normalised* input space the prior pulls images towards the
    dataset mean, not towards black.

    Args:
        x: images ``(N, C, H, W)``.
        reduction: ``"mean"``, ``"sum"``, ``"none"`` or ``"global"``.

    Returns:
        A non-negative scalar (``(N,)`` for ``reduction="none"``).

    Raises:
        ValueError: ``x`` is not 4-D, or an unknown ``reduction``.
    """
    _check_image(x, "l2_prior")
    _check_reduction(reduction)
    if reduction == "global":
        return torch.linalg.vector_norm(x)
    return _reduce(torch.linalg.vector_norm(x.reshape(x.shape[0], -1), dim=1), reduction)


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return per_image.mean()
    if reduction == "sum":
        return per_image.sum()
    return per_image
