"""ZSKT: Zero-shot Knowledge Transfer via Adversarial Belief Matching (Micaelli & Storkey, NeurIPS 2019).

The generator maximises ``KL(p_T || p_S)`` (Eq. 1): images on which the student does not yet believe what the
teacher believes. The student minimises the same KL plus attention transfer at the residual stages, ``beta *
sum_l mean((f(A_S^l) - f(A_T^l))^2)`` (Eq. 2, :func:`~dfkd_lib.losses.at.attention_transfer_loss`), with
``beta = 250`` and ``n_g = 1`` generator step per ``n_s = 10`` student steps, as in the paper and its public code.
Where we differ: the loop, optimisers and schedule are the library's; no BN prior, as in the paper.
"""
from __future__ import annotations

from ..losses import kd_loss
from ..losses.at import attention_transfer_loss
from . import register_method
from .base import Method, Step, check_temperature, check_weights


@register_method("zskt",
                 citation='Micaelli & Storkey, "Zero-shot Knowledge Transfer via Adversarial Belief Matching", '
                          'NeurIPS 2019')
class ZSKT(Method):
    """``-KL`` for the generator; ``KL + beta * AT`` over the paired stages for the student (T = 1).

    Args:
        beta: weight of attention transfer (250; 0 gives plain adversarial KL).
        temperature: softmax temperature of the KL (1).
        generator_steps, student_steps: ``n_g`` (1) and ``n_s`` (10).

    Raises:
        ValueError: ``beta < 0``, ``temperature <= 0`` or a step count below 1; at the first student step, a
        teacher and student whose stages differ in number or spatial size.
    """

    name = "zskt"
    uses_bn = False

    def __init__(self, beta: float = 250.0, temperature: float = 1.0, generator_steps: int = 1,
                 student_steps: int = 10):
        super().__init__()
        check_weights(beta=beta)
        check_temperature(temperature)
        self.beta, self.temperature = beta, temperature
        self.set_steps(generator_steps, student_steps)

    def generator_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return -kl, {"L_KL": kl.item()}

    def student_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        loss, logs = kl, {"L_KL": kl.item()}
        if self.beta > 0:
            at = attention_transfer_loss(step.student_features.stages, step.teacher_features.stages)
            loss = loss + self.beta * at
            logs["L_AT"] = at.item()
        return loss, logs
