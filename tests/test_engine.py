import functools
import json

import pytest
import torch
from torch import nn

from dfkd_lib.data import dataset_spec
from dfkd_lib.config import DistillConfig
from dfkd_lib.engine import distill
from dfkd_lib.step import NonFiniteLossError
from dfkd_lib.synthesizers import GeneratorSynthesizer
from dfkd_lib.hooks import NoBatchNormError
from dfkd_lib.methods import AdversarialBNDistillation, build_method
from dfkd_lib.models import resnet8
from dfkd_lib.models.generators import DCGANGenerator
from dfkd_lib.models import Features

SPEC = dataset_spec("fashion-mnist")
CFG = DistillConfig(epochs=2, iterations_per_epoch=1, batch_size=4, generator_steps=1, student_steps=2)


def _parts(seed=0, classes=10):
    torch.manual_seed(seed)
    return (resnet8(10, 1, 4).eval(), resnet8(classes, 1, 4), DCGANGenerator.for_dataset(SPEC, nz=8, width=4))


def test_distill_runs_and_teacher_stays_frozen(tiny_loader):
    t, s, g = _parts()
    t.train()  # the engine must put it in eval mode and freeze it
    before = {k: v.clone() for k, v in t.state_dict().items()}
    w0 = s.fc.weight.clone()
    res = distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, CFG, progress=False)
    assert len(res.history) == 2 and 0 <= res.best_accuracy <= 1
    assert all(torch.equal(before[k], v) for k, v in t.state_dict().items())  # BN running stats untouched
    assert not t.training and not any(p.requires_grad for p in t.parameters())
    assert not torch.equal(w0, s.fc.weight)
    assert {"G/L_BN", "G/L_KD", "S/L_KD"} <= set(res.history[0])


def test_resume_gives_the_same_run(tiny_loader, tmp_path):
    t, s, g = _parts()
    full = distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, CFG, progress=False)
    t, s, g = _parts()
    one = DistillConfig(**{**CFG.__dict__, "epochs": 2})
    ck = tmp_path / "run.pt"
    # stop after the first epoch by raising from the callback, then resume from the checkpoint
    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, one, checkpoint=ck,
                progress=False, on_epoch=stop)
    assert ck.is_file()
    t, s, g = _parts(seed=123)  # fresh weights: everything must come from the checkpoint
    t.load_state_dict(_parts()[0].state_dict())
    res = distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, one, checkpoint=ck,
                  progress=False)
    assert [h["epoch"] for h in res.history] == [1, 2]
    assert res.history[1]["S/L_KD"] == pytest.approx(full.history[1]["S/L_KD"], rel=1e-4)


def test_resume_refuses_a_checkpoint_of_another_configuration(tiny_loader, tmp_path):
    t, s, g = _parts()
    ck = tmp_path / "run.pt"
    distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader,
            DistillConfig(**{**CFG.__dict__, "epochs": 1}), checkpoint=ck, progress=False)
    t, s, g = _parts()
    with pytest.raises(ValueError, match="another configuration"):
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader,
                DistillConfig(**{**CFG.__dict__, "epochs": 1, "lr_student": 0.5}), checkpoint=ck, progress=False)


def test_compiled_networks_run_the_same_steps_and_resume_an_eager_checkpoint(tiny_loader, tmp_path, monkeypatch):
    from dfkd_lib import engine

    # dynamo's graph capture without code generation: the same operations, so the same numbers bit for bit
    monkeypatch.setattr(engine, "COMPILE_OPTIONS", {"backend": "eager"})
    cfg = DistillConfig(**{**CFG.__dict__, "epochs": 2})

    def run(compile_, **kw):
        t, s, g = _parts()
        method = build_method("dfkd-fgvc", beta=10, gamma=8)
        res = distill(t, s, GeneratorSynthesizer(g), method, tiny_loader,
                      DistillConfig(**{**cfg.__dict__, "compile": compile_}), progress=False, **kw)
        return res, (t, s, g, method)

    eager, _ = run(False)
    compiled, (t, s, g, method) = run(True)
    assert compiled.history == [{**h, "wall_s": c["wall_s"]} for h, c in zip(eager.history, compiled.history)]
    assert all(net._compiled_call_impl is not None for net in (t, s, g, *method.networks()))
    assert {type(m).__name__ for m in method.networks()} >= {"MixedHighOrderAttention", "Projector"}
    assert not any("_orig_mod" in k for k in s.state_dict())               # checkpoints keep their keys
    # a checkpoint written without compiling resumes compiled (and the other way round)
    ck = tmp_path / "run.pt"

    def stop(rec):
        if rec["epoch"] == 1:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run(False, checkpoint=ck, on_epoch=stop)
    resumed, _ = run(True, checkpoint=ck)
    assert resumed.resumed_from_epoch == 1
    assert resumed.history[1]["S/L_KD"] == eager.history[1]["S/L_KD"]


