"""DFAD, DAFL, ZSKT, DFQ, MAD, CMI and SpaceshipNet: their losses against hand computations on small tensors, and one short run each."""
import dataclasses
import math

import pytest
import torch

from dfkd_lib.losses.at import attention_transfer_loss, spatial_attention
from dfkd_lib.losses.msarc import msarc_loss
from dfkd_lib.methods import build_method
from dfkd_lib.methods.dafl import dafl_generator_terms
from dfkd_lib.methods.dfq import dfq_entropy_terms
from dfkd_lib.models.features import Features
from dfkd_lib.step import Step


def _step(t_logits, s_logits, t_pen=None, t_stages=(), s_stages=()):
    t_feats = Features(list(t_stages), t_pen if t_pen is not None else torch.zeros(len(t_logits), 1))
    return Step(torch.zeros(len(t_logits), 1, 2, 2), torch.tensor(t_logits), t_feats, torch.tensor(s_logits),
                Features(list(s_stages), torch.zeros(len(s_logits), 1)), None, "student")


def test_dfad_is_the_mean_absolute_logit_difference_with_opposite_signs():
    step = _step([[1.0, 2.0], [0.0, -1.0]], [[0.0, 2.5], [1.0, -1.0]])  # |1|, |0.5|, |1|, |0| -> mean 0.625
    m = build_method("dfad")
    assert m.student_loss(step)[0].item() == pytest.approx(0.625)
    assert m.generator_loss(step)[0].item() == pytest.approx(-0.625)
    assert (m.generator_steps, m.student_steps, m.uses_bn) == (1, 5, False)


def test_dafl_generator_terms_by_hand():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    pen = torch.tensor([[1.0, -3.0], [0.5, 0.5]])
    terms = dafl_generator_terms(logits, pen)
    p0 = [math.exp(2) / (math.exp(2) + 1), 1 / (math.exp(2) + 1)]       # softmax of row 0
    p1 = [1 / (1 + math.e), math.e / (1 + math.e)]                       # softmax of row 1
    oh = -(math.log(p0[0]) + math.log(p1[1])) / 2                          # CE against each row's own argmax
    mean_p = [(p0[0] + p1[0]) / 2, (p0[1] + p1[1]) / 2]
    assert terms["L_oh"].item() == pytest.approx(oh)
    assert terms["L_a"].item() == pytest.approx(-(1 + 3 + 0.5 + 0.5) / 4)
    assert terms["L_ie"].item() == pytest.approx(sum(q * math.log10(q) for q in mean_p))
    step = _step(logits.tolist(), [[0.0, 0.0], [0.0, 0.0]], t_pen=pen)
    loss, logs = build_method("dafl").generator_loss(step)
    assert loss.item() == pytest.approx(oh + 0.1 * logs["L_a"] + 5 * logs["L_ie"])


def test_attention_transfer_by_hand_and_zskt_losses():
    a = torch.zeros(1, 2, 1, 2)
    a[0, :, 0, 0] = torch.tensor([1.0, 1.0])          # energy only at position 0: f = (1, 0)
    b = torch.zeros(1, 3, 1, 2)
    b[0, :, 0, 1] = torch.tensor([2.0, 0.0, 0.0])     # energy only at position 1: f = (0, 1)
    assert torch.allclose(spatial_attention(a), torch.tensor([[1.0, 0.0]]))
    assert attention_transfer_loss([a], [b]).item() == pytest.approx((1 + 1) / 2)   # mean of (1, -1)^2
    assert attention_transfer_loss([a], [a]).item() == 0
    with pytest.raises(ValueError, match="spatial sizes"):
        attention_transfer_loss([a], [torch.zeros(1, 2, 2, 2)])
    step = _step([[1.0, 0.0]], [[0.0, 1.0]], t_stages=[b], s_stages=[a])
    m = build_method("zskt")
    kl = (math.e / (1 + math.e)) * (math.log(math.e / (1 + math.e)) - math.log(1 / (1 + math.e))) \
        + (1 / (1 + math.e)) * (math.log(1 / (1 + math.e)) - math.log(math.e / (1 + math.e)))
    assert m.generator_loss(step)[0].item() == pytest.approx(-kl, rel=1e-5)
    assert m.student_loss(step)[0].item() == pytest.approx(kl + 250 * 1.0, rel=1e-5)


