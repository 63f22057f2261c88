"""What every source of the student's images implements (:class:`Synthesizer`)."""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..config import DistillConfig

if TYPE_CHECKING:
    from ..methods.base import Method


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
