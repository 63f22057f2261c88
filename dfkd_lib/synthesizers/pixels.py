"""The toolkit of pixel optimisation shared by DeepInversion, ADI and ZSKD: what they return, the teacher
frozen around them, the jitter, the clamping to valid pixels, snapshots, and the pool synthesiser that feeds the
optimised batches to the student (:class:`PixelPoolSynthesizer`).

All images live in the teacher's (normalised) input space and are clamped to the valid range of
:meth:`~dfkd_lib.data.DatasetSpec.pixel_bounds`; :meth:`~dfkd_lib.data.DatasetSpec.denormalize` maps them to
``[0, 1]`` pixels for display.
"""
from __future__ import annotations

import contextlib
import inspect
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn

from ..config import DistillConfig
from ..data import DatasetSpec
from .base import Synthesizer
from .pool import ImagePool


class InversionResult(NamedTuple):
    """What :func:`deep_inversion` and :func:`zskd_synthesize` return.

    Attributes:
        images: the optimised batch ``(N, C, H, W)`` in the teacher's input space, detached, within
            ``spec.pixel_bounds()``; on the teacher's device.
        targets: what the images were optimised for: class indices ``(N,)`` (DI/ADI) or soft targets
            ``(N, K)`` (ZSKD).
        history: one dict of float loss terms per optimisation step (computed on that step's jittered batch,
            before its update); see the function for the keys.
        snapshots: ``(step, images)`` pairs, ``images`` a CPU copy ``(N, C, H, W)`` after ``step`` updates
            (step 0 is the initial noise), every ``snapshot_every`` steps and at the end; empty when
            ``snapshot_every`` is ``None``.
        final: terms on the final, un-jittered images: ``"CE"`` and ``"teacher_acc"`` (fraction of images the
            teacher assigns to their target class, in ``[0, 1]``).
    """

    images: torch.Tensor
    targets: torch.Tensor
    history: list[dict]
    snapshots: list[tuple[int, torch.Tensor]]
    final: dict



