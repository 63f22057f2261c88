"""The one training loop of dfkd_lib: Algorithm 1 of DFKD-FGVC, shared by every method.

Each iteration runs ``t = method.generator_steps`` synthesis steps, then ``k = method.student_steps`` student
steps on freshly synthesised batches; each epoch of ``iterations_per_epoch`` iterations ends with an
evaluation of the student on the real *test* split. Methods differ only by their losses
(:class:`~dfkd_lib.methods.Method`) and by where their images come from (a :class:`Synthesizer`).

The teacher is frozen and in eval mode throughout, whatever the caller did with it. The loop never touches a
real training image: it receives only the test loader.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import torch
from torch import nn
from tqdm.auto import tqdm

from .augment import augment_batch
from .checkpoint import atomic_save, safe_load, write_json
from .config import RESUMABLE_CHANGES, DistillConfig
from .hooks import NoBatchNormError, batchnorm_layers
from .methods.base import Method
from .step import as_batch, check_finite, forward_step
from .synthesizers.base import Synthesizer
from .teachers import evaluate
from .utils import as_json, bf16_native, provenance, seed_everything

__all__ = ["DistillResult", "check_pair", "compile_networks", "distill", "student_step", "write_result"]

#: Keyword arguments of ``torch.compile`` for :func:`compile_networks` (default: the inductor backend).
COMPILE_OPTIONS: dict = {}


# ---------------------------------------------------------------------------------------------- the loop
def check_pair(teacher: nn.Module, student: nn.Module, method: Method, x: torch.Tensor) -> None:
    """Clear errors for a student/teacher class mismatch and a BN method with a BN-free teacher."""
    if method.uses_bn and not batchnorm_layers(teacher):
        raise NoBatchNormError(f"method {method.name!r} uses the teacher's BN statistics, but "
                               f"{type(teacher).__name__} has no BatchNorm2d layer")
    was_training = student.training
    student.eval()  # a shape probe must not move the student's BN running statistics
    with torch.no_grad():
        t, s = teacher(x[:2]), student(x[:2])
    student.train(was_training)
    if t.shape != s.shape:
        raise ValueError(f"teacher predicts {t.shape[1]} classes but the student {s.shape[1]}: build the student "
                         "with the teacher's num_classes")


def compile_networks(teacher: nn.Module, student: nn.Module, synthesizer: Synthesizer, method: Method) -> list:
    """``torch.compile`` in place (``nn.Module.compile``: state_dict keys and parameters unchanged) the networks the
    loop's steps call: teacher, student, :meth:`Synthesizer.networks` and :meth:`Method.networks`; returns them.

    Each network compiles on its first calls (a graph per mode: train/eval, with and without gradients, with and
    without the BN-statistics hooks); torch keeps compiled code in its on-disk cache, so a later run of the
    same shapes starts in seconds. :data:`COMPILE_OPTIONS` are passed to ``torch.compile``."""
    networks = [teacher, student, *synthesizer.networks(), *method.networks()]
    for net in networks:
        net.compile(**COMPILE_OPTIONS)
    return networks


def student_step(teacher: nn.Module, student: nn.Module, synthesizer: Synthesizer, method: Method,
                 optimizer: torch.optim.Optimizer, config: DistillConfig) -> dict[str, float]:
    """One student update (Algorithm 1, lines 10-14): sample a batch (augmented when ``config.augment``),
    ``method.student_loss``, SGD step.

    Returns the method's named loss terms. Raises :class:`~dfkd_lib.step.NonFiniteLossError` on a NaN/inf loss (before
    the update, so the student keeps its last good weights)."""
    x, y = as_batch(synthesizer.sample(config.batch_size))
    if config.augment:
        x = augment_batch(x)
    step = forward_step(teacher, student, x, method, "student", config.amp, labels=y)
    loss, logs = method.student_loss(step)
    check_finite(loss, "student")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return logs


def _resumable(config: dict) -> dict:
    """A checkpoint's schedule as a resumed run must match it: without :data:`~dfkd_lib.config.RESUMABLE_CHANGES`,
    with the defaults of fields the checkpoint is older than."""
    return {k: v for k, v in {**as_json(asdict(DistillConfig())), **config}.items() if k not in RESUMABLE_CHANGES}


@dataclass
class DistillResult:
    """Outcome of :func:`distill`: per-epoch student test accuracy (in [0, 1]) and losses, best and last."""

    history: list[dict] = field(default_factory=list)
    teacher_accuracy: float | None = None
    wall_s: float = 0.0
    resumed_from_epoch: int | None = None  # the epoch a checkpoint brought the run back to, if it was interrupted

    @property
    def best_accuracy(self) -> float:
        return max(h["test_accuracy"] for h in self.history)

    @property
    def last_accuracy(self) -> float:
        return self.history[-1]["test_accuracy"]

    def to_dict(self) -> dict:
        return {"history": self.history, "teacher_accuracy": self.teacher_accuracy,
                "best_accuracy": self.best_accuracy, "last_accuracy": self.last_accuracy, "wall_s": self.wall_s,
                "resumed_from_epoch": self.resumed_from_epoch}


def distill(teacher: nn.Module, student: nn.Module, synthesizer: Synthesizer, method: Method,
            test_loader, config: DistillConfig, *, device=None, checkpoint: str | Path | None = None,
            progress: bool = True, teacher_accuracy: float | None = None,
            on_epoch: Callable[[dict], None] | None = None, identity: dict | None = None,
            on_student_step: Callable[[int], None] | None = None) -> DistillResult:
    """Distil ``teacher`` into ``student`` without real training data (Algorithm 1 of DFKD-FGVC).

    Args:
        teacher: trained classifier supporting ``return_features=True``; frozen and put in eval mode here.
        student: classifier with the same number of classes; trained in place.
        synthesizer: source of synthetic images (e.g. :class:`GeneratorSynthesizer`).
        method: the losses and step counts.
        test_loader: loader over the real **test** split, used only for evaluation after each epoch.
        config: schedule and optimisers.
        checkpoint: path of a training checkpoint written atomically after every epoch; when the file
            exists, the run resumes from it.
        identity: what else defines the run beyond ``config`` (JSON-able, e.g. the method's and generator's
            resolved options); stored in the checkpoint, and a checkpoint of another identity is refused.
        on_epoch: called with each epoch's record (for live plots).
        on_student_step: called before each student step with the number of student steps done so far
            (0, 1, ...; counted from the start of the run, also after a resume), e.g. to take snapshots.

    Returns:
        :class:`DistillResult`.

    Raises:
        ValueError: class mismatch between student and teacher. NoBatchNormError: BN method, BN-free teacher.
        dfkd_lib.step.NonFiniteLossError: a loss became NaN/inf (the last checkpoint on disk is the last good epoch).
    """
    device = torch.device(device) if device is not None else next(student.parameters()).device
    if config.amp == "bf16" and not bf16_native(device):
        warnings.warn(f"amp='bf16' on a {device.type} without bfloat16 hardware (dfkd_lib.utils.bf16_native): "
                      "bf16 is emulated there and usually slower than fp32; pass amp=None for speed", stacklevel=2)
    seed_everything(config.seed)
    teacher.to(device).eval().requires_grad_(False)
    student.to(device).train()
    if config.channels_last:
        teacher.to(memory_format=torch.channels_last), student.to(memory_format=torch.channels_last)
    synthesizer.setup(config, device)
    example, _ = as_batch(synthesizer.sample(2))
    check_pair(teacher, student, method, example)
    method.setup(teacher, student, example)
    method.to(device).train()
    if config.compile:
        compile_networks(teacher, student, synthesizer, method)
    params = list(student.parameters()) + [p for p in method.parameters() if p.requires_grad]
    opt_s = torch.optim.SGD(params, lr=config.lr_student, momentum=config.momentum,
                            weight_decay=config.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt_s, config.epochs) if config.cosine else None
    t_steps = config.generator_steps if config.generator_steps is not None else method.generator_steps
    k_steps = config.student_steps if config.student_steps is not None else method.student_steps
    result, start, elapsed = DistillResult(teacher_accuracy=teacher_accuracy), 0, 0.0
    ckpt = Path(checkpoint) if checkpoint is not None else None
    if ckpt is not None and ckpt.is_file():
        st = safe_load(ckpt, map_location=device)
        if "config" in st and _resumable(st["config"]) != _resumable(as_json(asdict(config))):
            raise ValueError(f"checkpoint {ckpt} was written by a run with another configuration "
                             f"({st['config']}); delete it or pass the same DistillConfig")
        if "identity" in st and st["identity"] != as_json(identity):
            raise ValueError(f"checkpoint {ckpt} was written by another run ({st['identity']}); delete it "
                             "or run with the same method, generator and options")
        student.load_state_dict(st["student"]), method.load_state_dict(st["method"])
        synthesizer.load_state_dict(st["synthesizer"]), opt_s.load_state_dict(st["opt_student"])
        if sched is not None:
            sched.load_state_dict(st["sched"])
        result.history, start, elapsed = st["history"], st["epoch"], st["wall_s"]
        result.resumed_from_epoch = start
        torch.set_rng_state(st["torch_rng"])
    t0 = time.time() - elapsed
    done = start * config.iterations_per_epoch * k_steps  # student steps so far
    for epoch in range(start, config.epochs):
        sums: dict[str, float] = {}
        bar = tqdm(range(config.iterations_per_epoch), desc=f"{method.name} epoch {epoch + 1}/{config.epochs}",
                   disable=not progress, leave=False)
        for _ in bar:
            for _ in range(t_steps):
                for k, v in synthesizer.synthesis_step(teacher, student, method, config).items():
                    sums["G/" + k] = sums.get("G/" + k, 0.0) + v / t_steps
            for _ in range(k_steps):
                if on_student_step is not None:
                    on_student_step(done)
                done += 1
                logs = student_step(teacher, student, synthesizer, method, opt_s, config)
                for k, v in logs.items():
                    sums["S/" + k] = sums.get("S/" + k, 0.0) + v / k_steps
            bar.set_postfix({k: f"{v / (bar.n + 1):.3f}" for k, v in sums.items() if k.startswith("S/")})
        if sched is not None:
            sched.step()
        acc = evaluate(student, test_loader, device)
        student.train()
        record = {"epoch": epoch + 1, "test_accuracy": acc, "wall_s": round(time.time() - t0, 1),
                  **{k: v / config.iterations_per_epoch for k, v in sums.items()}}
        result.history.append(record)
        if progress:
            print(f"epoch {epoch + 1}: student test accuracy {acc:.4f}")
        if ckpt is not None:
            atomic_save({"student": student.state_dict(), "method": method.state_dict(),
                         "synthesizer": synthesizer.state_dict(), "opt_student": opt_s.state_dict(),
                         "sched": sched.state_dict() if sched is not None else None,
                         "history": result.history, "epoch": epoch + 1, "wall_s": time.time() - t0,
                         "torch_rng": torch.get_rng_state(), "config": as_json(asdict(config)),
                         "identity": as_json(identity)}, ckpt)
        if on_epoch is not None:
            on_epoch(record)
    result.wall_s = round(time.time() - t0, 1)
    return result


def write_result(path: str | Path, result: DistillResult, config: DistillConfig, extra: dict | None = None,
                 command: str | None = None) -> dict:
    """Write a result JSON: config, per-epoch accuracy, best/last, wall time and provenance."""
    out = {"config": asdict(config), **(extra or {}), **result.to_dict(), "provenance": provenance(command)}
    if math.isnan(out["best_accuracy"]):  # pragma: no cover - evaluate never returns NaN
        raise ValueError("best accuracy is NaN")
    write_json(out, path)
    return out
