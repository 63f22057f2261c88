"""Real RGB photos: CUB-200-2011's official layout, any ``train/<class>/``, ``test/<class>/`` folder, and
torchvision's FGVC-Aircraft and Stanford Cars. Every image is opened by :func:`load_rgb`, which names a corrupt file."""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets

from .spec import CorruptImageError, DatasetNotFoundError


def load_rgb(path):
    """Open an image file as an RGB ``PIL.Image``; :class:`CorruptImageError` names a file that cannot be decoded."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as e:
        raise CorruptImageError(f"cannot read image {path} ({type(e).__name__}: {e}); delete or replace the file")


class CUB200(Dataset):
    """CUB-200-2011 (Wah et al. 2011) from its official layout, labels 0..199 (or 0..k-1 for ``classes``).

    ``root`` must contain ``images.txt``, ``train_test_split.txt``, ``image_class_labels.txt``, ``classes.txt``
    (optional: class names) and ``images/``; raises :class:`DatasetNotFoundError` with download instructions
    otherwise. ``classes``: keep only these class names (as in ``classes.txt``), relabelled in this order.
    """

    FILES = ("images.txt", "train_test_split.txt", "image_class_labels.txt")

    def __init__(self, root, train: bool = True, transform: Callable | None = None,
                 classes: tuple[str, ...] | None = None):
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
        if (root / "classes.txt").is_file():
            names = [line.split(maxsplit=1)[1] for line in (root / "classes.txt").read_text().splitlines() if line]
        else:
            names = [str(i) for i in range(1, max(int(v) for v in label.values()) + 1)]
        keep = list(classes) if classes else names
        relabel = {names.index(c): i for i, c in enumerate(keep)}
        want = "1" if train else "0"
        ids = sorted((i for i in paths if split[i] == want and int(label[i]) - 1 in relabel), key=int)
        self.samples = [(root / "images" / paths[i].strip(), relabel[int(label[i]) - 1]) for i in ids]
        self.targets = [y for _, y in self.samples]
        self.classes = keep
        self.transform = transform

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        path, y = self.samples[i]
        img = load_rgb(path)
        if self.transform is not None:
            img = self.transform(img)
        return img, y


class _SelectedImageFolder(tv_datasets.ImageFolder):
    """``ImageFolder`` over the class sub-folders named in ``selected`` only (labels in that order)."""

    def __init__(self, root, selected: tuple[str, ...], **kw):
        self._selected = selected
        super().__init__(root, **kw)

    def find_classes(self, directory):
        present = {d.name for d in Path(directory).iterdir() if d.is_dir()}
        missing = [c for c in self._selected if c not in present]
        if missing:
            raise DatasetNotFoundError(f"{directory} has no class folder {', '.join(missing[:5])}")
        return list(self._selected), {c: i for i, c in enumerate(self._selected)}


def folder_dataset(root, train: bool = True, transform: Callable | None = None,
                   classes: tuple[str, ...] | None = None) -> tv_datasets.ImageFolder:
    """``root/train/<class>/*`` or ``root/test/<class>/*`` as a torchvision ``ImageFolder`` (``classes``: only
    these class folders, labelled in that order).

    Raises:
        DatasetNotFoundError: the split folder is missing, or a class folder holds no image.
    """
    sub = Path(root) / ("train" if train else "test")
    if not sub.is_dir():
        raise DatasetNotFoundError(f"folder dataset: {sub} does not exist; expected {root}/train/<class>/*.jpg "
                                   f"and {root}/test/<class>/*.jpg")
    try:
        if classes:
            return _SelectedImageFolder(str(sub), tuple(classes), transform=transform, loader=load_rgb)
        return tv_datasets.ImageFolder(str(sub), transform=transform, loader=load_rgb)
    except FileNotFoundError as e:  # torchvision: "Found no valid file for the classes X. Supported ..."
        raise DatasetNotFoundError(f"folder dataset {sub}: {str(e).split('. Supported')[0]}; every class "
                                   "folder needs at least one image (.jpg, .png, ...): add images or remove it")


def _torchvision_fgvc(cls, root, split: str, transform, download: bool, how: str, **kw):
    try:
        return cls(str(root), split=split, transform=transform, download=download, **kw)
    except RuntimeError as e:  # torchvision raises RuntimeError("Dataset not found ...")
        raise DatasetNotFoundError(f"{cls.__name__} not found under {root}: {e}. {how}") from e
