"""The DFKD-FGVC method (Eq. 10-11): reduction to the baseline, module construction, losses, end to end."""
import copy
import math

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import distill
from dfkd_lib.step import forward_step
from dfkd_lib.synthesizers import GeneratorSynthesizer
from dfkd_lib.losses.kd import kd_loss
from dfkd_lib.losses.mhad import mhad_loss
from dfkd_lib.losses.sfcl import Projector, sfcl_loss
from dfkd_lib.methods import METHODS, AdversarialBNDistillation, build_method
from dfkd_lib.methods.dfkd_fgvc import DFKDFGVC
from dfkd_lib.models import Features, resnet8
from dfkd_lib.models.attention import Adapter
from dfkd_lib.models.attention_generator import AttentionGenerator
from dfkd_lib.models.generators import DCGANGenerator
from dfkd_lib.models.mobilenetv2 import mobilenetv2
from dfkd_lib.models.wrn import wrn16_1

K = 3  # classes


def _nets(student_width=4, teacher_width=4, student=None, seed=0):
    torch.manual_seed(seed)
    teacher = resnet8(K, 3, teacher_width).eval()
    student = student if student is not None else resnet8(K, 3, student_width)
    return teacher, student


def _step(teacher, student, method, phase="student", n=4, seed=1):
    torch.manual_seed(seed)
    x = torch.randn(n, 3, 32, 32)
    return forward_step(teacher, student, x, method, phase)


def _setup(method, teacher, student):
    method.setup(teacher, student, torch.randn(2, 3, 32, 32))
    return method


# ------------------------------------------------------------------------------------------------ registry
def test_registered_with_paper_defaults():
    assert METHODS["dfkd-fgvc"] is DFKDFGVC
    m = build_method("dfkd-fgvc")
    assert isinstance(m, DFKDFGVC) and isinstance(m, AdversarialBNDistillation)
    assert (m.alpha, m.beta, m.gamma, m.order, m.tau, m.temperature) == (0.3, 10.0, 8.0, 3, 0.07, 1.0)
    assert (m.generator_steps, m.student_steps, m.uses_bn, m.name) == (20, 15, True, "dfkd-fgvc")
    assert m.feature_level == "stages" and m.stages is None and m.normalize


@pytest.mark.parametrize("kwargs", [{"beta": -1}, {"gamma": -1}, {"tau": 0}, {"order": 0},
                                    {"feature_level": "logits"}, {"alpha": -0.1}])
def test_bad_options(kwargs):
    with pytest.raises(ValueError):
        DFKDFGVC(**kwargs)


# ------------------------------------------------------------------------------------------------ baseline
@pytest.mark.parametrize("phase", ["generator", "student"])
def test_beta_gamma_zero_equals_baseline_losses(phase):
    teacher, student = _nets()
    base = AdversarialBNDistillation(alpha=0.3)
    ours = _setup(DFKDFGVC(alpha=0.3, beta=0, gamma=0), teacher, student)
    assert list(ours.parameters()) == []  # nothing built
    step = _step(teacher, student, ours, phase)
    fn = "generator_loss" if phase == "generator" else "student_loss"
    (l_b, logs_b), (l_o, logs_o) = getattr(base, fn)(step), getattr(ours, fn)(step)
    assert torch.equal(l_b, l_o) and logs_b == logs_o
    kd = kd_loss(step.student_logits, step.teacher_logits)
    want = 0.3 * step.bn_loss - kd if phase == "generator" else kd
    torch.testing.assert_close(l_o, want)


def test_generator_loss_is_eq10_whatever_beta_gamma():
    teacher, student = _nets()
    ours = _setup(DFKDFGVC(), teacher, student)
    step = _step(teacher, student, ours, "generator")
    loss, logs = ours.generator_loss(step)
    torch.testing.assert_close(loss, 0.3 * step.bn_loss - kd_loss(step.student_logits, step.teacher_logits))
    assert set(logs) == {"L_BN", "L_KD"}


def _tiny_run(method, student, generator, teacher, iterations=2):
    g = torch.Generator().manual_seed(7)
    data = TensorDataset(torch.randn(8, 3, 32, 32, generator=g), torch.randint(0, K, (8,), generator=g))
    loader = DataLoader(data, batch_size=4)
    cfg = DistillConfig(epochs=1, iterations_per_epoch=iterations, batch_size=4, generator_steps=1,
                        student_steps=2, seed=0)
    return distill(teacher, student, GeneratorSynthesizer(generator), method, loader, cfg, device="cpu",
                   progress=False)


