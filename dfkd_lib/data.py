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

Every dataset returns ``(image, label)`` with ``image`` a float tensor ``(C, H, W)`` normalised by its
spec's mean and std, and ``label`` an ``int`` in ``[0, num_classes)``.

RGB datasets are read at :data:`DEFAULT_RGB_SIZE` px unless told otherwise (224 px is the paper's setting).
:func:`resolve_spec` reads what a model needs from the files themselves (class names, optionally a subset of
them such as ``"*_Warbler"``, and the mean/std of the training split at that size); a teacher records that spec
in its manifest, so students, generators and the test split use the teacher's normalisation
(:func:`spec_from_manifest`).
"""
from __future__ import annotations

import fnmatch
import gzip
import os
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

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
SPECS: dict[str, DatasetSpec] = {
    "fashion-mnist": DatasetSpec("fashion-mnist", 10, 1, 32, _FMNIST_MEAN, _FMNIST_STD, FASHION_MNIST_CLASSES),
    "fashion-mnist-upper": DatasetSpec("fashion-mnist-upper", 4, 1, 32, _FMNIST_MEAN, _FMNIST_STD,
                                       tuple(FASHION_MNIST_CLASSES[i] for i in UPPER_BODY_LABELS)),
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
    if root is not None and not Path(root).exists():
        raise DatasetNotFoundError(f"root {root} does not exist; pass the folder that holds the {name} files")
    if base.in_channels == 1:
        if image_size not in (None, base.image_size):
            raise ValueError(f"{name} is read at {base.image_size} px; image_size={image_size} is not available")
        if classes is not None:
            raise ValueError(f"{name} has a fixed class set; classes= works for {', '.join(SUBSETTABLE)}")
        find_fashion_mnist(root)  # a missing root is an error here, not a fall-back to another copy
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


def spec_from_manifest(manifest: dict) -> DatasetSpec:
    """The :class:`DatasetSpec` a teacher was trained with (recorded under ``"data"`` by
    :func:`~dfkd_lib.teachers.train_teacher`; manifests without it use the registered spec of their dataset)."""
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

    Fashion-MNIST: pad 28->32 (train adds a random 32 px crop with 2 px padding and a horizontal flip).
    RGB benchmarks (DFKD-FGVC Sec. 5.1): Resize(256) then RandomResizedCrop(224) + flip for training,
    CenterCrop(224) for testing; ``image_size`` replaces 224 (and 256 scales with it). The random crop covers
    25-100 % of the image (torchvision's default starts at 8 %, too little of a bird for a teacher trained from
    scratch on a few thousand photos).
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
        ops = [T.Resize(resize), T.RandomResizedCrop(s, scale=(0.25, 1.0)), T.RandomHorizontalFlip()]
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
    ``~/.cache/dfkd_lib``). A ``root`` given is the only place looked in (never replaced by another copy).
    Raises :class:`DatasetNotFoundError` naming all three routes otherwise.
    """
    if root is not None:
        candidates = [Path(root), Path(root) / "fashion-mnist", Path(root) / "FashionMNIST" / "raw"]
    else:
        candidates = [Path(os.environ["DFKD_DATA"]) / "fashion-mnist"] if os.environ.get("DFKD_DATA") else []
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


# ------------------------------------------------------------------------------------------- RGB photos
def load_rgb(path) -> "PIL.Image.Image":
    """Open an image file as RGB; :class:`CorruptImageError` names a file that cannot be decoded."""
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


def groups_by_last_word(class_names: Sequence[str], min_size: int = 2) -> dict[str, list[int]]:
    """Class indices grouped by the last word of their names (``"Cape_May_Warbler"`` -> ``"Warbler"``), the
    confusable groups of a fine-grained dataset; groups with fewer than ``min_size`` classes are left out.
    Largest group first (ties by name)."""
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(class_names):
        groups.setdefault(name.replace("-", "_").split("_")[-1], []).append(i)
    kept = {g: idx for g, idx in groups.items() if len(idx) >= min_size}
    return dict(sorted(kept.items(), key=lambda kv: (-len(kv[1]), kv[0])))
