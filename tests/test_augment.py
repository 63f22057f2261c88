import pytest
import torch

from dfkd_lib.augment import augment_batch
from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import distill
from dfkd_lib.synthesizers import GeneratorSynthesizer
from dfkd_lib.methods import AdversarialBNDistillation


def test_each_image_is_a_shifted_or_flipped_crop_of_itself():
    torch.manual_seed(0)
    x = torch.randn(16, 2, 8, 8)
    out = augment_batch(x, padding=2)
    assert out.shape == x.shape and out.dtype == x.dtype
    padded = torch.nn.functional.pad(x, (2, 2, 2, 2), mode="replicate")
    for img, p in zip(out, padded):
        found = any(torch.equal(img, cand) for i in range(5) for j in range(5)
                    for cand in (p[:, i:i + 8, j:j + 8], p[:, i:i + 8, j:j + 8].flip(-1)))
        assert found
    assert not torch.equal(out, x)  # 16 images: the chance that all are left as they were is negligible


def test_seeded_runs_repeat_and_images_draw_their_own_crop():
    x = torch.arange(4 * 36, dtype=torch.float32).reshape(4, 1, 6, 6).repeat(8, 1, 1, 1)
    torch.manual_seed(3)
    a = augment_batch(x)
    torch.manual_seed(3)
    assert torch.equal(a, augment_batch(x))
    assert len({tuple(img.flatten().tolist()) for img in a[::4]}) > 1  # equal inputs, different crops


def test_zero_padding_leaves_only_flips():
    x = torch.randn(6, 1, 5, 5)
    out = augment_batch(x, padding=0)
    assert all(torch.equal(o, i) or torch.equal(o, i.flip(-1)) for o, i in zip(out, x))


@pytest.mark.parametrize("x, padding, match", [(torch.zeros(3, 8, 8), 4, "N, C, H, W"),
                                               (torch.zeros(2, 1, 8, 8), -1, "padding")])
def test_bad_input_is_a_clear_error(x, padding, match):
    with pytest.raises(ValueError, match=match):
        augment_batch(x, padding)


def test_distill_with_augmented_student_batches(tiny_loader):
    from dfkd_lib.data import dataset_spec
    from dfkd_lib.models import resnet8
    from dfkd_lib.models.generators import DCGANGenerator

    torch.manual_seed(0)
    teacher, student = resnet8(10, 1, 4).eval(), resnet8(10, 1, 4)
    gen = DCGANGenerator.for_dataset(dataset_spec("fashion-mnist"), nz=8, width=4)
    cfg = DistillConfig(epochs=1, iterations_per_epoch=2, batch_size=4, generator_steps=1, student_steps=2,
                        pool_size=16, augment=True)
    res = distill(teacher, student, GeneratorSynthesizer(gen), AdversarialBNDistillation(), tiny_loader, cfg,
                  progress=False)
    assert len(res.history) == 1 and torch.isfinite(torch.tensor(res.history[0]["S/L_KD"]))
