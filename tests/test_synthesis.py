"""DeepInversion / ADI / ZSKD synthesis, the image pool, and distillation through the shared loop (tiny)."""
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dfkd_lib.checkpoint import safe_load
from dfkd_lib.data import dataset_spec
from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import distill
from dfkd_lib.hooks import NoBatchNormError, batchnorm_layers
from dfkd_lib.losses import kd_loss
from dfkd_lib.methods import METHODS, Step, build_method
from dfkd_lib.methods.inversion import KDOnSynthetic, make_inversion_run
from dfkd_lib.models import resnet8
from dfkd_lib.synthesizers import (class_similarity, deep_inversion, ImagePool, InversionSynthesizer, sample_dirichlet_targets, zskd_synthesize, ZSKDSynthesizer)

SPEC = dataset_spec("fashion-mnist")
LO, HI = (b.item() for b in SPEC.pixel_bounds())


def tiny(seed=0):
    torch.manual_seed(seed)
    return resnet8(num_classes=10, in_channels=1, width=4)


class NoBN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc = nn.Linear(2, 10)

    def forward(self, x):
        return self.fc(self.conv(x).mean((2, 3)))


def in_bounds(x):
    return bool(torch.isfinite(x).all() and x.min() >= LO - 1e-6 and x.max() <= HI + 1e-6)


# ------------------------------------------------------------------------------------------- deep_inversion
def test_deep_inversion_finite_bounded_and_teacher_untouched():
    teacher = tiny().train()  # deliberately in train mode: inversion must not update its BN statistics
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    targets = torch.tensor([0, 1, 2, 3])
    res = deep_inversion(teacher, targets, SPEC, steps=5, progress=False)
    assert res.images.shape == (4, 1, 32, 32) and in_bounds(res.images)
    assert not res.images.requires_grad
    assert len(res.history) == 5
    assert {"step", "loss", "CE", "TV", "l2", "BN", "teacher_acc"} <= set(res.history[0])
    assert "BN_layers" in res.history[0] and "BN_layers" in res.history[-1]
    assert len(res.history[0]["BN_layers"]) == len(batchnorm_layers(teacher)) == 12  # stem, 8 in blocks, 3 shortcuts
    assert all(math.isfinite(h["loss"]) for h in res.history)
    assert 0.0 <= res.final["teacher_acc"] <= 1.0
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    for k, v in teacher.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_deep_inversion_is_seeded():
    teacher = tiny()
    t = torch.tensor([1, 5])
    a = deep_inversion(teacher, t, SPEC, steps=2, seed=3, progress=False).images
    b = deep_inversion(teacher, t, SPEC, steps=2, seed=3, progress=False).images
    c = deep_inversion(teacher, t, SPEC, steps=2, seed=4, progress=False).images
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_clamping_holds_with_a_huge_learning_rate():
    res = deep_inversion(tiny(), torch.tensor([0, 1, 2]), SPEC, steps=2, lr=10.0, progress=False)
    assert in_bounds(res.images)
    assert res.images.min().item() == pytest.approx(LO) and res.images.max().item() == pytest.approx(HI)


def test_cross_entropy_decreases():
    res = deep_inversion(tiny(), torch.tensor([0, 3, 7, 9]), SPEC, steps=15, lr=0.1, jitter=0, flip=False,
                         progress=False)
    assert res.final["CE"] < res.history[0]["CE"]


def test_teacher_without_batchnorm():
    with pytest.raises(NoBatchNormError, match="BatchNorm2d"):
        deep_inversion(NoBN(), torch.tensor([0, 1]), SPEC, steps=1, progress=False)
    res = deep_inversion(NoBN(), torch.tensor([0, 1]), SPEC, steps=2, alpha_f=0.0, progress=False)
    assert "BN" not in res.history[0] and in_bounds(res.images)


def test_adi_competition_term_and_student_restored():
    teacher, student = tiny(0), tiny(1).train()
    before = {k: v.clone() for k, v in student.state_dict().items()}
    with pytest.raises(ValueError, match="student"):
        deep_inversion(teacher, torch.tensor([0, 1]), SPEC, steps=1, alpha_c=0.5, progress=False)
    res = deep_inversion(teacher, torch.tensor([0, 1]), SPEC, steps=3, alpha_c=0.5, student=student,
                         progress=False)
    assert all(1 - math.log(2) - 1e-6 <= h["compete"] <= 1 + 1e-6 for h in res.history)
    assert student.training and all(p.requires_grad for p in student.parameters())
    for k, v in student.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_snapshots_and_early_stop():
    res = deep_inversion(tiny(), torch.tensor([0, 1]), SPEC, steps=5, snapshot_every=2, progress=False)
    assert [s for s, _ in res.snapshots] == [0, 2, 4, 5]
    assert res.snapshots[0][1].device.type == "cpu" and res.snapshots[-1][1].shape == (2, 1, 32, 32)
    assert torch.equal(res.snapshots[-1][1], res.images.cpu())
    seen = []
    res = deep_inversion(tiny(), torch.tensor([0, 1]), SPEC, steps=10, snapshot_every=4, progress=False,
                         callback=lambda step, x, terms: seen.append(step) or step == 3)
    assert seen == [1, 2, 3] and len(res.history) == 3 and res.snapshots[-1][0] == 3


