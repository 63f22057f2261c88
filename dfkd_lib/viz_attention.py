"""Plots and widgets for the DFKD-FGVC chapters (attention generator, MHAD, SFCL): thin layers over matplotlib,
seaborn, pandas and ipywidgets, next to :mod:`dfkd_lib.viz`.

* :func:`plot_block_maps` -- a batch of generated images above the attention maps of the generator's blocks.
* :func:`slider_stack_2d` -- two sliders choosing among a grid of precomputed PNGs (e.g. lambda x block), linked
  in the browser with ``jslink`` so that the widget stays interactive on the static site.
* :func:`plot_similarity`, :func:`similarity_stats` -- teacher/student similarity matrices of SFCL.
* :func:`ablation_table`, :func:`paired_table`, :func:`plot_ablation` -- results of a sweep (read by
  :mod:`dfkd_lib.sweep`) as "mean +- std (n seeds)" tables, differences to a reference paired by seed, and
  per-seed plots.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .viz import to_pixels

NO_RESULT = "no results yet"


# ------------------------------------------------------------------------------------------ attention maps
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


def slider_stack_2d(pngs: Sequence[Sequence[bytes]], descriptions: tuple[str, str] = ("row", "column"),
                    row_labels: Sequence[str] | None = None, column_labels: Sequence[str] | None = None,
                    start: tuple[int, int] | None = None):
    """Two sliders over a grid of precomputed PNG images, interactive on the static site too.

    ``pngs[i][j]`` is shown when the first slider is at ``i`` and the second at ``j``. The widget is an outer
    ``widgets.Stack`` (one child per row ``i``) of inner ``Stack`` s (one ``Image`` per column ``j``); the first
    slider is ``jslink``-ed to the outer stack's ``selected_index`` and the second to every inner stack's, so the
    browser switches images without a kernel (as :func:`dfkd_lib.viz.slider_stack`).

    Args:
        pngs: a rectangular grid (every row the same length, at least 1 x 1) of PNG bytes.
        descriptions: the two sliders' labels.
        row_labels, column_labels: optional text shown beside each slider for each position (e.g. "lambda = 0.05").
        start: ``(i, j)`` shown first (default: the last image of the first row's grid, ``(0, columns - 1)``):
            the view a static reader sees.

    Returns:
        An ``ipywidgets.VBox``.

    Raises:
        ValueError: an empty or ragged grid, labels of the wrong length, ``start`` out of range.
    """
    import ipywidgets as widgets

    n_rows = len(pngs)
    n_cols = len(pngs[0]) if n_rows else 0
    if n_rows == 0 or n_cols == 0:
        raise ValueError("slider_stack_2d needs at least one image")
    if any(len(row) != n_cols for row in pngs):
        raise ValueError("slider_stack_2d needs a rectangular grid (every row the same length)")
    if row_labels is not None and len(row_labels) != n_rows:
        raise ValueError(f"{len(row_labels)} row labels for {n_rows} rows")
    if column_labels is not None and len(column_labels) != n_cols:
        raise ValueError(f"{len(column_labels)} column labels for {n_cols} columns")
    i0, j0 = (0, n_cols - 1) if start is None else start
    if not (0 <= i0 < n_rows and 0 <= j0 < n_cols):
        raise ValueError(f"start {start} outside the {n_rows} x {n_cols} grid")
    inner = [widgets.Stack([widgets.Image(value=p, format="png") for p in row], selected_index=j0) for row in pngs]
    outer = widgets.Stack(inner, selected_index=i0)
    s_row = widgets.IntSlider(value=i0, min=0, max=n_rows - 1, description=descriptions[0])
    s_col = widgets.IntSlider(value=j0, min=0, max=n_cols - 1, description=descriptions[1])
    widgets.jslink((s_row, "value"), (outer, "selected_index"))
    for stack in inner:
        widgets.jslink((s_col, "value"), (stack, "selected_index"))
    controls = []
    for slider, labels, start_index in ((s_row, row_labels, i0), (s_col, column_labels, j0)):
        if labels is None:
            controls.append(slider)
            continue
        label_stack = widgets.Stack([widgets.HTML(f"<b>{l}</b>") for l in labels], selected_index=start_index)
        widgets.jslink((slider, "value"), (label_stack, "selected_index"))
        controls.append(widgets.HBox([slider, label_stack]))
    return widgets.VBox(controls + [outer])


# ------------------------------------------------------------------------------------------ similarities
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


# ------------------------------------------------------------------------------------------ sweep results
def _by_seed(results, variant: str, dataset: str, metric: str):
    """``metric`` of one (variant, dataset) of a results frame as a float Series indexed by seed."""
    import pandas as pd

    if results is None or len(results) == 0:
        return pd.Series(dtype=float)
    sel = results[(results["variant"] == variant) & (results["dataset"] == dataset)]
    return sel.set_index("seed")[metric].astype(float)


def _cells(results, variant: str, dataset: str, metric: str) -> np.ndarray:
    return _by_seed(results, variant, dataset, metric).to_numpy(dtype=float)


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``"mean ± std (n=k)"`` (sample standard deviation, ddof=1), ``"mean (n=1)"`` or :data:`NO_RESULT`."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return NO_RESULT
    if v.size == 1:
        return f"{v[0]:.{digits}f} (n=1)"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} (n={v.size})"


def ablation_table(results, variants: Mapping[str, str], datasets: Sequence[str], metric: str = "best",
                   digits: int = 2):
    """Measured accuracies as a table of strings: rows = ``variants`` (name -> row label, in that order),
    columns = ``datasets``, cells ``"mean ± std (n=seeds)"`` over the seeds found, or ``"no results yet"``.

    Args:
        results: a :func:`dfkd_lib.sweep.load_results` frame (columns variant, dataset, seed, best, last ...);
            may be empty.
        metric: ``"best"`` or ``"last"`` (test accuracy in %).
    """
    import pandas as pd

    rows = {label: [format_mean_std(_cells(results, v, d, metric), digits) for d in datasets]
            for v, label in variants.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(datasets))


def paired_verdict(diffs: Sequence[float], bold: bool = False, name: str = "the full method",
                   reference: str = "the baseline") -> str:
    """The book's one rule for "does a variant beat its reference", from paired differences (variant minus
    reference, per seed, in points): it *beats* it when it is higher on every seed and the mean difference
    exceeds the sample standard deviation of the differences; it is *higher on average* when only the mean is
    positive; otherwise it *does not beat* it. Fewer than three paired seeds give no verdict.

    Returns a sentence fragment such as ``"beats the baseline (+5.20 ± 1.10 points, higher on 3 of 3 seeds)"``
    (``bold``: the verdict word in Markdown bold; ``name`` is not part of the fragment, ``reference`` is).
    """
    d = np.asarray(diffs, dtype=float)
    b = "**" if bold else ""
    if d.size < 3:
        return f"no verdict ({d.size} paired seed{'s' if d.size != 1 else ''}, 3 needed)"
    wins, mean, sd = int((d > 0).sum()), d.mean(), d.std(ddof=1)
    head = f"{mean:+.2f} ± {sd:.2f} points, higher on {wins} of {d.size} seeds"
    if wins == d.size and mean > sd:
        return f"{b}beats{b} {reference} ({head})"
    if mean > 0:
        return f"higher on average, within the seed-to-seed spread ({head})"
    return f"{b}does not beat{b} {reference} ({head})"


def paired_differences(results, variant: str, reference: str, dataset: str, metric: str = "best") -> np.ndarray:
    """``variant - reference`` of ``metric`` per seed both have (sorted by seed), for one dataset."""
    a, b = _by_seed(results, variant, dataset, metric), _by_seed(results, reference, dataset, metric)
    seeds = sorted(set(a.index) & set(b.index))
    return (a[seeds] - b[seeds]).to_numpy(dtype=float) if seeds else np.array([])


def paired_table(results, variants: Mapping[str, str], reference: str, datasets: Sequence[str],
                 metric: str = "best", digits: int = 2):
    """Differences to a reference variant, paired by seed (same student initialisation and noise): rows =
    ``variants`` (name -> label; the reference itself is skipped), columns = ``datasets``, cells
    ``"+mean ± std over seeds (higher in w of n)"`` of ``variant - reference`` in points of ``metric`` (%),
    over the seeds both have; ``"no results yet"`` when they share none.

    Raises:
        ValueError: ``metric`` is not a column of ``results``.
    """
    import pandas as pd

    if results is not None and len(results) and metric not in results:
        raise ValueError(f"results have no column {metric!r} (columns: {list(results.columns)})")

    rows = {}
    for v, label in variants.items():
        if v == reference:
            continue
        cells = []
        for d in datasets:
            diff = paired_differences(results, v, reference, d, metric)
            if diff.size == 0:
                cells.append(NO_RESULT)
            elif diff.size == 1:
                cells.append(f"{diff[0]:+.{digits}f} (n=1)")
            else:
                cells.append(f"{diff.mean():+.{digits}f} ± {diff.std(ddof=1):.{digits}f} "
                             f"(higher in {int((diff > 0).sum())} of {diff.size})")
        rows[label] = cells
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(datasets))


def plot_ablation(results, variants: Mapping[str, str], datasets: Sequence[str], metric: str = "best",
                  axes=None, reference: str | None = None, teacher: bool = True):
    """One panel per dataset: each seed as a dot and the mean ± std over seeds as a square with error bar, per
    variant; returns the
    axes. A variant without results is marked "no results yet" in its panel. ``reference`` (a variant name) draws
    its mean as a dotted line; ``teacher`` draws the teacher's accuracy (from the results) as a dashed line."""
    if axes is None:
        _, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.2), squeeze=False)
        axes = axes[0]
    axes = np.ravel(axes)
    names, labels = list(variants), list(variants.values())
    for ax, d in zip(axes, datasets):
        for x, v in enumerate(names):
            vals = _cells(results, v, d, metric)
            if vals.size == 0:
                ax.text(x, 0.5, NO_RESULT, rotation=90, ha="center", va="center", fontsize=7, color="0.4",
                        transform=ax.get_xaxis_transform())
                continue
            ax.scatter(np.full(vals.size, x) + np.linspace(-0.12, 0.12, vals.size), vals, s=14, c="k", zorder=3)
            err = vals.std(ddof=1) if vals.size > 1 else 0.0
            ax.errorbar(x + 0.25, vals.mean(), yerr=err, fmt="s", color=f"C{x}", ms=7, capsize=4, zorder=4)
        if reference is not None:
            ref = _cells(results, reference, d, metric)
            if ref.size:
                ax.axhline(ref.mean(), ls=":", c="k", lw=1)
        if teacher and results is not None and len(results):
            t = results[results["dataset"] == d]["teacher"]
            if len(t):
                ax.axhline(float(t.iloc[0]), ls="--", c="0.3", lw=1, label=f"teacher {float(t.iloc[0]):.1f}%")
                ax.legend(fontsize=7, loc="lower right")
        vals_all = np.concatenate([_cells(results, v, d, metric) for v in names] + [np.array([])])
        if vals_all.size:
            lo, hi = vals_all.min(), vals_all.max()
            pad = max(1.0, 0.15 * (hi - lo))
            top = hi + pad
            if teacher and results is not None and len(results) and len(results[results["dataset"] == d]):
                top = max(top, float(results[results["dataset"] == d]["teacher"].iloc[0]) + pad)
            ax.set_ylim(max(0.0, lo - 3 * pad), min(100.0, top))
        ax.set_xticks(range(len(names)), labels, rotation=20, fontsize=8)
        ax.set_title(d, fontsize=9)
        ax.set_ylabel(f"{metric} test accuracy (%)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return axes


__all__ = ["plot_block_maps", "slider_stack_2d", "similarity_stats", "plot_similarity",
           "format_mean_std", "ablation_table", "paired_table", "plot_ablation", "NO_RESULT"]
