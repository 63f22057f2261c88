"""What a network's feature space looks like: features of real images, their t-SNE embedding (scikit-learn,
cached on disk), numbers that back the picture (k-NN accuracy, silhouette), and a seaborn scatter plot.

The t-SNE cache is keyed by the features themselves (and the t-SNE parameters), so a changed checkpoint, split or
image set recomputes, and the same inputs return the same embedding instantly.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

#: Where :func:`tsne` keeps its embeddings unless told otherwise (``$DFKD_CACHE/tsne`` when that is set).
CACHE_DIR = Path(os.environ.get("DFKD_CACHE", Path.home() / ".cache" / "dfkd_lib")) / "tsne"


@torch.no_grad()
def extract_features(model: nn.Module, data: Dataset | DataLoader, stage: int | None = None,
                     limit: int | None = None, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Features of every image of ``data`` under ``model`` (eval mode; the model's modes are restored after).

    Args:
        model: a dfkd_lib classifier (``model(x, return_features=True)`` gives ``(logits, Features)``).
        data: a dataset of ``(image (C, H, W), label)`` or a loader of such batches.
        stage: ``None`` for the penultimate feature ``(N, D)``; ``i`` for stage ``i`` (0-3), globally
            average-pooled to ``(N, C_i)``.
        limit: use only the first ``limit`` images.

    Returns:
        ``(features (N, D) float32, labels (N,) int64)`` as numpy arrays.

    Raises:
        ValueError: ``stage`` outside the model's stages.
    """
    loader = data if isinstance(data, DataLoader) else DataLoader(data, batch_size=batch_size, shuffle=False)
    device = next(model.parameters()).device
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    feats, labels, seen = [], [], 0
    try:
        for x, y in loader:
            _, f = model(x.to(device), return_features=True)
            if stage is None:
                out = f.penultimate
            else:
                if not 0 <= stage < len(f.stages):
                    raise ValueError(f"stage must be in 0..{len(f.stages) - 1} or None, got {stage}")
                out = f.stages[stage].float().mean(dim=(2, 3))
            feats.append(out.float().cpu().numpy())
            labels.append(np.asarray(y))
            seen += len(y)
            if limit is not None and seen >= limit:
                break
    finally:
        for m, mode in modes:
            m.training = mode
    return np.concatenate(feats)[:limit], np.concatenate(labels)[:limit].astype(np.int64)


def tsne(features: np.ndarray, perplexity: float = 30.0, seed: int = 0, cache_dir: str | Path | None = CACHE_DIR
         ) -> np.ndarray:
    """2-D t-SNE embedding ``(N, 2)`` of ``features (N, D)`` (``sklearn.manifold.TSNE``, PCA initialisation).

    Cached as ``.npy`` under ``cache_dir`` (``None``: no cache), keyed by the sha256 of the features' bytes,
    their shape and the parameters.

    Raises:
        ValueError: ``perplexity`` not below the number of points (t-SNE's own condition).
    """
    from sklearn.manifold import TSNE

    features = np.ascontiguousarray(features, dtype=np.float32)
    if not 0 < perplexity < len(features):
        raise ValueError(f"perplexity must be in (0, {len(features)}) for {len(features)} points, got {perplexity}")
    key = hashlib.sha256(features.tobytes() + repr((features.shape, float(perplexity), seed)).encode()).hexdigest()
    path = Path(cache_dir) / f"{key[:32]}.npy" if cache_dir is not None else None
    if path is not None and path.is_file():
        return np.load(path)
    xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(features)
    xy = xy.astype(np.float32)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npy")
        np.save(tmp, xy)
        os.replace(tmp, path)
    return xy


def feature_scores(features: np.ndarray, labels: np.ndarray, k: int = 5, folds: int = 5, seed: int = 0) -> dict:
    """Numbers that back a t-SNE picture, computed in the feature space itself (not in the 2-D embedding):

    * ``knn_accuracy``: accuracy in [0, 1] of a ``k``-nearest-neighbour classifier (cosine distance) under
      stratified ``folds``-fold cross-validation: how well the classes separate locally;
    * ``silhouette``: the silhouette score in [-1, 1] with cosine distance: how compact and apart they are.
    """
    from sklearn.metrics import silhouette_score
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.neighbors import KNeighborsClassifier

    folds = min(folds, int(np.bincount(labels).min()))
    knn = KNeighborsClassifier(n_neighbors=k, metric="cosine")
    cv = StratifiedKFold(n_splits=max(folds, 2), shuffle=True, random_state=seed)
    acc = cross_val_score(knn, features, labels, cv=cv).mean()
    return {"knn_accuracy": float(acc), "silhouette": float(silhouette_score(features, labels, metric="cosine"))}


def plot_embedding(xy: np.ndarray, labels: np.ndarray, class_names: Sequence[str] | None = None, ax=None,
                   title: str | None = None, size: float = 6.0, highlight: Sequence[int] | None = None):
    """Seaborn scatter plot of a 2-D embedding coloured by class, with a legend of class names; returns the axes.

    ``highlight``: colour only these classes (the others are drawn in light grey underneath, so the picture keeps
    its layout while two confusable classes stand out)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    if ax is None:
        _, ax = plt.subplots(figsize=(4.2, 4.0))
    labels = np.asarray(labels)
    keep = np.ones(len(labels), bool) if highlight is None else np.isin(labels, list(highlight))
    if not keep.all():
        ax.scatter(xy[~keep, 0], xy[~keep, 1], s=size * 0.6, c="0.85", linewidths=0)
    names = [class_names[int(c)] if class_names else str(int(c)) for c in labels[keep]]
    order = [class_names[c] for c in sorted(set(int(c) for c in labels[keep]))] if class_names else None
    palette = dict(zip([class_names[c] for c in range(len(class_names))] if class_names else [],
                       sns.color_palette("tab10" if class_names and len(class_names) <= 10 else "husl",
                                         len(class_names) if class_names else 0))) or None
    sns.scatterplot(x=xy[keep, 0], y=xy[keep, 1], hue=names, hue_order=order, s=size, linewidth=0, ax=ax,
                    palette=palette, legend="brief")
    ax.set_xticks([]), ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    if ax.get_legend() is not None:
        ax.legend(fontsize=6, markerscale=2, loc="upper left", bbox_to_anchor=(1, 1), frameon=False)
    return ax
