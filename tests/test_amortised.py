"""Memory bank of generator batches, eval-mode sampling, DistillConfig checks, the real-data references."""
import pytest
import torch

from dfkd_lib.data import dataset_spec
from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import distill
from dfkd_lib.step import as_batch
from dfkd_lib.synthesizers import GeneratorSynthesizer
from dfkd_lib.methods import AdversarialBNDistillation, build_method
from dfkd_lib.methods.base import Step
from dfkd_lib.models import resnet8
from dfkd_lib.models.generators import DCGANGenerator

SPEC = dataset_spec("fashion-mnist")


def _parts(seed=0):
    torch.manual_seed(seed)
    return resnet8(10, 1, 4).eval(), resnet8(10, 1, 4), DCGANGenerator.for_dataset(SPEC, nz=8, width=4)


@pytest.mark.parametrize("bad", [dict(epochs=0), dict(batch_size=0), dict(iterations_per_epoch=0),
                                 dict(pool_size=-1), dict(pool_fraction=1.5), dict(generator_steps=-1),
                                 dict(generator_sampling="batch")])
def test_config_rejects_bad_values(bad):
    with pytest.raises(ValueError):
        DistillConfig(**bad)


def test_generator_steps_fill_the_bank_and_student_batches_come_from_it():
    t, s, g = _parts()
    cfg = DistillConfig(batch_size=4, pool_size=10)
    synth = GeneratorSynthesizer(g)
    synth.setup(cfg, torch.device("cpu"))
    method = AdversarialBNDistillation()
    for _ in range(3):
        synth.synthesis_step(t, s, method, cfg)
    assert len(synth.pool) == 10 and synth.pool.total_added == 12  # FIFO: the oldest 2 images dropped
    x = synth.sample(6)
    bank = synth.pool.images.flatten(1)
    assert all((bank == row).all(1).any() for row in x.flatten(1))  # every image is a banked one


def test_pool_fraction_mixes_fresh_and_banked_images():
    t, s, g = _parts()
    cfg = DistillConfig(batch_size=4, pool_size=100, pool_fraction=0.5)
    synth = GeneratorSynthesizer(g)
    synth.setup(cfg, torch.device("cpu"))
    synth.synthesis_step(t, s, AdversarialBNDistillation(), cfg)
    x = synth.sample(8)
    bank = synth.pool.images.flatten(1)
    in_bank = [bool((bank == row).all(1).any()) for row in x.flatten(1)]
    assert sum(in_bank) == 4


@pytest.mark.parametrize("sampling", ["eval", "train"])
def test_sample_runs_the_generator_in_its_sampling_mode_and_restores_the_callers(sampling):
    """eval: BN by running statistics, none moved; train (as DFAD samples): by the batch's, the running ones track it."""
    _, _, g = _parts()
    synth = GeneratorSynthesizer(g)
    synth.setup(DistillConfig(batch_size=4, generator_sampling=sampling), torch.device("cpu"))
    caller_training = sampling == "eval"          # the caller's mode is the other one: it must come back
    g.train(caller_training)
    bn = [m for m in g.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    before = [m.running_mean.clone() for m in bn]
    seen = []
    hook = g.register_forward_pre_hook(lambda mod, inp: seen.append(mod.training))
    synth.sample(4)
    hook.remove()
    assert seen == [sampling == "train"] and g.training == caller_training
    moved = [not torch.equal(b, m.running_mean) for b, m in zip(before, bn)]
    assert all(moved) if sampling == "train" else not any(moved)


def test_a_run_with_a_bank_resumes_to_the_same_result(tiny_loader, tmp_path):
    cfg = DistillConfig(epochs=2, iterations_per_epoch=1, batch_size=4, generator_steps=1, student_steps=3,
                        pool_size=8)
    t, s, g = _parts()
    full = distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg, progress=False)
    ck = tmp_path / "run.pt"

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt
    t, s, g = _parts()
    with pytest.raises(KeyboardInterrupt):
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg, checkpoint=ck,
                progress=False, on_epoch=stop)
    t, s, g = _parts(seed=5)
    t.load_state_dict(_parts()[0].state_dict())
    res = distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg, checkpoint=ck,
                  progress=False)
    assert res.history[1]["S/L_KD"] == pytest.approx(full.history[1]["S/L_KD"], rel=1e-4)


