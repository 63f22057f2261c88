"""CMI: Contrastive Model Inversion for Data-Free Knowledge Distillation (Fang, Song, Wang, Shen, Wang, Song;
IJCAI 2021).

Synthesis (:class:`~dfkd_lib.synthesizers.CMISynthesizer`): every iteration a generator with new random weights
and a fresh latent are optimised for ``steps`` steps under the BN-statistics prior, a one-hot class
term, an adversarial term on the images the student already classifies like the teacher, and a contrastive term
that makes each new batch unlike the earlier ones (a memory bank of their embeddings); the best batch joins an
image pool. The student minimises KD on batches drawn from the pool (``k`` steps per iteration).

The loss weights (BN 1, one-hot 1, adversarial 0.5, contrastive 0.8 at temperature 0.1) are in the range of
CMI's CIFAR scripts; the steps per batch (50 instead of 200-500), the KD temperature and the step ratio are ours,
chosen for a CPU. The loop, optimisers and schedule are the library's.
"""
from __future__ import annotations

from torch import nn

from ..losses import kd_loss
from ..utils import fast_mode
from . import register_method
from .base import Method, Step, check_temperature

#: Inversion steps per batch in fast mode (tests), whatever ``steps`` says.
FAST_CMI_STEPS = 2


@register_method("cmi",
                 citation='Fang et al., "Contrastive Model Inversion for Data-Free Knowledge Distillation", '
                          'IJCAI 2021')
class CMI(Method):
    """KD on CMI's image pool; the synthesis options are passed to :class:`~dfkd_lib.synthesizers.CMISynthesizer`.

    Args:
        steps, lr, alpha_bn, alpha_oh, alpha_adv, alpha_cr, cr_temperature, bank_size, head_dim, max_batches:
            the synthesiser's (see there; ``max_batches``: stop synthesising after so many batches and train on
            the fixed pool, ``None``: a batch every iteration).
        temperature: KD temperature of the student (4).
        student_steps: ``k`` (5); one batch is synthesised per iteration (``t = 1``).

    Raises:
        ValueError: ``temperature <= 0``, ``student_steps < 1``; the synthesiser's errors when it is built.
    """

    name = "cmi"
    uses_bn = False          # the BN prior lives in the synthesiser's inversion
    bn_prior = True
    synthesis = "a generator re-initialised per batch, contrastive; pooled (CMISynthesizer)"
    generator_steps = 1

    def __init__(self, steps: int = 50, lr: float = 1e-3, alpha_bn: float = 1.0, alpha_oh: float = 1.0,
                 alpha_adv: float = 0.5, alpha_cr: float = 0.8, cr_temperature: float = 0.1, bank_size: int = 4096,
                 head_dim: int = 128, max_batches: int | None = None, temperature: float = 4.0,
                 student_steps: int = 5):
        super().__init__()
        check_temperature(temperature)
        self.set_steps(1, student_steps)
        self.synthesis_options = dict(steps=steps, lr=lr, alpha_bn=alpha_bn, alpha_oh=alpha_oh, alpha_adv=alpha_adv,
                              alpha_cr=alpha_cr, cr_temperature=cr_temperature, bank_size=bank_size,
                              head_dim=head_dim, max_batches=max_batches)
        self.temperature = float(temperature)

    def make_synthesizer(self, generator: nn.Module, spec):
        from ..synthesizers import CMISynthesizer

        options = dict(self.synthesis_options)
        if fast_mode():
            options["steps"] = min(options["steps"], FAST_CMI_STEPS)
        return CMISynthesizer(generator, spec, **options)

    def generator_loss(self, step: Step):
        raise NotImplementedError("CMI's images are made by CMISynthesizer, which has its own loss")

    def student_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kd, {"L_KD": kd.item()}
