"""MAD: Momentum Adversarial Distillation (Do, Le, Nguyen, Nguyen, Gupta, Rana, Venkatesh; NeurIPS 2022).

An adversarial generator moves on quickly, and a student trained only on its latest images forgets what the
earlier ones taught (the distribution-shift problem MAD names). MAD keeps an exponential moving average of the
generator's weights and trains the student on images of both: here
:class:`~dfkd_lib.synthesizers.MomentumGeneratorSynthesizer` (``momentum``, ``ema_fraction`` of each student
batch from the EMA copy).

Losses: the generator minimises ``-KL(p_T || p_S) + alpha * L_BN`` (adversarial, with the teacher's
BN-statistics prior, as the prior-based methods of DFKD-FGVC's Table 1), the student minimises ``KL`` at
``T = 1``. No public code exists; the weights, the step ratio (one generator step per five student steps),
``momentum = 0.9`` and the even split of student batches are ours. The loop, optimisers and schedule are the
library's.
"""
from __future__ import annotations

from torch import nn

from ..losses import kd_loss
from . import register_method
from .base import Method, Step, check_temperature, check_weights


@register_method("mad",
                 citation='Do et al., "Momentum Adversarial Distillation: Handling Large Distribution Shifts in '
                          'Data-Free Knowledge Distillation", NeurIPS 2022')
class MAD(Method):
    """``-KL + alpha * L_BN`` for the generator, ``KL`` for the student on images of the generator and of its EMA.

    Args:
        alpha: weight of the BN-statistics prior (1).
        momentum: EMA decay of the generator copy, in ``[0, 1)`` (0.9).
        ema_fraction: share of each student batch drawn from the EMA copy, in ``[0, 1]`` (0.5).
        temperature: softmax temperature of the KL (1).
        generator_steps, student_steps: ``t`` (1) and ``k`` (5) per iteration.

    Raises:
        ValueError: ``alpha < 0``, ``temperature <= 0``, a step count below 1, or ``momentum`` /
        ``ema_fraction`` out of range.
    """

    name = "mad"
    uses_bn = True
    synthesis = "an adversarial generator and its EMA copy (MomentumGeneratorSynthesizer)"

    def __init__(self, alpha: float = 1.0, momentum: float = 0.9, ema_fraction: float = 0.5,
                 temperature: float = 1.0, generator_steps: int = 1, student_steps: int = 5):
        super().__init__()
        check_weights(alpha=alpha)
        if not 0 <= momentum < 1 or not 0 <= ema_fraction <= 1:
            raise ValueError(f"momentum must lie in [0, 1) and ema_fraction in [0, 1], got {momentum}, {ema_fraction}")
        check_temperature(temperature)
        self.alpha, self.momentum, self.ema_fraction, self.temperature = alpha, momentum, ema_fraction, temperature
        self.set_steps(generator_steps, student_steps)

    def make_synthesizer(self, generator: nn.Module, spec):
        from ..synthesizers import MomentumGeneratorSynthesizer

        return MomentumGeneratorSynthesizer(generator, self.momentum, self.ema_fraction)

    def generator_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return -kl + self.alpha * step.bn_loss, {"L_KL": kl.item(), "L_BN": step.bn_loss.item()}

    def student_loss(self, step: Step):
        kl = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kl, {"L_KL": kl.item()}
