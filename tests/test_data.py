import gzip
import struct

import numpy as np
import pytest
from PIL import Image

from dfkd_lib import data
from dfkd_lib.data import DatasetNotFoundError, get_dataset

from conftest import needs_fmnist


def _write_idx(path, arr):
    header = bytes([0, 0, 0x08, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + arr.astype(np.uint8).tobytes())


@pytest.fixture
def fake_fmnist(tmp_path):
    """A 6-image Fashion-MNIST in the official IDX format (labels 0, 2, 4, 6, 1, 9)."""
    rng = np.random.default_rng(0)
    for prefix in ("train", "t10k"):
        _write_idx(tmp_path / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
        _write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte.gz", np.array([0, 2, 4, 6, 1, 9]))
    return tmp_path


def test_idx_reader_roundtrip(tmp_path):
    arr = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    _write_idx(tmp_path / "x.gz", arr)
    assert np.array_equal(data.fashion_mnist._read_idx(tmp_path / "x.gz"), arr)


def test_fashion_mnist_from_folder_and_fine_grained_view(fake_fmnist):
    ds = get_dataset("fashion-mnist", train=False, root=fake_fmnist)
    x, y = ds[0]
    assert x.shape == (1, 32, 32) and y == 0 and len(ds) == 6
    up = get_dataset("fashion-mnist-upper", train=True, root=fake_fmnist)
    assert len(up) == 4 and [up[i][1] for i in range(4)] == [0, 1, 2, 3]
    assert up.classes == ["T-shirt/top", "Pullover", "Coat", "Shirt"]


def test_missing_fashion_mnist_names_all_routes(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "DEBIAN_FASHION_MNIST", tmp_path / "none")
    monkeypatch.delenv("DFKD_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError) as e:
        get_dataset("fashion-mnist", root=tmp_path)
    msg = str(e.value)
    assert "apt-get install dataset-fashion-mnist" in msg and "DFKD_DATA" in msg and "download=True" in msg


def test_mnist_from_folder_with_digit_classes_and_no_flip(fake_fmnist):
    import torchvision.transforms as T

    ds = get_dataset("mnist", train=True, root=fake_fmnist)
    assert len(ds) == 6 and ds.classes == [str(d) for d in range(10)] and ds[0][0].shape == (1, 32, 32)
    assert [ds[i][1] for i in range(6)] == [0, 2, 4, 6, 1, 9]
    ops = [type(op) for op in data.default_transform(data.dataset_spec("mnist"), train=True).transforms]
    assert T.RandomCrop in ops and T.RandomHorizontalFlip not in ops        # a mirrored digit is another glyph
    fm = [type(op) for op in data.default_transform(data.dataset_spec("fashion-mnist"), train=True).transforms]
    assert T.RandomHorizontalFlip in fm


def test_missing_mnist_says_make_mnist(tmp_path, monkeypatch):
    monkeypatch.setattr(data.fashion_mnist, "MNIST_CACHE", tmp_path / "none")
    monkeypatch.delenv("DFKD_DATA", raising=False)
    with pytest.raises(DatasetNotFoundError, match="make mnist"):
        get_dataset("mnist")
    with pytest.raises(DatasetNotFoundError, match="make mnist"):
        data.resolve_spec("mnist", root=tmp_path)


def test_unknown_dataset():
    with pytest.raises(KeyError, match="known datasets"):
        get_dataset("imagenet-42")


def _jpg(path, color):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), color).save(path)


def test_cub_official_layout(tmp_path):
    root = tmp_path / "CUB_200_2011"
    names = ["001.Black_footed_Albatross/a.jpg", "001.Black_footed_Albatross/b.jpg", "002.Laysan/c.jpg"]
    for n in names:
        _jpg(root / "images" / n, (200, 10, 10))
    (root / "images.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (root / "train_test_split.txt").write_text("1 1\n2 0\n3 1\n")
    (root / "image_class_labels.txt").write_text("1 1\n2 1\n3 2\n")
    train = get_dataset("cub200", train=True, root=root, image_size=32)
    test = get_dataset("cub200", train=False, root=root, image_size=32)
    assert len(train) == 2 and len(test) == 1
    assert train.targets == [0, 1] and test.targets == [0]
    assert train[0][0].shape == (3, 32, 32)
    with pytest.raises(DatasetNotFoundError, match="images.txt"):
        get_dataset("cub200", root=tmp_path / "nowhere")


def test_folder_tree(tmp_path):
    for split in ("train", "test"):
        for cls in ("a", "b"):
            _jpg(tmp_path / split / cls / "1.jpg", (0, 100, 0))
    ds = get_dataset("folder", train=False, root=tmp_path, image_size=32)
    assert len(ds) == 2 and ds.classes == ["a", "b"] and ds[1][0].shape == (3, 32, 32)
    with pytest.raises(DatasetNotFoundError, match="train/<class>"):
        get_dataset("folder", root=tmp_path / "x")
    with pytest.raises(ValueError, match="needs root"):
        get_dataset("folder")


def test_torchvision_fgvc_missing_files(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="FGVCAircraft"):
        get_dataset("fgvc-aircraft", root=tmp_path)
    with pytest.raises(DatasetNotFoundError, match="manually"):
        get_dataset("stanford-cars", root=tmp_path)


@needs_fmnist
def test_real_fashion_mnist_splits():
    assert len(get_dataset("fashion-mnist", train=False)) == 10_000
    assert len(get_dataset("fashion-mnist", train=True)) == 60_000
    up = get_dataset("fashion-mnist-upper", train=False)
    assert len(up) == 4_000 and set(up.targets.tolist()) == {0, 1, 2, 3}