def test_resume_refuses_a_checkpoint_of_another_run(tiny_loader, tmp_path):
    t, s, g = _parts()
    ck, one = tmp_path / "run.pt", DistillConfig(**{**CFG.__dict__, "epochs": 1})
    distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, one, checkpoint=ck,
            progress=False, identity={"method": {"alpha": 0.3}})
    t, s, g = _parts()
    with pytest.raises(ValueError, match="written by another run"):
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, one, checkpoint=ck,
                progress=False, identity={"method": {"alpha": 0.5}})


class NaNMethod(AdversarialBNDistillation):
    def student_loss(self, step):
        loss, logs = super().student_loss(step)
        return loss * float("nan"), logs


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tiny_loader, tmp_path):
    t, s, g = _parts()
    ck = tmp_path / "run.pt"
    with pytest.raises(NonFiniteLossError):
        distill(t, s, GeneratorSynthesizer(g), NaNMethod(), tiny_loader, CFG, checkpoint=ck, progress=False)
    assert not ck.exists()  # nothing half-good was written


def test_class_mismatch_is_a_clear_error(tiny_loader):
    t, s, g = _parts(classes=4)
    with pytest.raises(ValueError, match="teacher predicts 10 classes but the student 4"):
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, CFG, progress=False)


class NoBNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv, self.fc = nn.Conv2d(1, 4, 3, padding=1), nn.Linear(4, 10)

    def forward(self, x, return_features=False):
        f = torch.relu(self.conv(x))
        pen = f.mean((2, 3))
        out = self.fc(pen)
        return (out, Features([f], pen)) if return_features else out


def test_bn_method_with_bn_free_teacher(tiny_loader):
    _, s, g = _parts()
    with pytest.raises(NoBatchNormError, match="BatchNorm2d"):
        distill(NoBNNet(), s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, CFG,
                progress=False)


def test_unknown_method():
    with pytest.raises(KeyError, match="known methods"):
        build_method("no-such-method")


def test_cli_distill_never_reads_the_training_split(tmp_path, monkeypatch):
    """A data-free run may read the real test split only: every IDX file opened is recorded."""
    from conftest import HAS_FMNIST
    if not HAS_FMNIST:
        pytest.skip("Fashion-MNIST not installed")
    from dfkd_lib import cli
    from dfkd_lib.data import fashion_mnist as data
    from dfkd_lib.checkpoint import save_model

    teacher = tmp_path / "teacher.pt"
    save_model(resnet8(10, 1, 4), teacher, {"architecture": "resnet8", "width": 4, "num_classes": 10,
                                            "in_channels": 1, "dataset": "fashion-mnist", "test_accuracy": 0.1})
    opened = []
    real = data._read_idx
    monkeypatch.setattr(data, "_read_idx", lambda p: opened.append(p.name) or real(p))
    monkeypatch.setenv("DFKD_FAST", "1")
    out = tmp_path / "result.json"
    assert cli.main(["distill", "--teacher", str(teacher), "--student", "resnet8", "--student-width", "4",
                     "--generator-width", "4", "--nz", "8", "--out", str(out)]) == 0
    assert opened and all(name.startswith("t10k-") for name in opened), opened
    res = json.loads(out.read_text())
    assert res["provenance"]["command"].startswith("python -m dfkd_lib distill")
    assert res["provenance"]["library_modified"] in (True, False, None)
    assert len(res["history"]) == 1 and res["test_images"] == 200
    assert set(res) >= {"config", "best_accuracy", "last_accuracy", "wall_s", "teacher"}


