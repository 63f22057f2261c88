"""A generator with a momentum (EMA) copy whose samples are mixed into the student's batches: MAD's synthesiser."""
from __future__ import annotations

import copy

import torch
from torch import nn

from .generator import GeneratorSynthesizer


class MomentumGeneratorSynthesizer(GeneratorSynthesizer):
    """:class:`GeneratorSynthesizer` plus an exponential moving average ``G_ema`` of the generator's weights.

    After every generator update ``theta_ema <- momentum * theta_ema + (1 - momentum) * theta`` (parameters;
    buffers such as BN running statistics are copied). :meth:`sample` draws ``round(n * ema_fraction)`` of each
    student batch from ``G_ema`` and the rest as :class:`GeneratorSynthesizer` does (memory bank and fresh
    samples), so the student keeps seeing images of the generator's recent past while the adversarial generator
    moves on (Momentum Adversarial Distillation, Do et al. NeurIPS 2022, Sec. 3).

    Args:
        generator: as for :class:`GeneratorSynthesizer`.
        momentum: EMA decay in ``[0, 1)``; 0 makes ``G_ema`` a copy of the current generator.
        ema_fraction: share of each student batch drawn from ``G_ema``, in ``[0, 1]``.

    Raises:
        ValueError: ``momentum`` outside ``[0, 1)`` or ``ema_fraction`` outside ``[0, 1]``.
    """

    def __init__(self, generator: nn.Module, momentum: float = 0.9, ema_fraction: float = 0.5):
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if not 0 <= ema_fraction <= 1:
            raise ValueError(f"ema_fraction must lie in [0, 1], got {ema_fraction}")
        super().__init__(generator)
        self.momentum, self.ema_fraction = float(momentum), float(ema_fraction)
        self.ema = copy.deepcopy(generator).requires_grad_(False).eval()

    def setup(self, config, device) -> None:
        super().setup(config, device)
        self.ema.to(device)
        if config.channels_last:
            self.ema.to(memory_format=torch.channels_last)

    @torch.no_grad()
    def update_ema(self) -> None:
        """One EMA step of ``G_ema`` towards the current generator (see the class docstring)."""
        for e, p in zip(self.ema.parameters(), self.generator.parameters()):
            e.mul_(self.momentum).add_(p.detach(), alpha=1 - self.momentum)
        for e, b in zip(self.ema.buffers(), self.generator.buffers()):
            e.copy_(b)

    def synthesis_step(self, teacher, student, method, config):
        logs = super().synthesis_step(teacher, student, method, config)
        self.update_ema()
        return logs

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        from_ema = round(n * self.ema_fraction)
        parts = [super().sample(n - from_ema)] if n - from_ema > 0 else []
        if from_ema:
            parts.append(self.ema(self.ema.sample_z(from_ema, self.device)))
        return parts[0] if len(parts) == 1 else torch.cat(parts)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "ema": self.ema.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.ema.load_state_dict(state["ema"])
