"""Plots and widgets for the chapters: thin layers over matplotlib, seaborn and ipywidgets.

Every widget has a plain plotting function behind it whose default output is the figure a static reader
needs. :func:`slider_stack` builds widgets that stay interactive on the static site: precomputed images in a
``widgets.Stack`` whose ``selected_index`` is linked to a slider in the browser (``jslink``), no kernel needed.
"""
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


def plot_confusion(preds: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str], ax=None,
                   title: str = "Confusion matrix (rows: true class)"):
    """Row-normalised confusion matrix as a seaborn heat map; returns the axes."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(targets.numpy(), preds.numpy(), labels=range(len(class_names)), normalize="true")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(cm, annot=True, fmt=".2f", cmap="Blues", xticklabels=class_names, yticklabels=class_names,
                ax=ax, cbar=False, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax


def plot_accuracy(histories: dict[str, list[dict]], teacher_accuracy: float | None = None, ax=None,
                  title: str = "Student accuracy on the real test split"):
    """Test accuracy per epoch for one or more runs, with the teacher's as a dashed line; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [100 * h["test_accuracy"] for h in hist], marker="o", ms=3,
                label=label)
    if teacher_accuracy is not None:
        ax.axhline(100 * teacher_accuracy, ls="--", c="k", lw=1, label=f"teacher ({100 * teacher_accuracy:.1f}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


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


def slider_stack(pngs: Sequence[bytes], description: str = "step", labels: Sequence[str] | None = None,
                 start: int | None = None):
    """A slider that switches between precomputed PNG images, also on the static site.

    Returns an ``ipywidgets.VBox`` holding an ``IntSlider`` and a ``Stack`` of ``Image`` widgets linked with
    ``jslink`` (the link lives in the browser, so it works without a kernel). ``start`` (default: the last
    image) is the view a static reader sees first.
    """
    import ipywidgets as widgets

    if not pngs:
        raise ValueError("slider_stack needs at least one image")
    images = [widgets.Image(value=p, format="png") for p in pngs]
    start = len(pngs) - 1 if start is None else start
    stack = widgets.Stack(images, selected_index=start)
    slider = widgets.IntSlider(value=start, min=0, max=len(pngs) - 1, description=description,
                               continuous_update=True)
    widgets.jslink((slider, "value"), (stack, "selected_index"))
    children = [slider]
    if labels is not None:
        label_stack = widgets.Stack([widgets.HTML(f"<b>{l}</b>") for l in labels], selected_index=start)
        widgets.jslink((slider, "value"), (label_stack, "selected_index"))
        children.append(label_stack)
    return widgets.VBox(children + [stack])