def test_run_distillation_with_an_inversion_method(tiny_teacher, tmp_path, monkeypatch):
    from dfkd_lib.experiment import run_distillation
    teacher = tiny_teacher
    monkeypatch.setenv("DFKD_FAST", "1")
    res = run_distillation(teacher=teacher, student="resnet8", student_width=4, method="deepinversion",
                           method_options={"steps": 2, "progress": False}, progress=False)
    assert res["method"]["name"] == "deepinversion" and 0 <= res["best_accuracy"] <= 1
    # fast mode also caps the inversion steps of each batch
    from dfkd_lib.synthesizers import deepinversion as synthesis
    from dfkd_lib.experiment import FAST_INVERSION_STEPS
    seen, real = [], synthesis.deep_inversion

    @functools.wraps(real)  # keeps the signature the option check reads
    def spy(*a, **kw):
        seen.append(kw["steps"])
        return real(*a, **kw)
    monkeypatch.setattr(synthesis, "deep_inversion", spy)
    run_distillation(teacher=teacher, student="resnet8", student_width=4, method="adi",
                     method_options={"steps": 300}, progress=False)
    assert seen and set(seen) == {FAST_INVERSION_STEPS}


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_without_bf16_hardware_warns(tiny_loader, monkeypatch, native):
    import warnings

    import dfkd_lib.engine as engine
    monkeypatch.setattr(engine, "bf16_native", lambda device: native)
    t, s, g = _parts()
    cfg = DistillConfig(**{**CFG.__dict__, "epochs": 1, "amp": "bf16"})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        distill(t, s, GeneratorSynthesizer(g), AdversarialBNDistillation(), tiny_loader, cfg, progress=False)
    said = [str(w.message) for w in caught if "bfloat16 hardware" in str(w.message)]
    assert len(said) == (0 if native else 1)
    assert native or "amp=None" in said[0]


def test_bf16_native_reads_the_cpu_and_provenance_records_it():
    from dfkd_lib.utils import bf16_native, provenance

    expected = bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    assert bf16_native("cpu") is expected
    p = provenance("x")
    assert p["cpu_bf16_native"] is expected and isinstance(p["cpu"], str) and p["cpu"]


def test_fast_amp_follows_the_hardware(monkeypatch):
    import dfkd_lib.utils as utils

    monkeypatch.setattr(utils, "bf16_native", lambda device="cpu": False)
    assert utils.fast_amp() is None
    monkeypatch.setattr(utils, "bf16_native", lambda device="cpu": True)
    assert utils.fast_amp("cpu") == "bf16"


def test_public_api_imports_without_the_book_packages():
    import subprocess
    import sys

    code = ("import sys; sys.modules.update({m: None for m in ('pandas', 'seaborn', 'ipywidgets', 'matplotlib', "
            "'sklearn')}); import dfkd_lib; print(len(dfkd_lib.__all__), all(hasattr(dfkd_lib, n) for n in "
            "dfkd_lib.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[1] == "True"


def _every_method():
    from dfkd_lib.methods.inversion import make_inversion_run
    from dfkd_lib.synthesizers import ImagePool, RealImages

    def gen(method, **options):
        return lambda: (GeneratorSynthesizer(DCGANGenerator.for_dataset(SPEC, nz=8, width=4)),
                        build_method(method, **options))

    def inv(kind):
        return lambda: make_inversion_run(kind, SPEC, steps=2, batch_size=4)

    def real(method):
        def make():
            synth = RealImages(SPEC)
            synth.images, synth.labels = torch.randn(8, 1, 32, 32), torch.arange(8) % 10  # no dataset needed
            return synth, build_method(method)
        return make

    def own(method, **options):  # a method that chooses its synthesiser (Method.make_synthesizer)
        def make():
            m = build_method(method, **options)
            return m.make_synthesizer(DCGANGenerator.for_dataset(SPEC, nz=8, width=4), SPEC), m
        return make

    assert ImagePool  # the pixel methods keep their batches in one
    return {"baseline": gen("baseline"), "dfkd-fgvc": gen("dfkd-fgvc", order=2), "deepinversion": inv("deepinversion"),
            "adi": inv("adi"), "zskd": inv("zskd"), "real-kd": real("real-kd"), "real-labels": real("real-labels"),
            **{m: own(m) for m in ("dfad", "dafl", "zskt", "dfq", "mad", "spaceshipnet")}, "cmi": own("cmi", steps=2)}


def test_every_registered_method_is_covered():
    from dfkd_lib.methods import METHODS
    assert set(_every_method()) == set(METHODS)


@pytest.mark.parametrize("name", list(_every_method()))
def test_every_method_leaves_the_teacher_bit_identical(tiny_loader, name):
    t, s, _ = _parts()
    t.train()
    before = {k: v.clone() for k, v in t.state_dict().items()}  # weights and BN buffers
    synth, method = _every_method()[name]()
    distill(t, s, synth, method, tiny_loader, CFG, progress=False)
    after = t.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before), name
