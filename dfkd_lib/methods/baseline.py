"""The DFKD-FGVC baseline (Shao et al. ICCV 2023, Table 3, first row).

Generator: ``min_G alpha * L_BN - L_KD`` (Eq. 10): images that look like the teacher's training data to its
BN layers and on which the student disagrees with the teacher. Student: ``min_S L_KD`` (Eq. 11 with
beta = gamma = 0). Algorithm 1 alternates ``t = 20`` generator steps with ``k = 15`` student steps.
"""
from __future__ import annotations

from ..losses import kd_loss
from .base import Method, Step


class AdversarialBNDistillation(Method):
    """``alpha * L_BN - L_KD`` for the generator and ``L_KD`` for the student (DFKD-FGVC Eq. 10-11, beta=gamma=0).

    Args:
        alpha: weight of the BN-statistics loss (0.3 in DFKD-FGVC).
        temperature: KD temperature ``T`` (1 in DFKD-FGVC).
        generator_steps, student_steps: ``t`` and ``k`` of Algorithm 1 (20 and 15).
    """

    name = "baseline"
    uses_bn = True

    def __init__(self, alpha: float = 0.3, temperature: float = 1.0, generator_steps: int = 20,
                 student_steps: int = 15):
        super().__init__()
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.alpha, self.temperature = alpha, temperature
        self.generator_steps, self.student_steps = generator_steps, student_steps

    def generator_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        loss = self.alpha * step.bn_loss - kd
        return loss, {"L_BN": step.bn_loss.item(), "L_KD": kd.item()}

    def student_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kd, {"L_KD": kd.item()}
