"""Real image datasets, their resolution, channels and normalisation, all in one place.

Data-free distillation never shows the student a real training image; real data appears only to train the
teacher and, on the *test* split, to measure the student. Datasets:

``fashion-mnist``
    The embedded default: 60,000/10,000 28x28 grey images, 10 classes, read from the official IDX files.
    Looked for in ``root``, then ``$DFKD_DATA/fashion-mnist``, then ``/usr/share/datasets/fashion-mnist``
    (Debian: ``apt-get install dataset-fashion-mnist``); with ``download=True`` torchvision fetches it.
``fashion-mnist-upper``
    A fine-grained view of it: the four confusable upper-body garments (T-shirt/top, Pullover, Coat, Shirt;
    original labels 0, 2, 4, 6) relabelled 0..3.
``cub200``
    CUB-200-2011 in its official layout (``images.txt``, ``train_test_split.txt``, ``image_class_labels.txt``,
    ``images/``).
``folder``
    Any ``train/<class>/*`` + ``test/<class>/*`` tree (read with ``torchvision.datasets.ImageFolder``).
``fgvc-aircraft`` / ``stanford-cars``
    torchvision's ``FGVCAircraft`` (trainval/test, ``variant``) and ``StanfordCars``.

Every dataset returns ``(image, label)`` with ``image`` a float tensor ``(C, H, W)`` normalised by
:func:`dataset_spec`'s mean and std, and ``label`` an ``int`` in ``[0, num_classes)``.
"""
from __future__ import annotations

import gzip
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms as T

FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")
UPPER_BODY_LABELS = (0, 2, 4, 6)
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are not where they were looked for; the message says how to get them."""


@dataclass(frozen=True)
class DatasetSpec:
    """What a model and a generator need to know about a dataset.

    Attributes:
        name: registry name.
        num_classes: number of classes.
        in_channels: image channels (1 grey, 3 RGB).
        image_size: side of the square images the models see, in pixels.
        mean, std: per-channel normalisation applied after scaling pixels to [0, 1].
        class_names: human-readable class names, when known.
    """

    name: str
    num_classes: int
    in_channels: int
    image_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    class_names: tuple[str, ...] = ()

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
SPECS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", 10, 1, 32, _FMNIST_MEAN, _FMNIST_STD, FASHION_MNIST_CLASSES),
    "fashion-mnist-upper": DatasetSpec("fashion-mnist-upper", 4, 1, 32, _FMNIST_MEAN, _FMNIST_STD,
                                       tuple(FASHION_MNIST_CLASSES[i] for i in UPPER_BODY_LABELS)),
    "cub200": DatasetSpec("cub200", 200, 3, 224, IMAGENET_MEAN, IMAGENET_STD),
    "folder": DatasetSpec("folder", 0, 3, 224, IMAGENET_MEAN, IMAGENET_STD),
    "fgvc-aircraft": DatasetSpec("fgvc-aircraft", 100, 3, 224, IMAGENET_MEAN, IMAGENET_STD),
    "stanford-cars": DatasetSpec("stanford-cars", 196, 3, 224, IMAGENET_MEAN, IMAGENET_STD),
}


def dataset_spec(name: str) -> DatasetSpec:
    """Return the :class:`DatasetSpec` of a registered dataset; ``KeyError`` lists the known names."""
    try:
        return SPECS[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(SPECS)}") from None


def default_transform(spec: DatasetSpec, train: bool) -> Callable:
    """torchvision transform from a PIL image to a normalised ``(C, H, W)`` tensor.

    Fashion-MNIST: pad 28->32 (train adds a random 32 px crop with 2 px padding and a horizontal flip).
    RGB benchmarks (DFKD-FGVC Sec. 5.1): Resize(256) then RandomResizedCrop(224) + flip for training,
    CenterCrop(224) for testing; ``image_size`` replaces 224 (and 256 scales with it).
    """
    norm = T.Normalize(spec.mean, spec.std)
    if spec.in_channels == 1:
        ops = [T.Pad(2)]
        if train:
            ops += [T.RandomCrop(spec.image_size, padding=2), T.RandomHorizontalFlip()]
        return T.Compose(ops + [T.ToTensor(), norm])
    s = spec.image_size
    resize = int(round(s * 256 / 224))
    if train:
        ops = [T.Resize(resize), T.RandomResizedCrop(s), T.RandomHorizontalFlip()]
    else:
        ops = [T.Resize(resize), T.CenterCrop(s)]
    return T.Compose(ops + [T.ToTensor(), norm])


# ----------------------------------------------------------------------------------------- Fashion-MNIST
def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (optionally gzipped) into a numpy array (LeCun's format: magic, dims, uint8 data)."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    arr = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if arr.size != int(np.prod(shape)):
        raise ValueError(f"{path}: header says {shape} but holds {arr.size} bytes")
    return arr.reshape(shape)


def _idx_file(root: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (root / name).is_file():
            return root / name
    return None


def find_fashion_mnist(root: str | os.PathLike | None = None, download: bool = False) -> Path:
    """Folder holding the four Fashion-MNIST IDX files.

    Looks in ``root``, ``$DFKD_DATA/fashion-mnist`` and ``/usr/share/datasets/fashion-mnist``; with
    ``download=True`` and none found, torchvision downloads the files to ``root`` (default
    ``~/.cache/dfkd_lib``). Raises :class:`DatasetNotFoundError` naming all three routes otherwise.
    """
    candidates = []
    if root is not None:
        candidates += [Path(root), Path(root) / "fashion-mnist", Path(root) / "FashionMNIST" / "raw"]
    if os.environ.get("DFKD_DATA"):
        candidates.append(Path(os.environ["DFKD_DATA"]) / "fashion-mnist")
    candidates.append(DEBIAN_FASHION_MNIST)
    for c in candidates:
        if all(_idx_file(c, s) for s in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
            return c
    if download:
        dest = Path(root) if root is not None else Path.home() / ".cache" / "dfkd_lib"
        tv_datasets.FashionMNIST(str(dest), train=True, download=True)
        tv_datasets.FashionMNIST(str(dest), train=False, download=True)
        return dest / "FashionMNIST" / "raw"
    raise DatasetNotFoundError(
        "Fashion-MNIST IDX files not found (looked in: " + ", ".join(str(c) for c in candidates) + ").\n"
        "Get them by one of:\n"
        "  1. Debian/Ubuntu: sudo apt-get install dataset-fashion-mnist  (files in /usr/share/datasets/fashion-mnist)\n"
        "  2. a local folder holding train-images-idx3-ubyte.gz etc.: pass root=... or set DFKD_DATA\n"
        "  3. online: pass download=True (torchvision.datasets.FashionMNIST downloads them)")


class FashionMNIST(Dataset):
    """Fashion-MNIST read straight from its IDX files (Xiao et al. 2017), torchvision-style.

    Args:
        root: folder with the IDX files, or ``None`` to search (see :func:`find_fashion_mnist`).
        train: ``True`` for the 60,000 training images, ``False`` for the 10,000 test images.
        transform: applied to each PIL image; default :func:`default_transform`.
        classes: keep only these original labels and relabel them ``0..len(classes)-1`` in the given order.
        download: let torchvision fetch the files when they are not found locally.
    """

    def __init__(self, root=None, train: bool = True, transform: Callable | None = None,
                 classes: tuple[int, ...] | None = None, download: bool = False):
        folder = find_fashion_mnist(root, download)
        prefix = "train" if train else "t10k"
        images = _read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        if classes is not None:
            keep = np.isin(labels, classes)
            remap = {c: i for i, c in enumerate(classes)}
            images, labels = images[keep], np.array([remap[int(l)] for l in labels[keep]], dtype=np.int64)
        self.folder, self.train = folder, train
        self.data, self.targets = torch.from_numpy(images.copy()), torch.from_numpy(labels)
        self.classes = [FASHION_MNIST_CLASSES[c] for c in (classes or range(10))]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.data[i].numpy(), mode="L")
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[i])


# ------------------------------------------------------------------------------------------- CUB-200-2011
class CUB200(Dataset):
    """CUB-200-2011 (Wah et al. 2011) from its official layout, labels 0..199.

    ``root`` must contain ``images.txt``, ``train_test_split.txt``, ``image_class_labels.txt`` and
    ``images/``; raises :class:`DatasetNotFoundError` with download instructions otherwise.
    """

    FILES = ("images.txt", "train_test_split.txt", "image_class_labels.txt")

    def __init__(self, root, train: bool = True, transform: Callable | None = None):
        root = Path(root)
        missing = [f for f in self.FILES + ("images",) if not (root / f).exists()]
        if missing:
            raise DatasetNotFoundError(
                f"CUB-200-2011 not found at {root} (missing {', '.join(missing)}). Download CUB_200_2011.tgz "
                "from https://www.vision.caltech.edu/datasets/cub_200_2011/ and extract it; pass the folder "
                "that holds images.txt.")
        paths = dict(line.split(maxsplit=1) for line in (root / "images.txt").read_text().splitlines() if line)
        split = dict(line.split() for line in (root / "train_test_split.txt").read_text().splitlines() if line)
        label = dict(line.split() for line in (root / "image_class_labels.txt").read_text().splitlines() if line)
        want = "1" if train else "0"
        ids = sorted((i for i in paths if split[i] == want), key=int)
        self.samples = [(root / "images" / paths[i].strip(), int(label[i]) - 1) for i in ids]
        self.targets = [y for _, y in self.samples]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        from PIL import Image

        path, y = self.samples[i]
        img = Image.open(path).convert("RGB")
        if self.transform is not None:
            img = self.transform(img)
        return img, y


def folder_dataset(root, train: bool = True, transform: Callable | None = None) -> tv_datasets.ImageFolder:
    """``root/train/<class>/*`` or ``root/test/<class>/*`` as a torchvision ``ImageFolder``."""
    sub = Path(root) / ("train" if train else "test")
    if not sub.is_dir():
        raise DatasetNotFoundError(f"folder dataset: {sub} does not exist; expected {root}/train/<class>/*.jpg "
                                   f"and {root}/test/<class>/*.jpg")
    return tv_datasets.ImageFolder(str(sub), transform=transform)


def _torchvision_fgvc(cls, root, split: str, transform, download: bool, how: str, **kw):
    try:
        return cls(str(root), split=split, transform=transform, download=download, **kw)
    except RuntimeError as e:  # torchvision raises RuntimeError("Dataset not found ...")
        raise DatasetNotFoundError(f"{cls.__name__} not found under {root}: {e}. {how}") from e


# -------------------------------------------------------------------------------------------- registry
def get_dataset(name: str, train: bool = True, root=None, transform: Callable | None = None,
                download: bool = False, image_size: int | None = None, **kwargs) -> Dataset:
    """Build a dataset by name (see the module docstring for the names).

    Args:
        name: registry name.
        train: training split if ``True``, test split otherwise.
        root: where the files are (required for ``cub200``, ``folder``, ``fgvc-aircraft``, ``stanford-cars``).
        transform: PIL -> tensor transform; default :func:`default_transform` for the split.
        download: allow torchvision to download (Fashion-MNIST, FGVC-Aircraft) when online.
        image_size: override the spec's resolution for RGB datasets.
        **kwargs: ``variant`` for FGVC-Aircraft ("variant", "family", "manufacturer").

    Raises:
        KeyError: unknown name. DatasetNotFoundError: files missing (the message says how to get them).
        ValueError: a dataset that needs ``root`` got none.
    """
    spec = dataset_spec(name)
    if image_size is not None:
        spec = DatasetSpec(spec.name, spec.num_classes, spec.in_channels, image_size, spec.mean, spec.std,
                           spec.class_names)
    tf = transform if transform is not None else default_transform(spec, train)
    if name == "fashion-mnist":
        return FashionMNIST(root, train, tf, download=download)
    if name == "fashion-mnist-upper":
        return FashionMNIST(root, train, tf, classes=UPPER_BODY_LABELS, download=download)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root= (the folder holding its files)")
    if name == "cub200":
        return CUB200(root, train, tf)
    if name == "folder":
        return folder_dataset(root, train, tf)
    if name == "fgvc-aircraft":
        return _torchvision_fgvc(tv_datasets.FGVCAircraft, root, "trainval" if train else "test", tf, download,
                                 "Pass download=True when online, or place fgvc-aircraft-2013b/ under root.",
                                 annotation_level=kwargs.get("variant", "variant"))
    if name == "stanford-cars":
        return _torchvision_fgvc(tv_datasets.StanfordCars, root, "train" if train else "test", tf, False,
                                 "The official Stanford Cars links are dead: obtain the dataset manually "
                                 "(e.g. from a Kaggle mirror) and place stanford_cars/ with its devkit under root.")
    raise KeyError(name)  # pragma: no cover - SPECS and this function list the same names


def num_classes_of(dataset: Dataset) -> int:
    """Number of classes of a dataset built by :func:`get_dataset`."""
    if hasattr(dataset, "classes"):
        return len(dataset.classes)
    return int(max(dataset.targets)) + 1