def test_deep_inversion_rejects_bad_targets():
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        deep_inversion(tiny(), torch.tensor([0, 10]), SPEC, steps=1, progress=False)
    with pytest.raises(ValueError, match="class indices"):
        deep_inversion(tiny(), torch.tensor([0.0, 1.0]), SPEC, steps=1, progress=False)
    with pytest.raises(ValueError, match="alpha_tv"):
        deep_inversion(tiny(), torch.tensor([0]), SPEC, steps=1, alpha_tv=-1.0, progress=False)


# -------------------------------------------------------------------------------------------- ImagePool
def batch(values, label_offset=0):
    x = torch.tensor(values, dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return x, torch.tensor(values) + label_offset


def test_pool_fifo_capacity():
    pool = ImagePool(capacity=5)
    for vals in ([0, 1, 2], [3, 4, 5]):
        pool.add(*batch(vals))
    assert len(pool) == 5 and pool.total_added == 6
    assert pool.images[:, 0, 0, 0].tolist() == [1, 2, 3, 4, 5]
    assert pool.labels.tolist() == [1, 2, 3, 4, 5]
    pool.add(*batch([6, 7, 8, 9, 10, 11, 12]))  # one batch larger than the capacity keeps its newest images
    assert pool.images[:, 0, 0, 0].tolist() == [8, 9, 10, 11, 12]


def test_pool_sampling():
    pool = ImagePool(capacity=10)
    x, y = batch(list(range(6)))
    pool.add(x, y)
    x[:] = -1  # the pool keeps its own copy
    s, labels = pool.sample(6, generator=torch.Generator().manual_seed(0), return_labels=True)
    assert sorted(s[:, 0, 0, 0].tolist()) == list(range(6))  # without replacement when n <= len
    assert torch.equal(s[:, 0, 0, 0].long(), labels)
    assert pool.sample(20).shape == (20, 1, 2, 2)  # with replacement beyond len
    g1, g2 = torch.Generator().manual_seed(5), torch.Generator().manual_seed(5)
    assert torch.equal(pool.sample(3, generator=g1), pool.sample(3, generator=g2))
    with pytest.raises(ValueError, match="empty"):
        ImagePool(4).sample(1)


def test_pool_errors_state_and_file(tmp_path):
    pool = ImagePool(capacity=4)
    pool.add(*batch([1, 2]))
    with pytest.raises(ValueError, match="labelled"):
        pool.add(batch([3])[0])
    with pytest.raises(ValueError, match="labels"):
        pool.add(batch([3, 4])[0], torch.tensor([1]))
    with pytest.raises(ValueError, match="do not fit"):
        pool.add(torch.zeros(1, 3, 2, 2), torch.tensor([0]))
    with pytest.raises(ValueError, match="capacity"):
        ImagePool(0)
    other = ImagePool(1)
    other.load_state_dict(pool.state_dict())
    assert len(other) == 2 and other.capacity == 4 and torch.equal(other.labels, pool.labels)
    pool.save(tmp_path / "pool.pt")
    loaded = ImagePool.load(tmp_path / "pool.pt")
    assert torch.equal(loaded.images, pool.images) and loaded.total_added == 2


# ----------------------------------------------------------------------------------------------- ZSKD
def test_class_similarity_by_hand():
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    r = 1 / math.sqrt(2)
    # cosines: row 0 (1, 0, r) -> min-max (1, 0, r); row 2 (r, r, 1) -> (0, 0, 1)
    expected = torch.tensor([[1.0, 0.0, r], [0.0, 1.0, r], [0.0, 0.0, 1.0]])
    assert torch.allclose(class_similarity(w), expected, atol=1e-6)
    torch.manual_seed(0)
    s = class_similarity(torch.randn(7, 5))
    assert s.shape == (7, 7)
    assert torch.allclose(s.diagonal(), torch.ones(7))
    assert torch.allclose(s.min(1).values, torch.zeros(7)) and torch.allclose(s.max(1).values, torch.ones(7))
    with pytest.raises(ValueError):
        class_similarity(torch.randn(1, 4))


def test_dirichlet_targets():
    sim = class_similarity(torch.randn(4, 6, generator=torch.Generator().manual_seed(1)))
    soft, classes = sample_dirichlet_targets(sim, 6, generator=torch.Generator().manual_seed(0))
    assert soft.shape == (24, 4) and classes.tolist() == [c for c in range(4) for _ in range(6)]
    assert torch.all(soft >= 0) and torch.allclose(soft.sum(1), torch.ones(24), atol=1e-6)
    again, _ = sample_dirichlet_targets(sim, 6, generator=torch.Generator().manual_seed(0))
    assert torch.equal(soft, again)
    # large beta: the samples concentrate on the normalised similarity row, own class highest
    many, cl = sample_dirichlet_targets(sim, 200, beta_scales=(200.0,), generator=7)
    means = torch.stack([many[cl == c].mean(0) for c in range(4)])
    assert torch.equal(means.argmax(1), torch.arange(4))
    target = sim.clamp_min(1e-3) / sim.clamp_min(1e-3).sum(1, keepdim=True)
    assert torch.allclose(means, target, atol=0.02)
    # tiny beta: nearly one-hot
    sharp, _ = sample_dirichlet_targets(sim, 50, beta_scales=(0.01,), generator=3)
    assert (sharp.max(1).values > 0.9).float().mean() > 0.8
    with pytest.raises(ValueError):
        sample_dirichlet_targets(sim, 0)


def test_zskd_synthesize():
    teacher = NoBN()  # ZSKD needs no BatchNorm
    soft, _ = sample_dirichlet_targets(class_similarity(teacher.fc.weight), 1, generator=0)
    res = zskd_synthesize(teacher, soft, SPEC, steps=15, lr=0.1, progress=False)
    assert res.images.shape == (10, 1, 32, 32) and in_bounds(res.images)
    assert res.final["KL"] < res.history[0]["KL"] and res.history[0]["KL"] >= -1e-5
    with pytest.raises(ValueError, match="probability"):
        zskd_synthesize(teacher, torch.ones(2, 10), SPEC, steps=1, progress=False)
    with pytest.raises(ValueError, match="classes"):
        zskd_synthesize(teacher, torch.full((2, 4), 0.25), SPEC, steps=1, progress=False)


# ------------------------------------------------------------------------------------ methods and engine
def test_kd_on_synthetic_method():
    assert {"deepinversion", "adi", "zskd"} <= set(METHODS)
    m = build_method("zskd")
    assert isinstance(m, KDOnSynthetic) and m.temperature == 20.0 and m.name == "zskd" and not m.uses_bn
    t, s = torch.randn(3, 10), torch.randn(3, 10)
    step = Step(torch.zeros(3, 1, 2, 2), t, None, s, None, None, "student")
    loss, logs = m.student_loss(step)
    assert loss.item() == pytest.approx(kd_loss(s, t, 20.0).item()) and "L_KD" in logs
    with pytest.raises(NotImplementedError, match="synthesizer"):
        m.generator_loss(step)


def run_distill(synth, method, tmp_path=None):
    teacher, student = tiny(0), tiny(1)
    x = SPEC.normalize(torch.rand(8, 1, 32, 32))
    loader = DataLoader(TensorDataset(x, torch.arange(8) % 10), batch_size=4)
    cfg = DistillConfig(epochs=1, iterations_per_epoch=1, batch_size=4, student_steps=1)
    before = [p.clone() for p in student.parameters()]
    ckpt = tmp_path / "run.pt" if tmp_path is not None else None
    result = distill(teacher, student, synth, method, loader, cfg, device="cpu", progress=False, checkpoint=ckpt)
    changed = any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))
    return result, changed, (teacher, student, loader, cfg, ckpt)