def test_dfq_entropy_terms_and_generator_loss_by_hand():
    logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]])   # p = (1/2, 1/2) and (3/4, 1/4)
    h = lambda q: -sum(v * math.log(v) for v in q)
    terms = dfq_entropy_terms(logits)
    assert terms["L_oh"].item() == pytest.approx((h([0.5, 0.5]) + h([0.75, 0.25])) / 2)
    assert terms["L_bal"].item() == pytest.approx(-h([0.625, 0.375]))
    step = _step(logits.tolist(), [[0.0, 0.0], [0.0, 0.0]])
    step.bn_loss = torch.tensor(2.0)
    m = build_method("dfq", alpha=0.5, beta=2.0)
    kl = (0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)) / 2   # first image: p_T = p_S
    loss, logs = m.generator_loss(step)
    assert logs["L_KL"] == pytest.approx(kl)
    assert loss.item() == pytest.approx(-kl + 0.5 * 2.0 + 2.0 * (logs["L_oh"] + logs["L_bal"]))
    assert m.student_loss(step)[0].item() == pytest.approx(kl)
    assert (m.generator_steps, m.student_steps, m.uses_bn) == (1, 5, True)
    with pytest.raises(ValueError, match="alpha and beta"):
        build_method("dfq", beta=-1.0)


def test_mad_ema_generator_by_hand_and_mixed_batches():
    from dfkd_lib.config import DistillConfig
    from dfkd_lib.models.generators import DCGANGenerator
    from dfkd_lib.synthesizers import MomentumGeneratorSynthesizer

    torch.manual_seed(0)
    g = DCGANGenerator(nz=4, out_channels=1, image_size=16, channels=(8, 8, 4, 4, 4))
    m = build_method("mad", momentum=0.75, ema_fraction=0.25)
    synth = m.make_synthesizer(g, None)
    assert isinstance(synth, MomentumGeneratorSynthesizer)
    synth.setup(DistillConfig(), torch.device("cpu"))
    before = [p.detach().clone() for p in synth.ema.parameters()]
    with torch.no_grad():
        for p in g.parameters():
            p.add_(1.0)
    synth.update_ema()
    for e, b, p in zip(synth.ema.parameters(), before, g.parameters()):
        assert torch.allclose(e, 0.75 * b + 0.25 * p)           # theta_ema <- m * theta_ema + (1 - m) * theta
    z = torch.randn(2, 4)
    synth.ema.sample_z = lambda n, device: z[:n]
    x = synth.sample(8)
    assert x.shape == (8, 1, 16, 16)
    with torch.no_grad():                                       # the last 2 of 8 images come from the EMA copy
        assert torch.allclose(x[-2:], synth.ema(z))
    state = synth.state_dict()
    other = m.make_synthesizer(DCGANGenerator(nz=4, out_channels=1, image_size=16, channels=(8, 8, 4, 4, 4)), None)
    other.setup(DistillConfig(), torch.device("cpu"))
    other.load_state_dict(state)
    assert all(torch.equal(a, b) for a, b in zip(other.ema.parameters(), synth.ema.parameters()))
    step = _step([[1.0, 0.0]], [[0.0, 1.0]])
    step.bn_loss = torch.tensor(3.0)
    kl = m.student_loss(step)[0].item()
    assert m.generator_loss(step)[0].item() == pytest.approx(-kl + 1.0 * 3.0)
    with pytest.raises(ValueError, match="momentum"):
        build_method("mad", momentum=1.0)


