"""DAFL: Data-Free Learning of Student Networks (Chen, Wang, Xu, Yang, Liu, Shi, Xu, Xu, Tian; ICCV 2019).

The generator is trained on the teacher alone, not against the student (Eq. 6):
``L_G = L_oh + alpha * L_a + beta * L_ie``, with

* ``L_oh``: cross-entropy of the teacher's logits against its own argmax (Eq. 2): images the teacher is sure of;
* ``L_a = -mean |f_T|``: the teacher's penultimate features should be large (Eq. 3; mean over images and units);
* ``L_ie = sum_k p_k log10 p_k`` with ``p`` the batch-mean teacher softmax: the negative information entropy
  (Eq. 4), so that every class is generated about equally often. The base-10 logarithm and the means follow the
  public code (``DAFL_train.py``); ``alpha = 0.1`` and ``beta = 5`` are its CIFAR values.

The student minimises KD at ``T = 1`` on the generated images (Eq. 8). One generator step and one student step
per iteration, as in the public code. Where we differ: the loop, optimisers and schedule are the library's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import kd_loss
from . import register_method
from .base import Method, Step, check_temperature, check_weights


def dafl_generator_terms(teacher_logits: torch.Tensor, teacher_penultimate: torch.Tensor) -> dict[str, torch.Tensor]:
    """The three terms of DAFL's generator loss on one batch: ``L_oh``, ``L_a``, ``L_ie`` (scalars; see the
    module docstring). ``teacher_logits`` is ``(N, K)``, ``teacher_penultimate`` ``(N, D)``."""
    l_oh = F.cross_entropy(teacher_logits, teacher_logits.argmax(1))
    l_a = -teacher_penultimate.abs().mean()
    p = F.softmax(teacher_logits, dim=1).mean(0)
    l_ie = (p * torch.log10(p)).sum()
    return {"L_oh": l_oh, "L_a": l_a, "L_ie": l_ie}


@register_method("dafl",
                 citation='Chen et al., "Data-Free Learning of Student Networks", ICCV 2019')
class DAFL(Method):
    """``L_oh + alpha * L_a + beta * L_ie`` for the generator (teacher only), ``KD`` for the student.

    Args:
        alpha: weight of the activation term (0.1).
        beta: weight of the information-entropy term (5).
        temperature: KD temperature of the student (1).
        generator_steps, student_steps: ``t`` and ``k`` (1 and 1).

    Raises:
        ValueError: a negative weight, ``temperature <= 0``, or a step count below 1.
    """

    name = "dafl"
    uses_bn = False
    synthesis = "a generator trained on the teacher alone (GeneratorSynthesizer)"

    def __init__(self, alpha: float = 0.1, beta: float = 5.0, temperature: float = 1.0, generator_steps: int = 1,
                 student_steps: int = 1):
        super().__init__()
        check_weights(alpha=alpha, beta=beta)
        check_temperature(temperature)
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.set_steps(generator_steps, student_steps)

    def generator_loss(self, step: Step):
        terms = dafl_generator_terms(step.teacher_logits, step.teacher_features.penultimate.float())
        loss = terms["L_oh"] + self.alpha * terms["L_a"] + self.beta * terms["L_ie"]
        return loss, {k: v.item() for k, v in terms.items()}

    def student_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kd, {"L_KD": kd.item()}
