"""Images as pictures: batches in the teacher's input space shown as grids (grey or RGB), figures rendered to
PNG or JPEG bytes for widgets, rows of images with titles, and image progressions over optimisation steps."""
from __future__ import annotations

import io
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def to_pixels(x: torch.Tensor, spec) -> np.ndarray:
    """Normalised images ``(N, C, H, W)`` -> ``(N, H, W, C)`` float32 in [0, 1] (clamped)."""
    return spec.denormalize(x.detach().float().cpu()).clamp(0, 1).permute(0, 2, 3, 1).numpy()


def show_images(x: torch.Tensor, spec, ncols: int = 8, titles: Sequence[str] | None = None, axes=None,
                size: float = 1.2, suptitle: str | None = None):
    """Show a batch of images in the teacher's input space as a grid; returns the figure."""
    imgs = to_pixels(x, spec)
    n = len(imgs)
    nrows = int(np.ceil(n / ncols))
    if axes is None:
        fig, axes = plt.subplots(nrows, ncols, figsize=(size * ncols, size * nrows + (0.3 if suptitle else 0)),
                                 squeeze=False)
    else:
        fig = np.ravel(axes)[0].figure
    for i, ax in enumerate(np.ravel(axes)):
        ax.axis("off")
        if i < n:
            img = imgs[i]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[i], fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def figure_png(fig, dpi: int = 90) -> bytes:
    """Render a matplotlib figure to PNG bytes and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def figure_jpeg(fig, dpi: int = 90, quality: int = 85) -> bytes:
    """Render a matplotlib figure to JPEG bytes and close it: photo grids take a fraction of a PNG's size in
    the static page (widget images are embedded in it). :func:`image_format` tells the two apart."""
    from PIL import Image

    out = io.BytesIO()
    Image.open(io.BytesIO(figure_png(fig, dpi))).convert("RGB").save(out, format="JPEG", quality=quality)
    return out.getvalue()


def image_format(data: bytes) -> str:
    """``"jpeg"`` for JPEG bytes, else ``"png"`` (the ``format`` of an ``ipywidgets.Image``)."""
    return "jpeg" if data[:2] == b"\xff\xd8" else "png"


def compact_png(fig, dpi: int = 72) -> bytes:
    """Render a figure to PNG bytes and close it, as one grey channel when the figure has no colour.

    Image grids of grey data sets rendered by matplotlib are RGBA; stored as 8-bit greyscale they take about
    half the space, losslessly (widget frames are embedded in the static page, so this matters).
    """
    import io

    from PIL import Image


    img = Image.open(io.BytesIO(figure_png(fig, dpi=dpi)))
    rgb = np.asarray(img.convert("RGB"))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    out = io.BytesIO()
    (img.convert("L") if grey else img.convert("RGB")).save(out, format="PNG", optimize=True)
    return out.getvalue()


def plot_image_rows(rows: Sequence[tuple], spec, col_titles: Sequence[str] | None = None, size: float = 0.95,
                    suptitle: str | None = None):
    """A table of images: one row per ``(label, images)`` or ``(label, images, titles)``, one column per image.

    Used to compare settings side by side (e.g. one image per class under each prior weight). Rows may have
    different lengths; ``titles`` (one string per image) are drawn small above each image.

    Returns:
        The figure.

    Raises:
        ValueError: no rows.
    """
    if not rows:
        raise ValueError("no rows to show")
    ncols = max(r[1].shape[0] for r in rows)
    fig, axes = plt.subplots(len(rows), ncols, figsize=(size * ncols + 1.6, size * 1.15 * len(rows) + 0.4),
                             squeeze=False)
    for r, row in enumerate(rows):
        label, imgs = row[0], to_pixels(row[1], spec)
        titles = row[2] if len(row) > 2 else None
        for c in range(ncols):
            ax = axes[r, c]
            ax.set_xticks([]), ax.set_yticks([])
            if c >= len(imgs):
                ax.axis("off")
                continue
            img = imgs[c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=1)
            if titles is not None:
                ax.set_title(titles[c], fontsize=6, pad=2)
            elif r == 0 and col_titles is not None:
                ax.set_title(col_titles[c], fontsize=7)
            if c == 0:
                ax.set_ylabel(label, fontsize=7, rotation=0, ha="right", va="center")
    if col_titles is not None and rows and len(rows[0]) > 2:
        for c, t in enumerate(col_titles[:ncols]):
            axes[-1, c].set_xlabel(t, fontsize=7)
    if suptitle:
        fig.suptitle(suptitle, fontsize=9)
    fig.tight_layout()
    return fig


def plot_progression(snapshots: Sequence[tuple[int, torch.Tensor]], spec, index: Sequence[int] | None = None,
                     steps: Sequence[int] | None = None, col_titles: Sequence[str] | None = None, size: float = 1.0):
    """Images appearing from noise: rows are optimisation steps, columns chosen images of the batch.

    Args:
        snapshots: ``(step, images)`` pairs (:attr:`~dfkd_lib.synthesizers.InversionResult.snapshots`).
        index: which images of the batch to show (default: up to 10 first).
        steps: which snapshot steps to show (default: up to 6 spread over the run, first and last included);
            each must be a snapshot step.
        col_titles: a title per column (e.g. the class names).

    Returns:
        The figure.

    Raises:
        ValueError: no snapshots, or a requested step that is not a snapshot.
    """
    if not snapshots:
        raise ValueError("no snapshots: run the inversion with snapshot_every")
    by_step = dict(snapshots)
    if steps is None:
        all_steps = [s for s, _ in snapshots]
        pick = np.unique(np.linspace(0, len(all_steps) - 1, min(6, len(all_steps))).round().astype(int))
        steps = [all_steps[i] for i in pick]
    missing = [s for s in steps if s not in by_step]
    if missing:
        raise ValueError(f"steps {missing} are not snapshot steps; available: {sorted(by_step)}")
    n = snapshots[0][1].shape[0]
    index = list(range(min(10, n))) if index is None else list(index)
    fig, axes = plt.subplots(len(steps), len(index), figsize=(size * len(index) + 0.8, size * len(steps)),
                             squeeze=False)
    for r, s in enumerate(steps):
        imgs = to_pixels(by_step[s][index], spec)
        for c, img in enumerate(imgs):
            ax = axes[r, c]
            ax.imshow(img[..., 0] if img.shape[-1] == 1 else img, cmap="gray" if img.shape[-1] == 1 else None,
                      vmin=0, vmax=1)
            ax.set_xticks([]), ax.set_yticks([])
            if c == 0:
                ax.set_ylabel(f"step {s}", fontsize=8)
            if r == 0 and col_titles is not None:
                ax.set_title(col_titles[c], fontsize=7)
    fig.tight_layout()
    return fig
