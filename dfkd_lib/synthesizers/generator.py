"""A generator trained adversarially against the student: the synthesiser of DFAD, DAFL, DFKD-FGVC and kin."""
from __future__ import annotations

import contextlib

import torch
from torch import nn

from ..config import DistillConfig
from ..hooks import BNStatistics
from ..step import check_finite, forward_step
from ..utils import autocast
from .base import Synthesizer
from .pixels import frozen
from .pool import ImagePool


class GeneratorSynthesizer(Synthesizer):
    """A generator ``G(z)`` trained adversarially by the method's generator loss (Algorithm 1, lines 2-9).

    With ``config.pool_size > 0`` every batch a generator step makes is also kept in a memory bank
    (:class:`~dfkd_lib.synthesizers.pool.ImagePool`), and :meth:`sample` draws ``config.pool_fraction`` of each student
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
        self.sampling = "eval"
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
        self.sampling = config.generator_sampling
        self._pool_gen.manual_seed(config.seed + 1)

    def synthesis_step(self, teacher, student, method, config):
        x, logs = self.update(self.generator.sample_z(config.batch_size, self.device), teacher, student, method,
                              config)
        if self.pool is not None:
            self.pool.add(x.detach())
        return logs

    def update(self, z: torch.Tensor, teacher, student, method, config,
               labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
        """One Adam step of the generator (train mode) on ``x = G(z)`` under ``method.generator_loss``, the
        student frozen meanwhile; ``labels`` ``(N,)`` are the target classes of ``z`` where the method uses them.
        Returns ``x`` ``(N, C, H, W)`` (still attached to the graph) and the logged terms.

        Raises:
            NonFiniteLossError: the generator loss became NaN or infinite (no step is taken)."""
        self.generator.train()
        student.requires_grad_(False)
        try:
            x = self.generator(z)
            step = forward_step(teacher, student, x, method, "generator", config.amp, labels=labels)
            loss, logs = method.generator_loss(step)
            check_finite(loss, "generator")
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
        finally:
            student.requires_grad_(True)
        return x, logs

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        """``n`` images: ``round(n * pool_fraction)`` from the bank (once it holds images), the rest fresh."""
        from_pool = round(n * self.pool_fraction) if self.pool is not None and len(self.pool) else 0
        parts = [self.pool.sample(from_pool, generator=self._pool_gen)] if from_pool else []
        if n - from_pool > 0:
            with self.sampling_mode():
                parts.append(self.generator(self.generator.sample_z(n - from_pool, self.device)))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    @contextlib.contextmanager
    def sampling_mode(self):
        """The generator in the mode of :attr:`sampling` (``config.generator_sampling``), restored on exit."""
        was_training = self.generator.training
        self.generator.train(self.sampling == "train")
        try:
            yield self.generator
        finally:
            self.generator.train(was_training)

    def networks(self) -> list[nn.Module]:
        return [self.generator]

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


def train_generator_bn(generator: nn.Module, teacher: nn.Module, steps: int, batch_size: int = 32,
                       lr: float | None = None, betas: tuple[float, float] | None = None,
                       noise: torch.Generator | None = None, amp: str | None = None) -> list[float]:
    """Fit a generator to the teacher's BN statistics alone (DFKD-FGVC Eq. 3; no student, no adversary).

    ``steps`` Adam steps, each on ``G(z)`` for a fresh ``z ~ N(0, I)`` of ``(batch_size, generator.nz)`` drawn on
    the CPU from ``noise`` (default: torch's global generator) and moved to the generator's device. The teacher is
    frozen in eval mode meanwhile (its BN running statistics are the target) and given back as it was.

    Args:
        lr, betas: Adam's; default the generator optimiser of :class:`~dfkd_lib.config.DistillConfig`.
        amp: ``"bf16"`` or ``None`` (fp32) for the teacher's forward.

    Returns:
        The BN loss of each step (floats); the generator is left in eval mode.

    Raises:
        NoBatchNormError: a teacher without BatchNorm. NonFiniteLossError: the loss became NaN/inf.
    """
    defaults = DistillConfig()
    device = next(generator.parameters()).device
    opt = torch.optim.Adam(generator.parameters(), lr=defaults.lr_generator if lr is None else lr,
                           betas=defaults.betas if betas is None else betas)
    generator.train()
    losses = []
    with frozen(teacher):
        for _ in range(steps):
            x = generator(torch.randn(batch_size, generator.nz, generator=noise).to(device))
            with autocast(device, amp), BNStatistics(teacher) as bn:
                teacher(x)
            loss = bn.loss()
            check_finite(loss, "generator")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.item())
    generator.eval()
    return losses
