"""Plots and widgets of the BN-inversion chapter (DeepInversion, ADI, ZSKD): thin layers over matplotlib/seaborn.

Each function returns a figure or axes whose default is the view a static reader needs;
:func:`nested_stack` turns a grid of precomputed PNGs into controls that stay interactive on the static site
(nested ``widgets.Stack`` s whose ``selected_index`` is ``jslink`` ed to sliders/dropdowns: no kernel needed).
:func:`sweep_overview` reads the result files of a sweep spec with their provenance, for the chapter's table.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .viz import image_format, to_pixels

__all__ = ["compact_png", "teacher_confidence", "confidence_titles", "plot_bn_layers", "plot_inversion_terms",
           "plot_progression", "plot_image_rows", "nested_stack", "sweep_overview", "plot_student_bars"]


def compact_png(fig, dpi: int = 72) -> bytes:
    """Render a figure to PNG bytes and close it, as one grey channel when the figure has no colour.

    Image grids of grey data sets rendered by matplotlib are RGBA; stored as 8-bit greyscale they take about
    half the space, losslessly (widget frames are embedded in the static page, so this matters).
    """
    import io

    from PIL import Image

    from .viz import figure_png

    img = Image.open(io.BytesIO(figure_png(fig, dpi=dpi)))
    rgb = np.asarray(img.convert("RGB"))
    grey = bool((rgb[..., 0] == rgb[..., 1]).all() and (rgb[..., 1] == rgb[..., 2]).all())
    out = io.BytesIO()
    (img.convert("L") if grey else img.convert("RGB")).save(out, format="PNG", optimize=True)
    return out.getvalue()


@torch.no_grad()
def teacher_confidence(teacher: torch.nn.Module, x: torch.Tensor, targets: torch.Tensor, batch_size: int = 256
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The teacher's softmax probability of each image's target class and its predicted class (fp32, eval mode).

    Args:
        teacher: classifier ``(N, C, H, W) -> (N, K)``; its mode is restored afterwards.
        x: images in the teacher's input space.
        targets: class indices ``(N,)``.

    Returns:
        ``(p_target, predicted)``: ``(N,)`` floats in ``[0, 1]`` and ``(N,)`` long, on the CPU.
    """
    device = next(teacher.parameters()).device
    was_training = teacher.training
    teacher.eval()
    probs = torch.cat([torch.softmax(teacher(x[i:i + batch_size].to(device)).float(), 1).cpu()
                       for i in range(0, x.shape[0], batch_size)])
    teacher.train(was_training)
    t = targets.cpu().long()
    return probs[torch.arange(len(t)), t], probs.argmax(1)


def confidence_titles(spec, targets: torch.Tensor, p_target: torch.Tensor, predicted: torch.Tensor | None = None,
                      short: int = 7) -> list[str]:
    """Titles ``"Trouser 0.98"`` (target class, teacher's probability of it), with ``"-> Shirt"`` where the
    teacher's argmax differs from the target."""
    names = [n.split("/")[0][:short] for n in spec.class_names] if spec.class_names else None
    out = []
    for i, (c, p) in enumerate(zip(targets.tolist(), p_target.tolist())):
        label = names[c] if names else str(c)
        title = f"{label} {p:.2f}"
        if predicted is not None and int(predicted[i]) != c:
            title += f"\n-> {names[int(predicted[i])] if names else int(predicted[i])}"
        out.append(title)
    return out


