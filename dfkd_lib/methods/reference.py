"""The two reference runs on real training images (:class:`~dfkd_lib.synthesizers.real.RealImages`), not data-free.

``"real-kd"``
    KD from the teacher on real images, ``T^2 * KL(p_T || p_S)`` (Hinton et al. 2015; DFKD-FGVC Eq. 2):
    what the same student reaches with the same loop and number of steps when its images are real.
``"real-labels"``
    Cross-entropy on the true labels; the teacher's outputs are ignored.

Neither has a generator loss (``generator_steps = 0``).
"""
from __future__ import annotations

import torch.nn.functional as F

from . import register_method
from .base import Method, Step
from .inversion import KDOnSynthetic

REAL_IMAGES = "the real training images (RealImages): a reference, not data-free"


@register_method("real-kd",
                 citation="reference, not data-free: KD (Hinton et al., 2015) on the real training images")
def real_kd(temperature: float = 1.0, student_steps: int = 5) -> KDOnSynthetic:
    """KD on real training images: :class:`~dfkd_lib.methods.inversion.KDOnSynthetic`'s loss, ``t = 0``."""
    method = KDOnSynthetic(temperature, student_steps, name="real-kd")
    method.generator_steps, method.bn_prior, method.synthesis = 0, False, REAL_IMAGES
    return method


@register_method("real-labels",
                 citation="reference, not data-free: cross-entropy on the real training labels")
class LabelsOnly(Method):
    """Cross-entropy of the student on the batch's true labels (``Step.labels``, ``(N,)`` class indices).

    Args:
        student_steps: ``k`` (>= 1).

    Raises:
        ValueError: ``student_steps < 1``; a step without labels (a data-free source).
    """

    name = "real-labels"
    uses_bn = False
    generator_steps = 0
    synthesis = REAL_IMAGES

    def __init__(self, student_steps: int = 5):
        super().__init__()
        if student_steps < 1:
            raise ValueError(f"student_steps must be >= 1, got {student_steps}")
        self.student_steps = int(student_steps)

    def generator_loss(self, step: Step):
        raise NotImplementedError("real-labels trains on real images and has no generator loss")

    def student_loss(self, step: Step):
        if step.labels is None:
            raise ValueError("real-labels needs labelled batches: use the RealImages synthesiser")
        ce = F.cross_entropy(step.student_logits, step.labels)
        return ce, {"L_CE": ce.item()}