def test_channels_last_gives_the_same_losses(tiny_loader):
    out = []
    for cl in (False, True):
        t, s, g = _parts()
        cfg = DistillConfig(epochs=1, iterations_per_epoch=1, batch_size=4, generator_steps=1, student_steps=1,
                            channels_last=cl)
        out.append(distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg,
                           progress=False).history[0])
    assert out[0]["G/L_BN"] == pytest.approx(out[1]["G/L_BN"], rel=1e-4)
    assert out[0]["S/L_KD"] == pytest.approx(out[1]["S/L_KD"], rel=1e-3)


def test_as_batch_accepts_images_or_pairs():
    x, y = torch.zeros(2, 1, 4, 4, requires_grad=True), torch.tensor([1, 2])
    assert as_batch(x)[1] is None and not as_batch(x)[0].requires_grad
    assert as_batch((x, y))[1] is y


def test_labels_method_is_cross_entropy_and_needs_labels():
    m = build_method("real-labels")
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    step = Step(None, logits, None, logits, None, None, "student", torch.tensor([0, 0]))
    loss, logs = m.student_loss(step)
    # hand computation: -log softmax([2,0])_0 = log(1 + e^-2); -log softmax([0,1])_0 = log(1 + e)
    ref = (torch.log1p(torch.exp(torch.tensor(-2.0))) + torch.log1p(torch.exp(torch.tensor(1.0)))) / 2
    assert loss.item() == pytest.approx(ref.item(), rel=1e-6) and logs["L_CE"] == pytest.approx(ref.item(), rel=1e-6)
    with pytest.raises(ValueError, match="labelled"):
        m.student_loss(Step(None, logits, None, logits, None, None, "student"))
    assert build_method("real-kd").generator_steps == 0


def test_real_data_reference_runs_through_the_same_loop(tiny_teacher, tmp_path, monkeypatch):
    from dfkd_lib.experiment import run_distillation
    from dfkd_lib.synthesizers import RealImages
    teacher = tiny_teacher
    monkeypatch.setenv("DFKD_FAST", "1")
    for method, term in (("real-kd", "S/L_KD"), ("real-labels", "S/L_CE")):
        res = run_distillation(teacher=teacher, student="resnet8", student_width=4, method=method, progress=False)
        assert term in res["history"][0] and not any(k.startswith("G/") for k in res["history"][0])
    real = RealImages("fashion-mnist", limit=50)
    real.setup(DistillConfig(seed=3), torch.device("cpu"))
    x, y = real.sample(5)
    assert x.shape == (5, 1, 32, 32) and y.dtype == torch.long and int(y.max()) < 10


def test_saved_run_weights_load_back_and_are_checked(tiny_teacher, tmp_path, monkeypatch):
    from dfkd_lib.experiment import load_run_models, run_distillation, weights_path
    teacher = tiny_teacher
    monkeypatch.setenv("DFKD_FAST", "1")
    out = tmp_path / "run.json"
    run_distillation(teacher=teacher, student="resnet8", student_width=4, generator_width=4, nz=8, out=out,
                     progress=False, save_weights=True)
    import json

    from dfkd_lib import __version__
    from dfkd_lib.experiment import resolved_options

    res = json.loads(out.read_text())  # every hyper-parameter as used, defaults included, and the library version
    assert res["resolved"] == json.loads(json.dumps(resolved_options("baseline", None, "dcgan", None)))
    assert res["resolved"]["method"]["alpha"] == 0.3 and res["provenance"]["dfkd_lib"] == __version__
    student, generator = load_run_models(out)
    assert not student.training and generator is not None
    assert generator(generator.sample_z(2)).shape == (2, 1, 32, 32)
    w = weights_path(out)
    w.write_bytes(w.read_bytes() + b"x")
    with pytest.raises(ValueError, match="sha256"):
        load_run_models(out)