def test_beta_gamma_zero_distill_run_equals_baseline_run():
    teacher, student = _nets()
    torch.manual_seed(5)
    gen = DCGANGenerator(nz=8, out_channels=3, image_size=32, channels=(16, 8, 8, 4, 4))
    s1, s2, g1, g2 = copy.deepcopy(student), copy.deepcopy(student), copy.deepcopy(gen), copy.deepcopy(gen)
    r1 = _tiny_run(AdversarialBNDistillation(), s1, g1, teacher)
    r2 = _tiny_run(DFKDFGVC(beta=0, gamma=0), s2, g2, teacher)
    drop = lambda h: {k: v for k, v in h.items() if k != "wall_s"}
    assert [drop(h) for h in r1.history] == [drop(h) for h in r2.history]
    for (k, a), (_, b) in zip(s1.state_dict().items(), s2.state_dict().items()):
        assert torch.equal(a, b), k


# ------------------------------------------------------------------------------------------------ setup
def test_setup_same_width_builds_one_mha_per_stage():
    teacher, student = _nets(4, 4)
    m = _setup(DFKDFGVC(), teacher, student)
    assert m.stage_indices == (0, 1, 2, 3)
    assert [mha.channels for mha in m.mha] == [4, 8, 16, 32] and all(mha.order == 3 for mha in m.mha)
    assert all(isinstance(a, nn.Identity) for a in m.adapters)
    assert m.pen_adapter is None
    assert isinstance(m.projector, Projector) and (m.projector.in_dim, m.projector.out_dim) == (32, 128)
    assert student.training  # setup probes in eval mode and restores the mode


def test_setup_different_widths_builds_adapters():
    teacher, student = _nets(student_width=4, teacher_width=8)
    m = _setup(DFKDFGVC(proj_dim=16, proj_hidden=10, order=2), teacher, student)
    assert [(a.in_channels, a.out_channels) for a in m.adapters] == [(4, 8), (8, 16), (16, 32), (32, 64)]
    assert all(isinstance(a, Adapter) and not a.penultimate for a in m.adapters)
    assert m.pen_adapter.penultimate and (m.pen_adapter.in_channels, m.pen_adapter.out_channels) == (32, 64)
    assert (m.projector.in_dim, m.projector.hidden_dim, m.projector.out_dim) == (64, 10, 16)
    assert [mha.channels for mha in m.mha] == [8, 16, 32, 64]


def test_setup_does_not_change_student_bn_statistics():
    teacher, student = _nets()
    before = copy.deepcopy(student.state_dict())
    _setup(DFKDFGVC(), teacher, student)
    assert all(torch.equal(before[k], v) for k, v in student.state_dict().items())


@pytest.mark.parametrize("stages,want", [((-3, -2, -1), (1, 2, 3)), ((0,), (0,)), ((3, 1), (3, 1))])
def test_stage_selection(stages, want):
    teacher, student = _nets()
    m = _setup(DFKDFGVC(stages=stages), teacher, student)
    assert m.stage_indices == want and len(m.mha) == len(want)


def test_only_needed_modules_are_built():
    teacher, student = _nets(4, 8)
    m = _setup(DFKDFGVC(beta=0), teacher, student)
    assert m.mha is None and m.adapters is None and m.projector is not None and m.pen_adapter is not None
    m = _setup(DFKDFGVC(gamma=0), teacher, student)
    assert m.projector is None and m.pen_adapter is None and len(m.mha) == 4


class _LowResStage0(nn.Module):
    """A student whose first stage map is pooled to half size (a spatial mismatch with the teacher)."""

    def __init__(self):
        super().__init__()
        self.net = resnet8(K, 3, 4)

    def forward(self, x, return_features=False):
        logits, f = self.net(x, return_features=True)
        f = Features([nn.functional.avg_pool2d(f.stages[0], 2)] + f.stages[1:], f.penultimate)
        return (logits, f) if return_features else logits


def test_setup_errors():
    teacher, _ = _nets()
    with pytest.raises(ValueError, match="penultimate"):
        _setup(DFKDFGVC(), teacher, wrn16_1(K, 3, 4))  # WRN has 3 stages, the teacher 4
    with pytest.raises(ValueError, match="non-negative"):
        _setup(DFKDFGVC(stages=(-1,)), teacher, wrn16_1(K, 3, 4))
    with pytest.raises(ValueError, match="spatial"):
        _setup(DFKDFGVC(stages=(0, 1)), teacher, _LowResStage0())
    _setup(DFKDFGVC(stages=(1, 2)), teacher, _LowResStage0())  # the other stages are fine


