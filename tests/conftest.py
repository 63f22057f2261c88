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
