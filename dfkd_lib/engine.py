"""The one training loop of dfkd_lib: Algorithm 1 of DFKD-FGVC, shared by every method.

Each iteration runs ``t = method.generator_steps`` synthesis steps, then ``k = method.student_steps`` student
steps on freshly synthesised batches; each epoch of ``iterations_per_epoch`` iterations ends with an
evaluation of the student on the real *test* split. Methods differ only by their losses
(:class:`~dfkd_lib.methods.Method`) and by where their images come from (a :class:`Synthesizer`).

The teacher is frozen and in eval mode throughout, whatever the caller did with it. The loop never touches a
real training image: it receives only the test loader.
"""
from __future__ import annotations

import contextlib
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
from .hooks import BNStatistics, batchnorm_layers, NoBatchNormError
from .methods.base import Method, Step
from .pool import ImagePool
from .teachers import autocast, evaluate
from .utils import as_json, bf16_native, provenance, seed_everything


class NonFiniteLossError(FloatingPointError):
    """A loss became NaN or infinite; the run stopped and the last good checkpoint was kept."""


@dataclass
class DistillConfig:
    """Schedule and optimisers of a distillation run (defaults: DFKD-FGVC Sec. 5.1 / Algorithm 1).

    Attributes:
        epochs: number of epochs (200 in the paper).
        iterations_per_epoch: Algorithm 1 iterations per epoch (not given by the paper; 50 as in DFAD).
        batch_size: synthetic images per step (64).
        lr_generator, betas: Adam for the generator (1e-3, (0.5, 0.999)).
        lr_student, momentum, weight_decay: SGD for the student and the method's modules (1e-2, 0.9, 5e-4),
            cosine-annealed per epoch when ``cosine``.
        seed: seeds Python, numpy and torch at the start (and the synthesiser's noise).
        amp: ``"bf16"`` autocast for the forward passes, or ``None`` (fp32).
        generator_steps, student_steps: override the method's ``t`` and ``k`` when not ``None``.
        pool_size: images kept in a memory bank (:class:`~dfkd_lib.pool.ImagePool`) of past generator
            batches; 0 (default) keeps none and every student step draws a fresh batch, as Algorithm 1 does.
            With a bank, student steps sample from everything generated so far (CMI, Fast-DFKD), so a few
            generator steps feed many student steps.
        pool_fraction: share in [0, 1] of each student batch drawn from the bank (the rest fresh from the
            generator); used only when ``pool_size > 0``.
        channels_last: run teacher, student and generator in ``torch.channels_last`` memory format.
        augment: random crop (edge padding of 4 pixels) and horizontal flip of every student batch before the
            student step (:func:`~dfkd_lib.augment.augment_batch`, as CMI and Fast-DFKD augment their memory
            bank); off in Algorithm 1.
    """

    epochs: int = 200
    iterations_per_epoch: int = 50
    batch_size: int = 64
    lr_generator: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    lr_student: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    cosine: bool = True
    seed: int = 0
    amp: str | None = None
    generator_steps: int | None = None
    student_steps: int | None = None
    pool_size: int = 0
    pool_fraction: float = 1.0
    channels_last: bool = False
    augment: bool = False

    def __post_init__(self):
        if self.epochs < 1 or self.iterations_per_epoch < 1 or self.batch_size < 1:
            raise ValueError(f"epochs, iterations_per_epoch and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.iterations_per_epoch}, {self.batch_size}")
        if self.pool_size < 0 or not 0.0 <= self.pool_fraction <= 1.0:
            raise ValueError(f"pool_size must be >= 0 and pool_fraction in [0, 1], got {self.pool_size}, "
                             f"{self.pool_fraction}")
        for name in ("generator_steps", "student_steps"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {v}")


# ---------------------------------------------------------------------------------------------- synthesisers
class Synthesizer:
    """Where the student's images come from. ``synthesis_step`` improves the source (one generator update,
    or one optimised batch), ``sample`` draws a detached batch for a student step."""

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        """Create optimisers; called once by the engine."""

    def synthesis_step(self, teacher: nn.Module, student: nn.Module, method: Method, config: DistillConfig
                       ) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def forward_step(teacher: nn.Module, student: nn.Module, x: torch.Tensor, method: Method, phase: str,
                 amp: str | None = None, labels: torch.Tensor | None = None) -> Step:
    """Run teacher and student on ``x`` and pack a :class:`Step`.

    In the generator phase gradients flow through both networks into ``x`` (their weights are frozen by the
    caller) and the teacher's BN statistics are recorded when ``method.uses_bn``; in the student phase the
    teacher runs under ``no_grad``.
    """
    device = x.device
    bn_ctx = BNStatistics(teacher) if (method.uses_bn and phase == "generator") else contextlib.nullcontext()
    grad_ctx = torch.enable_grad() if phase == "generator" else torch.no_grad()
    with autocast(device, amp):
        with bn_ctx as bn, grad_ctx:
            t_logits, t_feats = teacher(x, return_features=True)
        s_logits, s_feats = student(x, return_features=True)
    bn_loss = bn.loss() if bn is not None else None
    return Step(x, t_logits.float(), t_feats, s_logits.float(), s_feats, bn_loss, phase, labels)


class GeneratorSynthesizer(Synthesizer):
    """A generator ``G(z)`` trained adversarially by the method's generator loss (Algorithm 1, lines 2-9).

    With ``config.pool_size > 0`` every batch a generator step makes is also kept in a memory bank
    (:class:`~dfkd_lib.pool.ImagePool`), and :meth:`sample` draws ``config.pool_fraction`` of each student
    batch from it. Fresh samples come from the generator in eval mode (its BN layers use their running
    statistics, which sampling never changes); generator steps run it in train mode.

    Args:
        generator: maps ``z (N, nz)`` to images ``(N, C, H, W)`` in the teacher's input space; must have
            ``nz`` and ``sample_z`` (as :class:`~dfkd_lib.models.generators.DCGANGenerator`).
    """

    def __init__(self, generator: nn.Module):
        self.generator = generator
        self.optimizer: torch.optim.Optimizer | None = None
        self.device = torch.device("cpu")
        self.pool: ImagePool | None = None
        self.pool_fraction = 1.0
        self._pool_gen = torch.Generator()

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        self.device = device
        self.generator.to(device).train()
        if config.channels_last:
            self.generator.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.generator.parameters(), lr=config.lr_generator,
                                          betas=config.betas)
        self.pool = ImagePool(config.pool_size) if config.pool_size > 0 else None
        self.pool_fraction = config.pool_fraction
        self._pool_gen.manual_seed(config.seed + 1)

    def synthesis_step(self, teacher, student, method, config):
        self.generator.train()
        x = self.generator(self.generator.sample_z(config.batch_size, self.device))
        student.requires_grad_(False)
        try:
            step = forward_step(teacher, student, x, method, "generator", config.amp)
            loss, logs = method.generator_loss(step)
            check_finite(loss, "generator")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        finally:
            student.requires_grad_(True)
        if self.pool is not None:
            self.pool.add(x.detach())
        return logs

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` images: ``round(n * pool_fraction)`` from the bank (once it holds images), the rest fresh."""
        from_pool = round(n * self.pool_fraction) if self.pool is not None and len(self.pool) else 0
        parts = [self.pool.sample(from_pool, generator=self._pool_gen)] if from_pool else []
        if n - from_pool > 0:
            was_training = self.generator.training
            self.generator.eval()
            try:
                parts.append(self.generator(self.generator.sample_z(n - from_pool, self.device)))
            finally:
                self.generator.train(was_training)
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {"generator": self.generator.state_dict(), "optimizer": self.optimizer.state_dict(),
                "pool": self.pool.state_dict() if self.pool is not None else None,
                "pool_rng": self._pool_gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.generator.load_state_dict(state["generator"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.pool is not None and state.get("pool") is not None:
            self.pool.load_state_dict(state["pool"])
        if "pool_rng" in state:
            self._pool_gen.set_state(state["pool_rng"])


# ---------------------------------------------------------------------------------------------- the loop
def as_batch(sample) -> tuple[torch.Tensor, torch.Tensor | None]:
    """A synthesiser's sample as ``(images, labels or None)``, detached (labelled sources return a pair)."""
    x, y = sample if isinstance(sample, tuple) else (sample, None)
    return x.detach(), y
def check_finite(loss: torch.Tensor, where: str) -> None:
    """Raise :class:`NonFiniteLossError` if ``loss`` is NaN or infinite."""
    if not torch.isfinite(loss).all():
        raise NonFiniteLossError(f"{where} loss became {loss.item()}; stopping (the last checkpoint written, "
                                 "if any, is the last good one)")


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


def student_step(teacher: nn.Module, student: nn.Module, synthesizer: Synthesizer, method: Method,
                 optimizer: torch.optim.Optimizer, config: DistillConfig) -> dict[str, float]:
    """One student update (Algorithm 1, lines 10-14): sample a batch (augmented when ``config.augment``),
    ``method.student_loss``, SGD step.

    Returns the method's named loss terms. Raises :class:`NonFiniteLossError` on a NaN/inf loss (before
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


@dataclass
class DistillResult:
    """Outcome of :func:`distill`: per-epoch student test accuracy (in [0, 1]) and losses, best and last."""

    history: list[dict] = field(default_factory=list)
    teacher_accuracy: float | None = None
    wall_s: float = 0.0

    @property
    def best_accuracy(self) -> float:
        return max(h["test_accuracy"] for h in self.history)

    @property
    def last_accuracy(self) -> float:
        return self.history[-1]["test_accuracy"]

    def to_dict(self) -> dict:
        return {"history": self.history, "teacher_accuracy": self.teacher_accuracy,
                "best_accuracy": self.best_accuracy, "last_accuracy": self.last_accuracy, "wall_s": self.wall_s}


def distill(teacher: nn.Module, student: nn.Module, synthesizer: Synthesizer, method: Method,
            test_loader, config: DistillConfig, *, device=None, checkpoint: str | Path | None = None,
            progress: bool = True, teacher_accuracy: float | None = None,
            on_epoch: Callable[[dict], None] | None = None) -> DistillResult:
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
        on_epoch: called with each epoch's record (for live plots).

    Returns:
        :class:`DistillResult`.

    Raises:
        ValueError: class mismatch between student and teacher. NoBatchNormError: BN method, BN-free teacher.
        NonFiniteLossError: a loss became NaN/inf (the last checkpoint on disk is the last good epoch).
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
        if "config" in st and st["config"] != as_json(asdict(config)):
            raise ValueError(f"checkpoint {ckpt} was written by a run with another configuration "
                             f"({st['config']}); delete it or pass the same DistillConfig")
        student.load_state_dict(st["student"]), method.load_state_dict(st["method"])
        synthesizer.load_state_dict(st["synthesizer"]), opt_s.load_state_dict(st["opt_student"])
        if sched is not None:
            sched.load_state_dict(st["sched"])
        result.history, start, elapsed = st["history"], st["epoch"], st["wall_s"]
        torch.set_rng_state(st["torch_rng"])
    t0 = time.time() - elapsed
    for epoch in range(start, config.epochs):
        sums: dict[str, float] = {}
        bar = tqdm(range(config.iterations_per_epoch), desc=f"{method.name} epoch {epoch + 1}/{config.epochs}",
                   disable=not progress, leave=False)
        for _ in bar:
            for _ in range(t_steps):
                for k, v in synthesizer.synthesis_step(teacher, student, method, config).items():
                    sums["G/" + k] = sums.get("G/" + k, 0.0) + v / t_steps
            for _ in range(k_steps):
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
                         "torch_rng": torch.get_rng_state(), "config": as_json(asdict(config))}, ckpt)
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