def test_student_loss_before_setup_raises():
    teacher, student = _nets()
    m = DFKDFGVC()
    with pytest.raises(RuntimeError, match="setup"):
        m.student_loss(_step(teacher, student, m))


# ------------------------------------------------------------------------------------------------ losses
@pytest.mark.parametrize("normalize", [True, False])
def test_student_loss_is_eq11(normalize):
    teacher, student = _nets(4, 8)
    m = _setup(DFKDFGVC(beta=2.0, gamma=0.5, tau=0.2, normalize=normalize, stages=(1, 3)), teacher, student)
    step = _step(teacher, student, m)
    loss, logs = m.student_loss(step)
    kd = kd_loss(step.student_logits, step.teacher_logits)
    mhad = mhad_loss([step.student_features.stages[i] for i in (1, 3)],
                     [step.teacher_features.stages[i] for i in (1, 3)], m.mha, m.adapters, normalize)
    zt = m.projector(step.teacher_features.penultimate)
    zs = m.projector(m.pen_adapter(step.student_features.penultimate))
    sfcl = sfcl_loss(zt, zs, 0.2)
    torch.testing.assert_close(loss, kd + 2.0 * mhad + 0.5 * sfcl)
    assert logs["L_KD"] == pytest.approx(kd.item()) and logs["L_MHAD"] == pytest.approx(mhad.item())
    assert logs["L_SFCL"] == pytest.approx(sfcl.item())
    assert all(math.isfinite(v) for v in logs.values())


def test_student_loss_gradients_reach_student_and_method_modules():
    teacher, student = _nets(4, 8)
    m = _setup(DFKDFGVC(), teacher, student)
    loss, _ = m.student_loss(_step(teacher, student, m))
    loss.backward()
    assert all(p.grad is not None for p in student.parameters())
    for name, p in m.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("make_student", [lambda: wrn16_1(K, 3, 4), lambda: mobilenetv2(K, 3, 4)])
def test_penultimate_level_for_heterogeneous_students(make_student):
    teacher, student = _nets(student=make_student())
    m = _setup(DFKDFGVC(feature_level="penultimate"), teacher, student)
    d_s = student.feature_dim
    assert len(m.mha) == 1 and m.mha[0].channels == 32 and m.adapters is None
    assert (m.pen_adapter.in_channels, m.pen_adapter.out_channels) == (d_s, 32) and m.pen_adapter.penultimate
    step = _step(teacher, student, m)
    loss, logs = m.student_loss(step)
    t = step.teacher_features.penultimate[:, :, None, None]
    s = m.pen_adapter(step.student_features.penultimate)[:, :, None, None]
    torch.testing.assert_close(torch.tensor(logs["L_MHAD"]), mhad_loss([s], [t], m.mha).detach())
    loss.backward()
    for name, p in m.named_parameters():
        assert p.grad is not None, name


def test_train_mha_false_freezes_the_modules():
    teacher, student = _nets()
    m = _setup(DFKDFGVC(train_mha=False), teacher, student)
    assert all(not p.requires_grad for p in m.mha.parameters())
    assert all(p.requires_grad for p in m.projector.parameters())


# ------------------------------------------------------------------------------------------------ end to end
def test_end_to_end_distill_with_attention_generator():
    teacher, student = _nets(student_width=4, teacher_width=8)
    torch.manual_seed(6)
    gen = AttentionGenerator(nz=8, out_channels=3, image_size=32, channels=(16, 8, 8, 4, 4), reduction=2)
    method = build_method("dfkd-fgvc", generator_steps=1, student_steps=1)
    untouched = copy.deepcopy(method)
    result = _tiny_run(method, student, gen, teacher, iterations=1)
    (record,) = result.history
    for key in ("G/L_BN", "G/L_KD", "S/L_KD", "S/L_MHAD", "S/L_SFCL", "test_accuracy"):
        assert math.isfinite(record[key]), key
    assert 0.0 <= record["test_accuracy"] <= 1.0
    assert record["S/L_MHAD"] >= 0 and record["S/L_SFCL"] > 0
    assert len(method.mha) == 4 and untouched.mha is None
    assert all(math.isfinite(p.abs().sum().item()) for p in method.parameters())
