"""What BN inversion does, in pictures: the teacher's confidence on synthetic images, per-layer BN distances
and loss terms over optimisation steps (DeepInversion, ADI, ZSKD)."""
from __future__ import annotations

from typing import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


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