def test_instance_contrastive_loss_by_hand():
    from dfkd_lib.losses import instance_contrastive_loss

    e = torch.eye(2)                                            # two images, each view equal to itself
    # tau = 1: logits [[1, 0], [0, 1]], so each row gives -log(e / (e + 1))
    assert instance_contrastive_loss(e, e, temperature=1.0).item() == pytest.approx(math.log(1 + math.exp(-1)))
    same = torch.ones(3, 4)
    assert instance_contrastive_loss(same, same, torch.ones(5, 4)).item() == pytest.approx(math.log(8))
    bank = torch.tensor([[1.0, 0.0]])                           # a bank entry equal to image 0's positive
    row0 = -math.log(math.e / (math.e + 1 + math.e))            # keys (p0, p1, b): logits (1, 0, 1)
    row1 = -math.log(math.e / (1 + math.e + 1))                 # logits (0, 1, 0)
    assert instance_contrastive_loss(e, e, bank, 1.0).item() == pytest.approx((row0 + row1) / 2)
    with pytest.raises(ValueError, match="temperature"):
        instance_contrastive_loss(e, e, temperature=0.0)


def test_redraw_weights_draws_new_layers_from_a_seed_spectral_norm_included():
    from dfkd_lib.models.generators import DCGANGenerator
    from dfkd_lib.synthesizers.cmi import redraw_weights

    g = DCGANGenerator(nz=4, out_channels=1, image_size=32, channels=(8, 8, 4, 4, 4)).train()
    rng = torch.get_rng_state()
    redraw_weights(g, 1)
    assert torch.equal(torch.get_rng_state(), rng)                                  # the global RNG untouched
    one = {k: v.clone() for k, v in g.state_dict().items()}
    redraw_weights(g, 2)
    two = {k: v.clone() for k, v in g.state_dict().items()}
    redraw_weights(g, 1)
    assert all(torch.equal(one[k], v) for k, v in g.state_dict().items())          # one seed, one draw
    for key in ("fc.weight", "blocks.0.up.parametrizations.weight.original", "to_image.weight"):
        assert not torch.equal(one[key], two[key])                                  # spectral-normed too
    w = g.blocks[0].up.weight.detach()                                              # (C_in, C_out, 4, 4)
    assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_cmi_synthesis_reinitialises_the_generator_and_fills_pool_and_bank():
    from dfkd_lib.config import DistillConfig
    from dfkd_lib.data import dataset_spec
    from dfkd_lib.hooks import batchnorm_layers
    from dfkd_lib.models import resnet8
    from dfkd_lib.models.generators import DCGANGenerator

    torch.manual_seed(0)
    spec = dataset_spec("fashion-mnist")
    teacher, student = resnet8(10, 1, 4).eval(), resnet8(10, 1, 4)
    g = DCGANGenerator(nz=4, out_channels=1, image_size=32, channels=(8, 8, 4, 4, 4))
    start = {k: v.clone() for k, v in g.state_dict().items()}
    m = build_method("cmi", steps=2, bank_size=6)
    synth = m.make_synthesizer(g, spec)
    synth.setup(DistillConfig(batch_size=4), torch.device("cpu"))
    logs = synth.synthesis_step(teacher, student, m, None)
    assert {"L_BN", "L_oh", "L_adv", "L_cr", "agree"} <= set(logs)
    assert not all(torch.equal(start[k], v) for k, v in g.state_dict().items())   # optimised ...
    synth.synthesis_step(teacher, student, m, None)
    dim = sum(bn.num_features for bn in batchnorm_layers(teacher))
    assert len(synth.pool) == 8 and synth.bank.shape == (6, dim)                   # the bank keeps the newest 6
    assert synth.pool.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7]                  # balanced targets
    assert student.training and teacher.training is False
    other = m.make_synthesizer(DCGANGenerator(nz=4, out_channels=1, image_size=32, channels=(8, 8, 4, 4, 4)), spec)
    other.setup(DistillConfig(batch_size=4), torch.device("cpu"))
    other.load_state_dict(synth.state_dict())
    assert torch.equal(other.bank, synth.bank) and other.batches == 2
    assert all(torch.equal(a, b) for a, b in zip(other.head.parameters(), synth.head.parameters()))


