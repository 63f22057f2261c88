"""DFKD-FGVC's attention and contrast, in pictures: generator images above the attention maps of its blocks
(SAM), and the teacher/student similarity matrices of SFCL."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import torch

from .images import to_pixels


def plot_block_maps(images: torch.Tensor, maps: Sequence[torch.Tensor], spec, blocks: Sequence[int] | None = None,
                    n: int = 8, titles: Sequence[str] | None = None, suptitle: str | None = None,
                    size: float = 1.1, cmap: str = "magma", scale: str = "row"):
    """Images in the first row, then one row of attention maps per selected block; returns the figure.

    Args:
        images: ``(N, C, H, W)`` in the teacher's input space (denormalised with ``spec`` for display).
        maps: one tensor per block, ``(N, 1, h, w)`` or ``(N, h, w)`` (e.g.
            ``AttentionGenerator.attention_maps(z, channel_mean=True)``); each map is shown at its own
            resolution, stretched over the image's extent.
        blocks: indices into ``maps`` to show (default: all).
        scale: ``"row"`` (default: a block's maps share one colour scale, so images can be compared) or
            ``"image"`` (each map from its own minimum to its maximum, to see where each image's mass lies).
        n: number of images (columns), at most ``N``.
        titles: one title per shown image.

    Raises:
        ValueError: ``maps`` empty, a map whose batch is smaller than ``n``, a block index out of range, an
            unknown ``scale``.
    """
    if len(maps) == 0:
        raise ValueError("plot_block_maps needs at least one map")
    if scale not in ("row", "image"):
        raise ValueError(f"scale must be 'row' or 'image', got {scale!r}")
    blocks = list(range(len(maps))) if blocks is None else list(blocks)
    for b in blocks:
        if not 0 <= b < len(maps):
            raise ValueError(f"block {b} out of range: there are {len(maps)} maps")
    n = min(n, images.shape[0])
    pixels = to_pixels(images[:n], spec)
    rows = 1 + len(blocks)
    fig, axes = plt.subplots(rows, n, figsize=(size * n, size * rows + (0.35 if suptitle else 0)), squeeze=False)
    for j in range(n):
        img = pixels[j]
        axes[0, j].imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                          vmin=0, vmax=1)
        if titles is not None:
            axes[0, j].set_title(titles[j], fontsize=7)
    for r, b in enumerate(blocks, start=1):
        m = maps[b].detach().float().cpu()
        m = m[:, 0] if m.dim() == 4 else m
        if m.shape[0] < n:
            raise ValueError(f"block {b} has maps for {m.shape[0]} images, fewer than n={n}")
        vmin, vmax = m[:n].min().item(), m[:n].max().item()
        for j in range(n):
            lo, hi = (vmin, vmax) if scale == "row" else (m[j].min().item(), m[j].max().item())
            axes[r, j].imshow(m[j].numpy(), cmap=cmap, vmin=lo, vmax=hi, interpolation="nearest")
        axes[r, 0].set_ylabel(f"block {b}\n{m.shape[-2]}x{m.shape[-1]}", fontsize=7)
    for ax in axes.ravel():
        ax.set_xticks([]), ax.set_yticks([])
        for s in ax.spines.values():
            s.set_visible(False)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def similarity_stats(sim: torch.Tensor) -> dict[str, float]:
    """Summary of a square similarity matrix ``sim[i, k] = sim(teacher_i, student_k)``.

    Returns ``diagonal`` (mean of ``sim[i, i]``), ``off_diagonal`` (mean of the others), ``gap`` (their
    difference) and ``top1`` (fraction of rows whose largest entry is on the diagonal: the teacher vector of
    image ``i`` is closest to the student vector of the same image).

    Raises:
        ValueError: not a square matrix of side >= 2.
    """
    if sim.dim() != 2 or sim.shape[0] != sim.shape[1] or sim.shape[0] < 2:
        raise ValueError(f"expected a square (N, N) matrix with N >= 2, got {tuple(sim.shape)}")
    s = sim.detach().float()
    n = s.shape[0]
    eye = torch.eye(n, dtype=torch.bool)
    diag, off = s[eye].mean().item(), s[~eye].mean().item()
    top1 = (s.argmax(dim=1) == torch.arange(n)).float().mean().item()
    return {"diagonal": diag, "off_diagonal": off, "gap": diag - off, "top1": top1}


def plot_similarity(sim: torch.Tensor, ax=None, title: str | None = None, vmin: float = -1.0, vmax: float = 1.0,
                    cmap: str = "vlag", cbar: bool = True, label: str = "cosine similarity"):
    """A similarity matrix as a seaborn heat map (rows: teacher vectors, columns: student vectors); returns the
    axes. The title gets the diagonal/off-diagonal means of :func:`similarity_stats`."""
    import seaborn as sns

    s = sim.detach().float().cpu().numpy()
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.2))
    sns.heatmap(s, ax=ax, vmin=vmin, vmax=vmax, cmap=cmap, square=True, cbar=cbar, xticklabels=False,
                yticklabels=False, cbar_kws={"label": label, "shrink": 0.8} if cbar else None)
    st = similarity_stats(sim)
    text = f"diag {st['diagonal']:.2f}, off {st['off_diagonal']:.2f}"
    ax.set_title(f"{title}\n{text}" if title else text, fontsize=9)
    ax.set_xlabel("student k", fontsize=8)
    ax.set_ylabel("teacher i", fontsize=8)
    return ax


def plot_sfcl_softmax(z_teacher: torch.Tensor, z_student: torch.Tensor, tau: float, ax=None, annotate: bool = False,
                      title: str | None = None):
    """The row softmax of the SFCL logits (:func:`~dfkd_lib.losses.sfcl_logits`, Eq. 9) as a heat map ``(N, 2N)``:
    left of the black line the teacher negatives, right of it the student vectors with the positives (framed)
    on their diagonal; the loss is small when each row's weight sits on its positive. Returns the axes."""
    import seaborn as sns

    from ..losses import sfcl_logits

    probs = torch.softmax(sfcl_logits(z_teacher.detach().float(), z_student.detach().float(), tau), 1).cpu()
    n = probs.shape[0]
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3))
    sns.heatmap(probs.numpy(), ax=ax, cmap="Greens", vmin=0, vmax=1, cbar=False, annot=annotate, fmt=".2f",
                annot_kws={"fontsize": 6}, xticklabels=annotate, yticklabels=annotate)
    ax.axvline(n, c="k", lw=1.5)
    for i in range(n):
        ax.add_patch(plt.Rectangle((n + i, i), 1, 1, fill=False, ec="k", lw=1 if n > 8 else 1.5))
    ax.set_title(title or f"row softmax at tau = {tau} (anchor masked; positives framed)", fontsize=8)
    ax.set_xlabel("k: teacher negatives | student vectors", fontsize=8)
    return ax