def test_distill_with_inversion_synthesizer_and_resume(tmp_path):
    synth = InversionSynthesizer(SPEC, steps=2)
    result, changed, (teacher, student, loader, cfg, ckpt) = run_distill(synth, build_method("deepinversion"),
                                                                       tmp_path)
    assert len(result.history) == 1 and 0.0 <= result.last_accuracy <= 1.0
    assert changed and len(synth.pool) == 4 and synth.batches == 1
    assert sorted(synth.pool.labels.tolist()) == [0, 1, 2, 3]  # balanced targets cycle through the classes
    assert "G/CE" in result.history[0] and "S/L_KD" in result.history[0]
    state = safe_load(ckpt)  # the synthesizer's state loads with weights_only=True
    assert state["synthesizer"]["pool"]["images"].shape == (4, 1, 32, 32)
    fresh = InversionSynthesizer(SPEC, steps=2)
    distill(teacher, student, fresh, build_method("deepinversion"), loader, cfg, device="cpu", progress=False,
            checkpoint=ckpt)
    assert len(fresh.pool) == 4 and torch.equal(fresh.pool.images, synth.pool.images)


def test_distill_adi_and_zskd_runs():
    synth, method = make_inversion_run("adi", SPEC, steps=2)
    assert synth.alpha_c == 20.0 and method.name == "adi"
    result, changed, _ = run_distill(synth, method)
    assert changed and "G/compete" in result.history[0]
    synth, method = make_inversion_run("zskd", SPEC, steps=2, max_batches=1)
    assert isinstance(synth, ZSKDSynthesizer)
    result, changed, _ = run_distill(synth, method)
    assert changed and len(synth.pool) == 4 and synth.similarity.shape == (10, 10)
    assert synth.synthesis_step(None, None, method, None) == {}  # max_batches reached: no more synthesis
    with pytest.raises(TypeError, match="alpha_x"):
        InversionSynthesizer(SPEC, alpha_x=1.0)
    with pytest.raises(ValueError, match="adi"):
        make_inversion_run("deepinversion", SPEC, alpha_c=0.1)