def plot_bn_layers(history: list[dict], reference: dict[str, Sequence[float]] | None = None, ax=None,
                   cmap: str = "viridis", title: str = "BN-statistics distance per layer"):
    """Per-layer BN distance ``||mu - mu_run|| + ||var - var_run||`` at the recorded steps of an inversion.

    One line per history entry holding ``"BN_layers"`` (see :func:`~dfkd_lib.synthesizers.deep_inversion`),
    coloured from the first (dark) to the last step (light), on a log axis; ``reference`` adds dashed lines
    (e.g. ``{"real test images": ..., "noise": ...}``). Returns the axes.

    Raises:
        ValueError: no history entry has ``"BN_layers"``.
    """
    rows = [h for h in history if "BN_layers" in h]
    if not rows:
        raise ValueError("no history entry has 'BN_layers' (was the teacher without BatchNorm?)")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    colours = plt.get_cmap(cmap)(np.linspace(0, 0.9, len(rows)))
    for h, c in zip(rows, colours):
        layers = h["BN_layers"]
        ax.plot(range(1, len(layers) + 1), layers, color=c, lw=1.2, label=f"step {h['step']}")
    for (label, values), ls in zip((reference or {}).items(), ("--", ":", "-.", (0, (5, 1)))):
        ax.plot(range(1, len(values) + 1), list(values), ls=ls, c="k", lw=1.2, label=label)
    ax.set(xlabel="BatchNorm layer (input side first)", ylabel="distance (log scale)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    keep = [0, len(rows) - 1] + list(range(len(rows), len(labels)))  # first and last step, references
    keep = sorted(set(keep))
    ax.legend([handles[i] for i in keep], [labels[i] for i in keep], fontsize=7)
    return ax


def plot_inversion_terms(history: list[dict], keys: Sequence[str] = ("CE", "BN", "TV", "l2", "compete"),
                         ax=None, title: str = "Loss terms during the inversion (unweighted)"):
    """The unweighted loss terms of an inversion's history on a log axis, and the teacher's accuracy on the
    jittered batch on a second axis. Keys absent from the history are skipped. Returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.5))
    steps = [h["step"] for h in history]
    for k in keys:
        if history and k in history[0]:
            ax.plot(steps, [max(h[k], 1e-6) for h in history], label=k, lw=1.2)
    ax.set(xlabel="optimisation step", ylabel="term (log scale)", yscale="log", title=title)
    ax.grid(alpha=0.3)
    if history and "teacher_acc" in history[0]:
        ax2 = ax.twinx()
        ax2.plot(steps, [100 * h["teacher_acc"] for h in history], c="k", ls=":", lw=1, label="teacher acc. (%)")
        ax2.set_ylim(-5, 105)
        ax2.set_ylabel("teacher accuracy on the batch (%)")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    else:
        ax.legend(fontsize=7)
    return ax


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


def nested_stack(pngs: list, controls: Sequence[tuple], start: Sequence[int] | None = None):
    """Controls over a grid of precomputed PNGs that switch the picture in the browser, also on the static site.

    ``pngs`` is a nested list of depth ``D`` (``pngs[i][j]...`` is the PNG or JPEG bytes for index ``i`` of the first
    control, ``j`` of the second, ...). Each level becomes a ``widgets.Stack``; control ``d`` is ``jslink`` ed
    to the ``selected_index`` of every Stack at level ``d``, so no Python callback is involved.

    Args:
        pngs: nested list of PNG bytes, rectangular.
        controls: one ``(description, labels)`` or ``(description, labels, kind)`` per level, ``kind``
            ``"slider"`` (a ``SelectionSlider``, default) or ``"dropdown"``; ``len(labels)`` must equal the
            size of that level.
        start: the initial index per level (default 0s): the view a static reader sees.

    Returns:
        An ``ipywidgets.VBox`` of the controls and the outer Stack; its ``links`` attribute lists the
        ``jslink`` objects (one per Stack).

    Raises:
        ValueError: depth or sizes not matching the controls, or an unknown kind.
    """
    import ipywidgets as widgets

    depth = len(controls)
    start = [0] * depth if start is None else list(start)
    if len(start) != depth:
        raise ValueError(f"start has {len(start)} indices for {depth} controls")
    stacks_by_level: list[list] = [[] for _ in range(depth)]

    def build(node, level: int):
        if level == depth:
            if not isinstance(node, (bytes, bytearray)):
                raise ValueError(f"expected PNG bytes at depth {depth}, got {type(node).__name__}")
            return widgets.Image(value=bytes(node), format=image_format(bytes(node)))
        labels = controls[level][1]
        if not isinstance(node, (list, tuple)) or len(node) != len(labels):
            size = len(node) if isinstance(node, (list, tuple)) else type(node).__name__
            raise ValueError(f"level {level} ({controls[level][0]}) has {size} entries for {len(labels)} labels")
        stack = widgets.Stack([build(child, level + 1) for child in node], selected_index=start[level])
        stacks_by_level[level].append(stack)
        return stack

    outer = build(pngs, 0)
    ctrl_widgets, links = [], []
    for level, spec in enumerate(controls):
        description, labels = spec[0], [str(l) for l in spec[1]]
        kind = spec[2] if len(spec) > 2 else "slider"
        if kind == "slider":
            w = widgets.SelectionSlider(options=labels, index=start[level], description=description,
                                        continuous_update=True)
        elif kind == "dropdown":
            w = widgets.Dropdown(options=labels, index=start[level], description=description)
        else:
            raise ValueError(f"unknown control kind {kind!r}: 'slider' or 'dropdown'")
        links += [widgets.jslink((w, "index"), (stack, "selected_index")) for stack in stacks_by_level[level]]
        ctrl_widgets.append(w)
    box = widgets.VBox([widgets.HBox(ctrl_widgets, layout=widgets.Layout(flex_flow="row wrap")), outer])
    box.links = links
    return box


def sweep_overview(spec_path: str | Path, include_fast: bool = False):
    """The finished runs of a sweep spec with their provenance, and what is missing.

    Args:
        spec_path: the sweep's JSON spec (:mod:`dfkd_lib.sweep`).
        include_fast: keep result files written in fast mode (``DFKD_FAST=1``; only smoke tests should).

    Returns:
        ``(table, histories, missing, ignored)``: a DataFrame with one row per usable run (``variant``,
        ``dataset``, ``seed``, ``best``, ``last``, ``teacher`` in %, ``wall_min``, ``fast_mode``, ``commit``,
        ``date_utc``, ``command``, ``machine``, ``teacher_sha256``), ``{variant: per-epoch history}`` (the first seed's), the
        variants without any usable run (in spec order), and the paths of fast-mode files that were ignored.
    """
    import pandas as pd

    from .sweep import load_spec, planned_runs

    spec = load_spec(spec_path)
    rows, histories, ignored = [], {}, []
    for run in planned_runs(spec_path):
        path = Path(run["out"])
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        prov = r.get("provenance", {})
        if prov.get("fast_mode") and not include_fast:
            ignored.append(str(path))
            continue
        rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                     "best": 100 * r["best_accuracy"], "last": 100 * r["last_accuracy"],
                     "teacher": 100 * r["teacher_accuracy"] if r.get("teacher_accuracy") is not None else np.nan,
                     "wall_min": r["wall_s"] / 60, "fast_mode": bool(prov.get("fast_mode")),
                     "commit": (prov.get("git_commit") or "?")[:10], "date_utc": prov.get("date_utc"),
                     "command": prov.get("command"), "machine": prov.get("machine"),
                     "teacher_sha256": (r.get("teacher") or {}).get("sha256")})
        histories.setdefault(run["variant"], r["history"])
    table = pd.DataFrame(rows, columns=["variant", "dataset", "seed", "best", "last", "teacher", "wall_min",
                                        "fast_mode", "commit", "date_utc", "command", "machine",
                                        "teacher_sha256"])
    present = set(table["variant"])
    missing = [v for v in spec["variants"] if v not in present]
    return table, histories, missing, ignored


def plot_student_bars(table, variants: Sequence[str], teacher_accuracy: float | None = None,
                      num_classes: int | None = None, labels: dict[str, str] | None = None, ax=None,
                      title: str = "Students distilled from synthetic images, real test accuracy"):
    """Bar chart (seaborn) of best and last student accuracy (%) per variant, teacher and chance as lines.

    Args:
        table: rows with ``variant``, ``best``, ``last`` (e.g. from :func:`sweep_overview`); several seeds
            per variant give error bars (standard deviation).
        variants: the order of the bars; variants without rows are marked "no result yet".
        teacher_accuracy: in %, drawn as a dashed line.
        num_classes: draws chance (``100 / num_classes`` %) as a dotted line.
        labels: display names per variant.

    Returns:
        The axes.
    """
    import pandas as pd
    import seaborn as sns

    labels = labels or {}
    names = [labels.get(v, v) for v in variants]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    long = pd.DataFrame(columns=["variant", "accuracy", "measure"])
    if len(table):
        t = table[table["variant"].isin(variants)]
        long = t.melt(id_vars=["variant"], value_vars=["best", "last"], var_name="measure", value_name="accuracy")
        long["variant"] = long["variant"].map(lambda v: labels.get(v, v))
    if len(long):
        sns.barplot(data=long, x="variant", y="accuracy", hue="measure", order=names, hue_order=["best", "last"],
                    errorbar="sd", ax=ax, palette="Blues_d")
        for cont in ax.containers:
            ax.bar_label(cont, fmt="%.1f", fontsize=7, padding=2)
    else:
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.5, len(names) - 0.5)
    present = set(long["variant"]) if len(long) else set()
    for i, name in enumerate(names):
        if name not in present:
            ax.text(i, 40, "no result\nyet", ha="center", va="bottom", fontsize=8, color="0.4")
    if teacher_accuracy is not None:
        ax.axhline(teacher_accuracy, ls="--", c="k", lw=1, label=f"teacher ({teacher_accuracy:.1f}%)")
    if num_classes:
        ax.axhline(100 / num_classes, ls=":", c="r", lw=1, label=f"chance ({100 / num_classes:.0f}%)")
    ax.set(ylim=(0, 100), ylabel="test accuracy (%)", xlabel="", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return ax
