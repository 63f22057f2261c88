"""The image pool (memory bank) of synthesised images that student steps draw from.

Amortised synthesis, as CMI (Fang et al. IJCAI 2021) and Fast-DFKD (Fang et al. AAAI 2022) do it: every
synthesised batch is kept, and each student step samples from everything synthesised so far instead of
from one fresh batch, so a generator or pixel-optimisation step feeds many student steps. Used by
:class:`~dfkd_lib.engine.GeneratorSynthesizer` (``DistillConfig.pool_size``) and by the inversion
pixel-optimisation synthesisers (:mod:`dfkd_lib.synthesizers`).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..checkpoint import atomic_save, safe_load

__all__ = ["ImagePool"]


class ImagePool:
    """A first-in-first-out store of synthesised images (float tensors, not 8-bit files), optionally labelled.

    Keeping the float tensors avoids the quantisation and clipping of saving to PNG: the student sees exactly
    what the teacher saw. Tensors are detached, cloned and kept on the device they were added from.

    Args:
        capacity: maximal number of *images* (not batches) kept; adding beyond it drops the oldest images.

    Raises:
        ValueError: ``capacity < 1``.
    """

    def __init__(self, capacity: int = 10_000):
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1 image, got {capacity}")
        self.capacity = int(capacity)
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.total_added = 0

    def __len__(self) -> int:
        return 0 if self.images is None else self.images.shape[0]

    def add(self, x: torch.Tensor, y: torch.Tensor | None = None) -> None:
        """Append a batch ``x`` ``(B, C, H, W)`` with optional labels ``y`` ``(B,)`` (or ``(B, K)`` soft labels).

        Raises:
            ValueError: ``x`` not 4-D, an image shape different from the pool's, ``y`` of another length, or
                labels given to a pool that holds unlabelled images (or the reverse).
        """
        if x.dim() != 4:
            raise ValueError(f"expected images (B, C, H, W), got shape {tuple(x.shape)}")
        x = x.detach().clone()
        if y is not None:
            y = y.detach().clone()
            if y.shape[0] != x.shape[0]:
                raise ValueError(f"{x.shape[0]} images but {y.shape[0]} labels")
        if self.images is None:
            self.images, self.labels = x[-self.capacity:], (y[-self.capacity:] if y is not None else None)
        else:
            if x.shape[1:] != self.images.shape[1:]:
                raise ValueError(f"images of shape {tuple(x.shape[1:])} do not fit a pool of "
                                 f"{tuple(self.images.shape[1:])} images")
            if (y is None) != (self.labels is None):
                raise ValueError("a pool holds either labelled or unlabelled images: pass y for every batch or "
                                 "for none")
            self.images = torch.cat([self.images, x.to(self.images.device)])[-self.capacity:]
            if y is not None:
                self.labels = torch.cat([self.labels, y.to(self.labels.device)])[-self.capacity:]
        self.total_added += x.shape[0]

    def sample(self, n: int, generator: torch.Generator | None = None, return_labels: bool = False):
        """``n`` images drawn uniformly: without replacement when ``n <= len(self)``, with replacement otherwise.

        Args:
            n: number of images.
            generator: CPU ``torch.Generator`` for reproducible draws (default: the global RNG).
            return_labels: also return the labels (``None`` for an unlabelled pool).

        Returns:
            ``(n, C, H, W)`` images, or ``(images, labels)`` with ``return_labels``.

        Raises:
            ValueError: the pool is empty, or ``n < 0``.
        """
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        if len(self) == 0:
            raise ValueError("the image pool is empty: add synthesised batches before sampling")
        m = len(self)
        if n <= m:
            idx = torch.randperm(m, generator=generator)[:n]
        else:
            idx = torch.randint(0, m, (n,), generator=generator)
        idx = idx.to(self.images.device)
        x = self.images[idx]
        if return_labels:
            return x, (self.labels[idx] if self.labels is not None else None)
        return x

    def state_dict(self) -> dict:
        """Tensors and numbers only (loadable with ``torch.load(weights_only=True)``)."""
        return {"capacity": self.capacity, "images": self.images, "labels": self.labels,
                "total_added": self.total_added}

    def load_state_dict(self, state: dict) -> None:
        self.capacity = int(state["capacity"])
        self.images, self.labels = state["images"], state["labels"]
        self.total_added = int(state["total_added"])

    def save(self, path: str | Path) -> None:
        """Write the pool atomically to a ``.pt`` file (:func:`~dfkd_lib.checkpoint.atomic_save`)."""
        state = self.state_dict()
        state = {k: (v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in state.items()}
        atomic_save(state, path)

    @classmethod
    def load(cls, path: str | Path, map_location="cpu") -> "ImagePool":
        """Read a pool written by :meth:`save` (with ``weights_only=True``, :func:`~dfkd_lib.checkpoint.safe_load`)."""
        state = safe_load(path, map_location=map_location)
        pool = cls(int(state["capacity"]))
        pool.load_state_dict(state)
        return pool

    def __repr__(self) -> str:
        return f"ImagePool({len(self)}/{self.capacity} images, {self.total_added} added)"
