"""Nothing is left behind by a run: 100 runs in one process, cycling through the methods that hook into the
teacher (BN statistics, features) and the one that optimises pixels, leave the shared teacher without hooks and
the process with no more live tensors and Python objects than after the first few runs."""
import gc

import torch

from dfkd_lib.config import DistillConfig
from dfkd_lib.data import dataset_spec
from dfkd_lib.engine import distill
from dfkd_lib.methods import build_method
from dfkd_lib.methods.inversion import make_inversion_run
from dfkd_lib.models import resnet8
from dfkd_lib.models.attention_generator import AttentionGenerator
from dfkd_lib.synthesizers import GeneratorSynthesizer

SPEC = dataset_spec("fashion-mnist")
CFG = DistillConfig(epochs=1, iterations_per_epoch=1, batch_size=4, generator_steps=1, student_steps=1)
RUNS, WARM_UP = 100, 10


def _hooks(model: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks)
               + len(m._backward_pre_hooks) for m in model.modules())


def _one_run(teacher, i, loader):
    kind = ("baseline", "dfkd-fgvc", "deepinversion")[i % 3]
    student = resnet8(10, 1, 4)
    if kind == "deepinversion":
        synth, method = make_inversion_run(kind, SPEC, steps=1, batch_size=4)
    else:
        synth = GeneratorSynthesizer(AttentionGenerator.for_dataset(SPEC, nz=8, width=4))
        method = build_method(kind)
    distill(teacher, student, synth, method, loader, CFG, progress=False)


def _live():
    gc.collect()
    objects = gc.get_objects()
    return len(objects), sum(1 for o in objects if torch.is_tensor(o))


def test_a_hundred_runs_leave_no_hooks_and_do_not_grow(tiny_loader):
    torch.manual_seed(0)
    teacher = resnet8(10, 1, 4).eval()
    for i in range(WARM_UP):
        _one_run(teacher, i, tiny_loader)
    objects0, tensors0 = _live()
    for i in range(WARM_UP, RUNS):
        _one_run(teacher, i, tiny_loader)
        assert _hooks(teacher) == 0, f"run {i} left hooks on the teacher"
    objects1, tensors1 = _live()
    assert tensors1 <= tensors0, (tensors0, tensors1)
    assert objects1 - objects0 < 0.01 * objects0, (objects0, objects1)  # no growth with the number of runs
