import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from dfkd_lib.data import DEBIAN_FASHION_MNIST

HAS_FMNIST = (DEBIAN_FASHION_MNIST / "t10k-images-idx3-ubyte.gz").is_file()
needs_fmnist = pytest.mark.skipif(not HAS_FMNIST, reason="Fashion-MNIST not installed (make data)")


@pytest.fixture
def tiny_loader():
    """A real-looking test loader of 8 random 1x32x32 images with labels in 0..9."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 1, 32, 32, generator=g)
    y = torch.randint(0, 10, (8,), generator=g)
    return DataLoader(TensorDataset(x, y), batch_size=4)


@pytest.fixture
def tiny_teacher(tmp_path):
    """A saved, untrained resnet8 (width 4) Fashion-MNIST teacher with its manifest, for fast-mode runs of
    ``run_distillation`` (skips the test where Fashion-MNIST is not installed)."""
    if not HAS_FMNIST:
        pytest.skip("Fashion-MNIST not installed")
    from dfkd_lib.checkpoint import save_model
    from dfkd_lib.models import resnet8

    path = tmp_path / "teacher.pt"
    save_model(resnet8(10, 1, 4), path, {"architecture": "resnet8", "width": 4, "num_classes": 10,
                                         "in_channels": 1, "dataset": "fashion-mnist", "test_accuracy": 0.1})
    return path