def test_cams_and_msarc_by_hand():
    from dfkd_lib.losses import fc_cam, grad_weighted_cam, msarc_loss

    f = torch.tensor([1.0, 2.0]).view(1, 2, 1, 1)
    w = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    assert fc_cam(f, w).flatten().tolist() == [1.0, 2.0, 3.0]                  # sum_p w_p^c f_p per class
    stage = torch.tensor([[[[1.0, 2.0]], [[3.0, 5.0]]]], requires_grad=True)   # (1, 2, 1, 2)
    score = (3 * stage[:, 0] - stage[:, 1]).sum((1, 2))                        # d score / d f = (3, -1) everywhere
    assert grad_weighted_cam(stage, score).flatten().tolist() == [3 * 1 - 3, 3 * 2 - 5]
    a = torch.ones(2, 3, 4, 4)
    assert msarc_loss([a, a[:, :1]], [a, a[:, :1]]).item() == 0
    assert msarc_loss([a], [a + 2]).item() == pytest.approx(4.0)               # mean squared difference
    with pytest.raises(ValueError, match="shapes differ"):
        msarc_loss([a], [a[:, :1]])


def test_channel_exchange_takes_the_given_share_of_channels():
    from dfkd_lib.synthesizers import channel_exchange

    a, b = torch.zeros(3, 4, 2, 2), torch.ones(3, 4, 2, 2)
    mixed = channel_exchange(a, b, 0.5, torch.Generator().manual_seed(0))
    assert mixed[:, :, 0, 0].sum(1).tolist() == [2.0, 2.0, 2.0]                # two of four channels per image
    assert torch.equal(mixed.amax((2, 3)), mixed.amin((2, 3)))                 # whole channels, not pixels
    assert torch.equal(channel_exchange(a, b, 0.0), a) and torch.equal(channel_exchange(a, b, 1.0), b)
    with pytest.raises(ValueError, match="fraction"):
        channel_exchange(a, b, 1.5)


def test_feature_exchange_pool_and_spaceshipnet_losses():
    from dfkd_lib.config import DistillConfig
    from dfkd_lib.data import dataset_spec
    from dfkd_lib.models import resnet8
    from dfkd_lib.models.generators import DCGANGenerator
    from dfkd_lib.step import forward_step

    torch.manual_seed(0)
    spec = dataset_spec("fashion-mnist")
    teacher, student = resnet8(10, 1, 4).eval().requires_grad_(False), resnet8(10, 1, 4)
    g = DCGANGenerator(nz=4, out_channels=1, image_size=32, channels=(8, 8, 4, 4, 4))
    z = torch.randn(2, 4)
    g.eval()
    for level, h in enumerate(g.levels(z)):                                     # the rest of G from any level
        assert torch.allclose(g.forward_from(level, h), g(z))
    m = build_method("spaceshipnet", generator_steps=2, student_steps=1)
    synth = m.make_synthesizer(g, spec)
    cfg = DistillConfig(batch_size=4)
    synth.setup(cfg, torch.device("cpu"))
    m.setup(teacher, student, z)
    logs = synth.synthesis_step(teacher, student, m, cfg)
    assert synth.features is None and {"L_cls", "L_BN"} <= set(logs)            # stored after t = 2 steps
    synth.synthesis_step(teacher, student, m, cfg)
    assert [tuple(f.shape) for f in synth.features] == [(4, 8, 2, 2), (4, 8, 4, 4), (4, 4, 8, 8)]
    x = synth.sample(6)
    assert x.shape == (6, 1, 32, 32)
    calls = []
    hook = teacher.register_forward_hook(lambda *_: calls.append(1))
    step = forward_step(teacher, student, x, m, "student")
    loss, logs = m.student_loss(step)
    hook.remove()
    assert len(calls) == 1                               # one teacher forward serves KD and the teacher's CAMs
    assert logs["L_mSARC"] > 0 and loss.item() == pytest.approx(logs["L_KD"] + logs["L_mSARC"], rel=1e-5)
    xt = x.detach().requires_grad_(True)                 # the teacher's CAMs from a forward of its own agree
    t_logits, t_feats = teacher(xt, return_features=True)
    t_cams = m.cams(teacher, t_logits, t_feats.stages, t_logits.argmax(1), False)
    s_cams = m.cams(student, step.student_logits, step.student_features.stages, t_logits.argmax(1), False)
    assert logs["L_mSARC"] == pytest.approx(msarc_loss(s_cams, [c.detach() for c in t_cams]).item(), rel=1e-5)
    loss.backward()
    assert student.stem[0].weight.grad is not None and teacher.stem[0].weight.grad is None
    second = build_method("spaceshipnet", second_order=True)   # the same loss, trained through alpha as well
    second.setup(teacher, student, z)
    loss2, _ = second.student_loss(forward_step(teacher, student, x, second, "student"))
    assert loss2.item() == pytest.approx(loss.item(), rel=1e-5)
    loss2.backward()
    plain = build_method("spaceshipnet", lambda_msarc=0.0)
    s64, t64 = step.student_logits.double() / 30, step.teacher_logits.double() / 30
    # float32 keeps about 2 digits of the KL of two near-equal softmaxes at T = 30: compared in float64
    assert plain.student_loss(dataclasses.replace(step, student_logits=s64 * 30, teacher_logits=t64 * 30))[0].item() == \
        pytest.approx((30.0 ** 2) * torch.nn.functional.kl_div(torch.log_softmax(s64, 1), torch.softmax(t64, 1),
                                                               reduction="batchmean").item(), rel=1e-6)


