"""What a model and a generator need to know about a dataset (:class:`DatasetSpec`), the registered specs, and
the helpers that read a spec's parts from the files: class selection, mean/std, transforms."""
from __future__ import annotations

import fnmatch
from dataclasses import asdict, dataclass
from typing import Callable, Sequence

import torch
from torch.utils.data import Dataset
from torchvision import transforms as T

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
UPPER_BODY_LABELS = (0, 2, 4, 6)
MNIST_CLASSES = tuple(str(d) for d in range(10))
#: Datasets whose training images are never flipped (a mirrored digit is another glyph).
NO_FLIP = ("mnist",)
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
#: Side in pixels at which RGB datasets are read by default: what a CPU affords (the paper uses 224).
DEFAULT_RGB_SIZE = 64


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


class CorruptImageError(ValueError):
    """An image file of a dataset cannot be decoded; the message names the file."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a model and a generator need to know about a dataset.

    Attributes:
        name: registry name.
        num_classes: number of classes.
        in_channels: image channels (1 grey, 3 RGB).
        image_size: side of the square images the models see, in pixels.
        mean, std: per-channel normalisation applied after scaling pixels to [0, 1].
        class_names: human-readable class names, when known; for ``folder`` and ``cub200`` a non-empty tuple
            also selects those classes (labelled in this order).
        root: the folder the files were read from, absolute (``None``: the dataset's own lookup).
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = ()
    root: str | None = None

    def to_dict(self) -> dict:
        """The spec as JSON-ready values (what teacher manifests and result files record)."""
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSpec":
        """Inverse of :meth:`to_dict`."""
        return cls(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in d.items()})

    def normalize(self, x01: torch.Tensor) -> torch.Tensor:
        """Map images in [0, 1], ``(N, C, H, W)``, to the normalised input space of the teacher."""
        mean = torch.tensor(self.mean, device=x01.device, dtype=x01.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x01.device, dtype=x01.dtype).view(1, -1, 1, 1)
        return (x01 - mean) / std

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`normalize`: model inputs back to [0, 1] pixels (not clamped)."""
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return x * std + mean

    def pixel_bounds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Lowest and highest valid normalised value per channel, each ``(1, C, 1, 1)``."""
        lo = self.normalize(torch.zeros(1, self.in_channels, 1, 1))
        hi = self.normalize(torch.ones(1, self.in_channels, 1, 1))
        return lo, hi


# Fashion-MNIST is padded from 28 to 32 pixels (exact, no interpolation) so that four stride-2 stages and a
# DCGAN generator starting at 2x2 line up. Mean/std are those of the padded training images.
_FMNIST_MEAN, _FMNIST_STD = (0.2190,), (0.3318,)
_MNIST_MEAN, _MNIST_STD = (0.1000,), (0.2752,)  # MNIST likewise (padded training images)
SPECS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", 10, 1, 32, _FMNIST_MEAN, _FMNIST_STD, FASHION_MNIST_CLASSES),
    "fashion-mnist-upper": DatasetSpec("fashion-mnist-upper", 4, 1, 32, _FMNIST_MEAN, _FMNIST_STD,
                                       tuple(FASHION_MNIST_CLASSES[i] for i in UPPER_BODY_LABELS)),
    "mnist": DatasetSpec("mnist", 10, 1, 32, _MNIST_MEAN, _MNIST_STD, MNIST_CLASSES),
    "cub200": DatasetSpec("cub200", 200, 3, DEFAULT_RGB_SIZE, IMAGENET_MEAN, IMAGENET_STD),
    "folder": DatasetSpec("folder", 0, 3, DEFAULT_RGB_SIZE, IMAGENET_MEAN, IMAGENET_STD),
    "fgvc-aircraft": DatasetSpec("fgvc-aircraft", 100, 3, DEFAULT_RGB_SIZE, IMAGENET_MEAN, IMAGENET_STD),
    "stanford-cars": DatasetSpec("stanford-cars", 196, 3, DEFAULT_RGB_SIZE, IMAGENET_MEAN, IMAGENET_STD),
}
#: Datasets whose classes can be sub-selected by name (``classes=``).
SUBSETTABLE = ("folder", "cub200")


def dataset_spec(name: str) -> DatasetSpec:
    """Return the registered :class:`DatasetSpec` of a dataset (RGB ones with ImageNet mean/std and no class
    names: :func:`resolve_spec` reads those from the files); ``KeyError`` lists the known names."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(SPECS)}") from None


