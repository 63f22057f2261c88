"""Loss functions of data-free distillation, one concept per module (pure functions of tensors)."""
from .kd import kd_loss

__all__ = ["kd_loss"]