# ------------------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def frozen(model: nn.Module | None) -> Iterator[nn.Module | None]:
    """Put ``model`` in eval mode with ``requires_grad=False`` inside the block, then restore every flag.

    Inversion needs the teacher (and ADI's student) in eval mode: in train mode BatchNorm would normalise with
    the synthetic batch's own statistics and overwrite the running statistics the BN loss compares against.
    Gradients still flow through the model into its input. ``None`` is accepted and ignored.
    """
    if model is None:
        yield None
        return
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _bounds(spec: DatasetSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = spec.pixel_bounds()
    return lo.to(device), hi.to(device)


def _clamp_(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
    with torch.no_grad():
        x.copy_(torch.minimum(torch.maximum(x, lo), hi))


def _jitter_flip(x: torch.Tensor, jitter: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random roll by up to ``jitter`` pixels in each spatial direction and, with probability 1/2, a
    horizontal flip (DeepInversion's augmentation, drawn from ``gen`` on the CPU)."""
    if jitter > 0:
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
        if dy or dx:
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        x = torch.flip(x, dims=(3,))
    return x


def _snapshot_due(done: int, steps: int, every: int | None) -> bool:
    return every is not None and (done % every == 0 or done == steps)


def _update_pixels(opt: torch.optim.Optimizer, loss: torch.Tensor, x: torch.Tensor, lo: torch.Tensor,
                   hi: torch.Tensor) -> None:
    """One optimiser step on the pixels ``x``, then clamp them to the valid (normalised) range."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    _clamp_(x, lo, hi)


def _record_and_ask(done: int, steps: int, x: torch.Tensor, terms: dict, snapshot_every: int | None,
                    snapshots: list, callback) -> bool:
    """After step ``done``: keep a snapshot when one is due, then ask the callback; ``True`` means stop (the
    stopping batch is snapshotted too)."""
    if _snapshot_due(done, steps, snapshot_every):
        snapshots.append((done, x.detach().cpu().clone()))
    if callback is not None and callback(done, x.detach(), terms):
        if snapshot_every is not None and snapshots[-1][0] != done:
            snapshots.append((done, x.detach().cpu().clone()))
        return True
    return False


def _check_common(steps: int, lr: float, jitter: int, amp: str | None = None) -> None:
    if amp not in (None, "bf16"):
        raise ValueError(f"amp must be None (fp32) or 'bf16', got {amp!r}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 pixels, got {jitter}")


class PixelPoolSynthesizer(Synthesizer):
    """Shared part of the inversion synthesizers: a pool, per-batch seeds, sampling and checkpoint state."""

    kind = "pool"

    def __init__(self, spec: DatasetSpec, batch_size: int | None, pool_capacity: int, seed: int | None,
                 progress: bool, max_batches: int | None):
        if max_batches is not None and max_batches < 0:
            raise ValueError(f"max_batches must be >= 0 or None, got {max_batches}")
        self.spec = spec
        self.batch_size = batch_size
        self.pool = ImagePool(pool_capacity)
        self.seed = seed
        self.progress = progress
        self.max_batches = max_batches
        self.batches = 0
        self.device = torch.device("cpu")
        self._sample_gen = torch.Generator()
        self.last_result: InversionResult | None = None
        self.options: dict = {}
        self._amp_from_config = True

    def _take_amp(self, options: dict) -> None:
        """Keep the options; without an explicit ``amp`` the run's ``config.amp`` is used (set in :meth:`setup`)."""
        self.options = options
        self._amp_from_config = "amp" not in options
        if not self._amp_from_config:
            _check_common(0, 1.0, 0, options["amp"])

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        self.device = torch.device(device)
        if self._amp_from_config:
            self.options["amp"] = config.amp
        if self.batch_size is None:
            self.batch_size = config.batch_size
        if self.seed is None:
            self.seed = config.seed
        self._sample_gen.manual_seed(int(self.seed) + 1)

    def _batch_seed(self) -> int:
        return (int(self.seed or 0) * 1_000_003 + self.batches) % (2**62)

    def _done(self) -> bool:
        return self.max_batches is not None and self.batches >= self.max_batches

    def sample(self, n: int) -> torch.Tensor:
        """``n`` pooled images on the synthesizer's device.

        Before the first synthesis step the pool is empty; the engine then only probes shapes
        (``sample(2)``), and this returns uniform noise in the valid pixel range instead of failing.
        """
        if len(self.pool) == 0:
            gen = torch.Generator().manual_seed(int(self.seed or 0))
            x01 = torch.rand((n, self.spec.in_channels, self.spec.image_size, self.spec.image_size), generator=gen)
            return self.spec.normalize(x01).to(self.device)
        return self.pool.sample(n, generator=self._sample_gen).to(self.device)

    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict(), "batches": self.batches, "seed": self.seed,
                "batch_size": self.batch_size, "sample_rng": self._sample_gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.batches, self.seed, self.batch_size = int(state["batches"]), state["seed"], state["batch_size"]
        self._sample_gen.set_state(state["sample_rng"])

    def _logs(self, result: InversionResult) -> dict[str, float]:
        last = result.history[-1] if result.history else {}
        logs = {k: float(v) for k, v in last.items() if k not in ("step", "BN_layers")}
        logs.update({f"final_{k}": float(v) for k, v in result.final.items()})
        logs["pool"] = float(len(self.pool))
        return logs



def _check_options(fn: Callable, options: dict, reserved: tuple[str, ...]) -> None:
    allowed = set(inspect.signature(fn).parameters) - set(reserved)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"unknown {fn.__name__} option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


def final_linear_weight(model: nn.Module) -> torch.Tensor:
    """Weight ``(K, D)`` of the last ``nn.Linear`` of ``model`` (the classifier head of dfkd_lib's ResNets).

    Raises:
        ValueError: the model has no ``nn.Linear``.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer: pass the final layer's weight "
                         "(K, D) explicitly")
    return linears[-1].weight