def select_classes(available: list[str], classes) -> tuple[str, ...]:
    """The class names picked by ``classes`` from ``available``, in ``available``'s order.

    ``classes``: ``None`` (all), a list of names, or a string of comma-separated names or shell patterns
    (``"*_Warbler"``, ``"*Sparrow,*Wren"``).

    Raises:
        ValueError: a name or pattern matches nothing (the message lists some available names).
    """
    if classes is None:
        return tuple(available)
    wanted = [c.strip() for c in classes.split(",")] if isinstance(classes, str) else list(classes)
    picked = []
    for w in wanted:
        hits = [a for a in available if fnmatch.fnmatchcase(a, w)]
        if not hits:
            raise ValueError(f"class {w!r} matches none of the {len(available)} classes (e.g. "
                             f"{', '.join(available[:5])}); check the spelling or the pattern")
        picked += hits
    return tuple(a for a in available if a in set(picked))


def spec_from_manifest(manifest: dict) -> DatasetSpec:
    """The :class:`DatasetSpec` a teacher was trained with, or a result was made on (both record it under
    ``"data"``: :func:`~dfkd_lib.teachers.train_teacher`, :func:`~dfkd_lib.experiment.run_distillation`); files
    without it use the registered spec of their ``"dataset"``."""
    if "data" in manifest:
        return DatasetSpec.from_dict(manifest["data"])
    return dataset_spec(manifest["dataset"])


def mean_std(dataset: Dataset, progress: bool = False) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and standard deviation of a dataset of ``(C, H, W)`` tensors in [0, 1] (exact, over
    every pixel of every image, accumulated in float64)."""
    from torch.utils.data import DataLoader
    from tqdm.auto import tqdm

    total, sq, n = None, None, 0
    for x, _ in tqdm(DataLoader(dataset, batch_size=256), desc="mean/std", disable=not progress, leave=False):
        x = x.double().transpose(0, 1).flatten(1)  # (C, N*H*W)
        total = x.sum(1) if total is None else total + x.sum(1)
        sq = (x ** 2).sum(1) if sq is None else sq + (x ** 2).sum(1)
        n += x.shape[1]
    if n == 0:
        raise ValueError("cannot compute mean/std of an empty dataset")
    mean = total / n
    std = (sq / n - mean ** 2).clamp_min(1e-12).sqrt()
    return tuple(round(v, 4) for v in mean.tolist()), tuple(round(v, 4) for v in std.tolist())


def _plain_transform(size: int) -> Callable:
    """Resize + centre crop to ``size`` and [0, 1] tensors, no normalisation (for :func:`mean_std`)."""
    return T.Compose([T.Resize(int(round(size * 256 / 224))), T.CenterCrop(size), T.ToTensor()])


def default_transform(spec: DatasetSpec, train: bool) -> Callable:
    """torchvision transform from a PIL image to a normalised ``(C, H, W)`` tensor.

    Fashion-MNIST and MNIST: pad 28->32 (train adds a random 32 px crop with 2 px padding and, except for the
    datasets in :data:`NO_FLIP`, a horizontal flip).
    RGB benchmarks (DFKD-FGVC Sec. 5.1): Resize(256) then RandomResizedCrop(224) + flip for training,
    CenterCrop(224) for testing; ``image_size`` replaces 224 (and 256 scales with it). The random crop covers
    25-100 % of the image (torchvision's default starts at 8 %, too little of a bird for a teacher trained from
    scratch on a few thousand photos).
    """
    norm = T.Normalize(spec.mean, spec.std)
    if spec.in_channels == 1:
        ops = [T.Pad(2)]
        if train:
            ops += [T.RandomCrop(spec.image_size, padding=2)]
            ops += [] if spec.name in NO_FLIP else [T.RandomHorizontalFlip()]
        return T.Compose(ops + [T.ToTensor(), norm])
    s = spec.image_size
    resize = int(round(s * 256 / 224))
    if train:
        ops = [T.Resize(resize), T.RandomResizedCrop(s, scale=(0.25, 1.0)), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(resize), T.CenterCrop(s)]
    return T.Compose(ops + [T.ToTensor(), norm])


def groups_by_last_word(class_names: Sequence[str], min_size: int = 2) -> dict[str, list[int]]:
    """Class indices grouped by the last word of their names (``"Cape_May_Warbler"`` -> ``"Warbler"``), the
    confusable groups of a fine-grained dataset; groups with fewer than ``min_size`` classes are left out.
    Largest group first (ties by name)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(class_names):
        groups.setdefault(name.replace("-", "_").split("_")[-1], []).append(i)
    kept = {g: idx for g, idx in groups.items() if len(idx) >= min_size}
    return dict(sorted(kept.items(), key=lambda kv: (-len(kv[1]), kv[0])))
