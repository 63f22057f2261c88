"""DFAD: Data-Free Adversarial Distillation (Fang, Song, Wang, Shen, Wang, Song; arXiv:1912.11006, 2019).

The generator maximises and the student minimises the mean absolute error between teacher and student logits
(the paper's MAE discrepancy, Eq. 3-4), with no prior on the images: no BN statistics, no class term. One
generator step per ``k = 5`` student steps, as in its public code (``DFAD_cifar.py``: five student updates per
generator update, ``F.l1_loss`` on the logits). Where we differ: the loop, optimisers and schedule are the
library's (:class:`~dfkd_lib.config.DistillConfig`), not the public code's (SGD 0.1 with step decay).
"""
from __future__ import annotations

import torch.nn.functional as F

from . import register_method
from .base import Method, Step


@register_method("dfad",
                 citation='Fang et al., "Data-Free Adversarial Distillation", arXiv:1912.11006, 2019')
class DFAD(Method):
    """``L_G = -MAE(z_T, z_S)``, ``L_S = MAE(z_T, z_S)`` with ``MAE = mean |z_T - z_S|`` over images and classes.

    Args:
        generator_steps, student_steps: ``t`` (1) and ``k`` (5) per iteration.

    Raises:
        ValueError: ``generator_steps < 1`` or ``student_steps < 1``.
    """

    name = "dfad"
    uses_bn = False

    def __init__(self, generator_steps: int = 1, student_steps: int = 5):
        super().__init__()
        self.set_steps(generator_steps, student_steps)

    @staticmethod
    def discrepancy(step: Step):
        """Mean absolute error of the logits, ``mean |z_T - z_S|`` (a scalar >= 0)."""
        return F.l1_loss(step.student_logits, step.teacher_logits)

    def generator_loss(self, step: Step):
        mae = self.discrepancy(step)
        return -mae, {"L_MAE": mae.item()}

    def student_loss(self, step: Step):
        mae = self.discrepancy(step)
        return mae, {"L_MAE": mae.item()}
