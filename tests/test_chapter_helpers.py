"""The library pieces the chapters call instead of writing them: SFCL logits and projector activity, eval_mode,
the per-student-step callback of distill, and the BN-only generator trainer."""
import pytest
import torch
import torch.nn.functional as F

from dfkd_lib import (DistillConfig, GeneratorSynthesizer, Projector, distill, eval_mode, sfcl_logits, sfcl_loss,
                      train_generator_bn)
from dfkd_lib.data import dataset_spec
from dfkd_lib.methods import AdversarialBNDistillation
from dfkd_lib.models import resnet8
from dfkd_lib.models.generators import DCGANGenerator

SPEC = dataset_spec("fashion-mnist")


def test_sfcl_logits_mask_the_anchor_and_give_the_loss():
    torch.manual_seed(0)
    zt, zs = torch.randn(5, 7), torch.randn(5, 7)
    lg = sfcl_logits(zt, zs, 0.5)
    assert lg.shape == (5, 10) and torch.isinf(lg.diagonal()).all() and torch.isfinite(lg[:, 5:]).all()
    t, s = F.normalize(zt, dim=1), F.normalize(zs, dim=1)
    assert torch.allclose(lg[1, 5 + 3], (t[1] @ s[3]) / 0.5) and torch.allclose(lg[1, 2], (t[1] @ t[2]) / 0.5)
    by_hand = -torch.log_softmax(lg, 1)[torch.arange(5), 5 + torch.arange(5)].mean()
    assert torch.allclose(by_hand, sfcl_loss(zt, zs, 0.5))
    with pytest.raises(ValueError, match="tau must be > 0"):
        sfcl_logits(zt, zs, 0.0)


def test_projector_activity_sees_dead_units():
    torch.manual_seed(0)
    proj, x = Projector(6, 8, 4), torch.randn(10, 6)
    alive = proj.activity(x)
    assert 0 < alive["hidden 1: units active on some input"] <= 1 and -1 <= alive["input: mean cos to their mean"] <= 1
    with torch.no_grad():  # every second-layer unit pushed below zero: the outputs are the last bias for any input
        proj.net[2].bias.fill_(-1e3)
    dead = proj.activity(x)
    assert dead["hidden 2: units active on some input"] == 0
    assert dead["output: mean cos to their mean"] == pytest.approx(1.0)


def test_eval_mode_restores_each_submodule_also_after_an_error():
    a, b = resnet8(10, 1, 4).train(), resnet8(10, 1, 4).eval()
    a.fc.eval()  # a mixed state must come back as it was
    with pytest.raises(RuntimeError):
        with eval_mode(a, b, None):
            assert not any(m.training for m in a.modules())
            raise RuntimeError
    assert a.training and not a.fc.training and not b.training


def test_distill_calls_on_student_step_before_each_student_step(tiny_loader):
    torch.manual_seed(0)
    t, s, g = resnet8(10, 1, 4).eval(), resnet8(10, 1, 4), DCGANGenerator.for_dataset(SPEC, nz=8, width=4)
    cfg = DistillConfig(epochs=2, iterations_per_epoch=2, batch_size=4, generator_steps=1, student_steps=3)
    seen = []
    distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg, progress=False,
            on_student_step=seen.append)
    assert seen == list(range(2 * 2 * 3))


def test_train_generator_bn_lowers_the_bn_loss_and_leaves_the_teacher_as_it_was():
    torch.manual_seed(0)
    teacher = resnet8(10, 1, 4).train()  # fitting must not touch its running statistics or its mode
    with torch.no_grad():
        for m in teacher.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.5, 0.5)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    g = DCGANGenerator.for_dataset(SPEC, nz=8, width=4)
    losses = train_generator_bn(g, teacher, steps=30, batch_size=8, lr=1e-2,
                                noise=torch.Generator().manual_seed(1))
    assert len(losses) == 30 and losses[-1] < losses[0]
    assert not g.training and teacher.training and all(p.requires_grad for p in teacher.parameters())
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())


def test_fixed_images_feed_the_loop_without_synthesis(tiny_loader):
    from dfkd_lib.methods.dfkd_fgvc import DFKDFGVC
    from dfkd_lib.synthesizers import FixedImages

    torch.manual_seed(0)
    pool = torch.rand(20, 1, 32, 32)
    t, s = resnet8(10, 1, 4).eval(), resnet8(10, 1, 4)
    cfg = DistillConfig(epochs=1, iterations_per_epoch=3, batch_size=4, generator_steps=0, student_steps=1)
    res = distill(t, s, FixedImages(pool), DFKDFGVC(beta=0, gamma=8.0), tiny_loader, cfg, progress=False)
    assert "S/L_SFCL" in res.history[0] and not any(k.startswith("G/") for k in res.history[0])
    with pytest.raises(ValueError, match="non-empty"):
        FixedImages(torch.rand(0, 1, 32, 32))