@pytest.mark.parametrize("method", ["dfad", "dafl", "zskt", "dfq", "mad", "cmi", "spaceshipnet"])
def test_each_baseline_runs_end_to_end(method, tiny_teacher, tmp_path, monkeypatch):
    from dfkd_lib.experiment import run_distillation
    teacher = tiny_teacher
    monkeypatch.setenv("DFKD_FAST", "1")
    res = run_distillation(teacher=teacher, student="resnet8", student_width=4, generator_width=4, nz=8,
                           method=method, progress=False)
    assert 0 <= res["best_accuracy"] <= 1 and res["resolved"]["method"]
    assert any(k.startswith("S/") for k in res["history"][0]) and any(k.startswith("G/") for k in res["history"][0])


@pytest.mark.parametrize("method, options", [("mad", {}), ("cmi", {"steps": 2, "bank_size": 8}),
                                             ("spaceshipnet", {})])
def test_a_run_interrupted_after_an_epoch_resumes_to_the_same_history(method, options, tiny_loader, tmp_path):
    """The synthesisers' own state (EMA copy, CMI's head and bank, the feature pool) survives a checkpoint."""
    from dfkd_lib.config import DistillConfig
    from dfkd_lib.data import dataset_spec
    from dfkd_lib.engine import distill
    from dfkd_lib.models import resnet8
    from dfkd_lib.models.generators import DCGANGenerator

    spec = dataset_spec("fashion-mnist")
    cfg = DistillConfig(epochs=2, iterations_per_epoch=2, batch_size=4, generator_steps=2, student_steps=2,
                        pool_size=8)

    def run(**kw):
        torch.manual_seed(0)
        t, s = resnet8(10, 1, 4).eval(), resnet8(10, 1, 4)
        m = build_method(method, **options)
        synth = m.make_synthesizer(DCGANGenerator.for_dataset(spec, nz=8, width=4), spec)
        return distill(t, s, synth, m, tiny_loader, cfg, progress=False, **kw)

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt

    full = run()
    ck = tmp_path / "run.pt"
    with pytest.raises(KeyboardInterrupt):
        run(checkpoint=ck, on_epoch=stop)
    resumed = run(checkpoint=ck)
    strip = lambda h: [{k: v for k, v in e.items() if k != "wall_s"} for e in h]
    assert resumed.resumed_from_epoch == 1 and strip(resumed.history) == strip(full.history)