# ------------------------------------------------------------------------------------------ bf16 autocast
def test_deep_inversion_bf16_finite_bounded_and_fp32_pixels():
    teacher, student = tiny(0), tiny(1)
    res = deep_inversion(teacher, torch.tensor([0, 1, 2, 3]), SPEC, steps=6, lr=0.1, amp="bf16", progress=False,
                         snapshot_every=3)
    assert res.images.dtype == torch.float32 and in_bounds(res.images)
    assert all(math.isfinite(h["loss"]) and math.isfinite(h["BN"]) for h in res.history)
    assert all(s.dtype == torch.float32 for _, s in res.snapshots)
    fp32 = deep_inversion(teacher, torch.tensor([0, 1, 2, 3]), SPEC, steps=6, lr=0.1, progress=False)
    assert not torch.equal(res.images, fp32.images)  # the forwards really ran in bf16
    # the first step's terms agree with fp32 to bf16 precision (same noise, same jitter)
    assert res.history[0]["CE"] == pytest.approx(fp32.history[0]["CE"], rel=0.05)
    assert res.history[0]["BN"] == pytest.approx(fp32.history[0]["BN"], rel=0.05)
    assert res.history[0]["TV"] == fp32.history[0]["TV"]  # priors on the fp32 image: identical
    adi = deep_inversion(teacher, torch.tensor([0, 1]), SPEC, steps=3, alpha_c=0.5, student=student, amp="bf16",
                         progress=False)
    assert in_bounds(adi.images) and all(1 - math.log(2) - 1e-6 <= h["compete"] <= 1 + 1e-6 for h in adi.history)
    zs, _ = sample_dirichlet_targets(class_similarity(teacher.fc.weight), 1, generator=0)
    z = zskd_synthesize(teacher, zs, SPEC, steps=3, amp="bf16", progress=False)
    assert z.images.dtype == torch.float32 and in_bounds(z.images)
    with pytest.raises(ValueError, match="amp"):
        deep_inversion(teacher, torch.tensor([0]), SPEC, steps=1, amp="fp16", progress=False)


def test_inversion_synthesizer_amp_defaults_to_config():
    cfg = DistillConfig(amp="bf16")
    synth = InversionSynthesizer(SPEC, steps=1)
    synth.setup(cfg, torch.device("cpu"))
    assert synth.options["amp"] == "bf16"
    synth.setup(DistillConfig(amp=None), torch.device("cpu"))
    assert synth.options["amp"] is None
    explicit = InversionSynthesizer(SPEC, steps=1, amp=None)  # an explicit choice wins over the config
    explicit.setup(cfg, torch.device("cpu"))
    assert explicit.options["amp"] is None
    z = ZSKDSynthesizer(SPEC, steps=1)
    z.setup(cfg, torch.device("cpu"))
    assert z.options["amp"] == "bf16"
    with pytest.raises(ValueError, match="amp"):
        InversionSynthesizer(SPEC, amp="fp16")
    synth, method = make_inversion_run("adi", SPEC, steps=2, batch_size=4)
    teacher, student = tiny(0), tiny(1)
    synth.setup(cfg, torch.device("cpu"))
    logs = synth.synthesis_step(teacher, student, method, cfg)
    assert len(synth.pool) == 4 and in_bounds(synth.pool.images) and math.isfinite(logs["compete"])
