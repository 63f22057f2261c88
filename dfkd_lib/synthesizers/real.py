"""Real training images as a synthesiser: the reference runs that bound every data-free method.

A data-free student never sees a real training image. To know how far a data-free student is from what
its budget *could* give, the same student is trained through the same loop (:func:`dfkd_lib.engine.distill`,
same optimiser, schedule and number of student steps) on batches of real training images instead:

* ``real-kd``: KD from the same teacher on real images (:mod:`dfkd_lib.methods.reference`), the upper bound
  of a data-free method that distils by KD;
* ``real-labels``: cross-entropy on the true labels, no teacher (the student trained as a teacher would be).

The images are preprocessed once, without augmentation (as synthetic batches have none), and kept in memory.
"""
from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from ..config import DistillConfig
from ..data import DatasetSpec, default_transform, dataset_spec, get_dataset
from .base import Synthesizer

__all__ = ["RealImages", "FixedImages"]


class RealImages(Synthesizer):
    """Uniformly drawn batches ``(x (n, C, H, W), y (n,))`` of the real *training* split, with labels.

    Args:
        dataset: dataset name (:mod:`dfkd_lib.data`) or spec (e.g. the teacher's).
        root: where its files are (default: the spec's, else the dataset's own lookup).
        limit: keep only the first ``limit`` training images (tests).

    ``synthesis_step`` does nothing (there is nothing to synthesise); :meth:`sample` draws with a generator
    seeded from ``config.seed`` and is resumable through :meth:`state_dict`.
    """

    def __init__(self, dataset: str | DatasetSpec, root=None, limit: int | None = None):
        self.dataset, self.root, self.limit = dataset, root, limit
        self.images: torch.Tensor | None = None
        self.labels: torch.Tensor | None = None
        self.device = torch.device("cpu")
        self._gen = torch.Generator()

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        self.device = torch.device(device)
        self._gen.manual_seed(config.seed + 2)
        if self.images is None:
            spec = self.dataset if isinstance(self.dataset, DatasetSpec) else dataset_spec(self.dataset)
            ds = get_dataset(spec, train=True, root=self.root, transform=default_transform(spec, False))
            xs, ys, seen = [], [], 0
            for x, y in DataLoader(ds, batch_size=1000, shuffle=False):
                xs.append(x), ys.append(y)
                seen += len(y)
                if self.limit is not None and seen >= self.limit:
                    break
            self.images, self.labels = torch.cat(xs)[:self.limit], torch.cat(ys)[:self.limit]
        if config.channels_last:
            self.images = self.images.contiguous(memory_format=torch.channels_last)

    def synthesis_step(self, teacher, student, method, config) -> dict[str, float]:
        return {}

    def sample(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.images is None:
            raise RuntimeError("RealImages.setup(config, device) must run before sample()")
        idx = torch.randint(0, len(self.labels), (n,), generator=self._gen)
        return self.images[idx].to(self.device), self.labels[idx].to(self.device)

    def state_dict(self) -> dict:
        return {"sample_rng": self._gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self._gen.set_state(state["sample_rng"])


class FixedImages(RealImages):
    """A fixed tensor of images ``(M, C, H, W)`` as the synthesiser, e.g. a pool a generator made once: uniform
    batches ``(n, C, H, W)`` of it, without labels, and nothing synthesised. For experiments that hold the
    student's images fixed while the loss changes.

    Raises:
        ValueError: ``images`` is not a non-empty 4-D tensor.
    """

    def __init__(self, images: torch.Tensor):
        if images.dim() != 4 or len(images) == 0:
            raise ValueError(f"FixedImages expects a non-empty (M, C, H, W) tensor, got {tuple(images.shape)}")
        super().__init__(dataset="fixed")
        self.images = images.detach()

    def sample(self, n: int) -> torch.Tensor:
        idx = torch.randint(0, len(self.images), (n,), generator=self._gen)
        return self.images[idx].to(self.device)
