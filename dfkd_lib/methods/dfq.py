"""DFQ: Data-free network quantization with adversarial knowledge distillation (Choi, Choi, El-Khamy, Lee;
CVPR Workshops 2020), here as a distillation method (full-precision student, as in DFKD-FGVC's Table 1).

The generator is adversarial, as in DFAD and ZSKT, and carries three priors from the teacher:

* ``-KL(p_T || p_S)``: images on which the student does not yet agree with the teacher;
* ``L_BN``: the teacher's BN-statistics distance (:class:`~dfkd_lib.hooks.BNStatistics`), images whose
  statistics match the teacher's training data;
* ``L_oh = mean_i H(p_T(x_i))``: the instance categorical entropy, low when the teacher is sure of each image
  (the one-hot prior);
* ``L_bal = -H(mean_i p_T(x_i))``: minus the batch categorical entropy, low when the batch covers the classes
  evenly (the balance prior);

``L_G = -KL + alpha * L_BN + beta * (L_oh + L_bal)``; entropies in nats. The student minimises ``KL`` at
``T = 1``. Where we differ: the paper tunes the weights per task and quantises the student; the defaults here
(``alpha = 1``, ``beta = 1``, one generator step per five student steps) are ours, and the loop, optimisers and
schedule are the library's.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..losses import kd_loss
from . import register_method
from .base import Method, Step, check_temperature, check_weights


def dfq_entropy_terms(teacher_logits: torch.Tensor) -> dict[str, torch.Tensor]:
    """DFQ's two categorical-entropy priors on a batch of teacher logits ``(N, K)`` (scalars, nats).

    Returns:
        ``{"L_oh": mean_i H(p_i), "L_bal": -H(mean_i p_i)}`` with ``p_i = softmax(teacher_logits[i])``;
        ``L_oh`` lies in ``[0, log K]``, ``L_bal`` in ``[-log K, 0]``.
    """
    log_p = F.log_softmax(teacher_logits, dim=1)
    p = log_p.exp()
    instance = -(p * log_p).sum(1).mean()
    mean_p = p.mean(0)
    batch = -(mean_p * torch.log(mean_p.clamp_min(1e-12))).sum()
    return {"L_oh": instance, "L_bal": -batch}


@register_method("dfq",
                 citation='Choi et al., "Data-Free Network Quantization With Adversarial Knowledge '
                          'Distillation", CVPR Workshops 2020')
class DFQ(Method):
    """``-KL + alpha * L_BN + beta * (L_oh + L_bal)`` for the generator, ``KL`` for the student.

    Args:
        alpha: weight of the BN-statistics prior (1).
        beta: weight of the two entropy priors (1).
        temperature: softmax temperature of the KL (1).
        generator_steps, student_steps: ``t`` (1) and ``k`` (5) per iteration.

    Raises:
        ValueError: a negative weight, ``temperature <= 0`` or a step count below 1.
    """

    name = "dfq"
    uses_bn = True

    def __init__(self, alpha: float = 1.0, beta: float = 1.0, temperature: float = 1.0, generator_steps: int = 1,
                 student_steps: int = 5):
        super().__init__()
        check_weights(alpha=alpha, beta=beta)
        check_temperature(temperature)
        self.alpha, self.beta, self.temperature = alpha, beta, temperature
        self.set_steps(generator_steps, student_steps)

    def generator_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        terms = dfq_entropy_terms(step.teacher_logits.float())
        loss = -kl + self.alpha * step.bn_loss + self.beta * (terms["L_oh"] + terms["L_bal"])
        return loss, {"L_KL": kl.item(), "L_BN": step.bn_loss.item(), **{k: v.item() for k, v in terms.items()}}

    def student_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kl, {"L_KL": kl.item()}
