"""What every source of the student's images implements (:class:`Synthesizer`)."""
from __future__ import annotations

import torch
from torch import nn

from ..config import DistillConfig


class Synthesizer:
    """Where the student's images come from. ``synthesis_step`` improves the source (one generator update,
    or one optimised batch; ``method`` is the run's :class:`~dfkd_lib.methods.Method`, whose generator loss
    it may use), ``sample`` draws a detached batch for a student step."""

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        """Create optimisers; called once by the engine."""

    def synthesis_step(self, teacher: nn.Module, student: nn.Module, method: nn.Module, config: DistillConfig
                       ) -> dict[str, float]:
        raise NotImplementedError

    def sample(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def networks(self) -> list[nn.Module]:
        """The networks its steps call, for :func:`~dfkd_lib.engine.compile_networks` (none by default)."""
        return []

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass
