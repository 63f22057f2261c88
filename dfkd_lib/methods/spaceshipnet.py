"""SpaceshipNet: Data-Free Knowledge Distillation via Feature Exchange and Activation Region Constraint (Yu, Chen,
Wang, Zhang, Ding, Li; CVPR 2023).

Synthesis (:class:`~dfkd_lib.synthesizers.FeatureExchangeSynthesizer`): the generator minimises
``lambda_cls * CE(T(x), y) + lambda_bn * L_BN`` on a noise batch with target classes ``y`` (Eq. 2 with the
supplementary's weights 0.5 and 1); its features of each batch are pooled, and student batches are made from
pooled features after channel-wise feature exchange (CFE: with p = 0.7, half of the channels from another image).

Student (Eq. 3): ``lambda_kl * KL`` at ``tau = 30`` (:func:`~dfkd_lib.losses.kd_loss` scales by ``tau^2 = 900``,
the supplementary's ``lambda_KL``) plus ``lambda_msarc * L_mSARC`` (:func:`~dfkd_lib.losses.msarc_loss`): at the
last stage the CAMs of all classes through each network's final linear layer, at the earlier stages Grad-CAM-style
CAMs for the teacher's predicted class, student against teacher. Teacher and student need stages of equal spatial
sizes (e.g. two CIFAR ResNets).

Where we differ: the student's Grad-CAM weights are constants of each step unless ``second_order=True`` (the
supplementary does not say; the second-order gradient costs about twice a student step on a CPU). The paper optimises the generator for 200 steps per epoch on one noise batch and then runs
2,000 student steps; the defaults here keep that 1:10 ratio (``t = 200``, ``k = 2000``) and a run's schedule
may shorten both. The loop, optimisers and learning rates are the library's (the paper's generator lr starts at
0.1, its student lr at 0.1).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..losses import kd_loss
from ..losses.msarc import fc_cam, grad_weighted_cam, msarc_loss
from ..synthesizers.pixels import final_linear_weight
from . import register_method
from .base import Method, Step, check_temperature, check_weights


@register_method("spaceshipnet",
                 citation='Yu et al., "Data-Free Knowledge Distillation via Feature Exchange and Activation Region '
                          'Constraint", CVPR 2023')
class SpaceshipNet(Method):
    """``lambda_cls * CE + lambda_bn * L_BN`` for the generator; ``KD(tau) + lambda_msarc * L_mSARC`` for the student.

    Args:
        lambda_cls, lambda_bn: generator weights (0.5, 1).
        lambda_msarc: weight of the CAM consistency (1; 0 gives plain KD).
        temperature: ``tau`` of the KD term (30).
        p, fraction: CFE's exchange probability and share of channels (0.7, 0.5).
        second_order: also train through the student's Grad-CAM weights ``alpha`` (a second-order gradient);
            by default they are constants of each step and the gradient flows through the feature maps only.
        generator_steps, student_steps: ``t`` (200) and ``k`` (2000).

    Raises:
        ValueError: a negative weight, ``temperature <= 0``, a step count below 1; at the first student step,
        stages whose CAMs differ in shape.
    """

    name = "spaceshipnet"
    uses_bn = True
    teacher_graph = True     # the teacher's Grad-CAMs in the student loss
    synthesis = "pooled generator features, exchanged channel-wise (FeatureExchangeSynthesizer)"

    def __init__(self, lambda_cls: float = 0.5, lambda_bn: float = 1.0, lambda_msarc: float = 1.0,
                 temperature: float = 30.0, p: float = 0.7, fraction: float = 0.5, second_order: bool = False,
                 generator_steps: int = 200, student_steps: int = 2000):
        super().__init__()
        check_weights(lambda_cls=lambda_cls, lambda_bn=lambda_bn, lambda_msarc=lambda_msarc)
        check_temperature(temperature)
        self.lambda_cls, self.lambda_bn, self.lambda_msarc = lambda_cls, lambda_bn, lambda_msarc
        self.temperature, self.p, self.fraction, self.second_order = temperature, p, fraction, bool(second_order)
        self.set_steps(generator_steps, student_steps)
        self._nets: tuple = ()      # (teacher, student), kept out of the module tree (not trained here)

    def setup(self, teacher: nn.Module, student: nn.Module, example: torch.Tensor) -> None:
        self._nets = (teacher, student)

    def make_synthesizer(self, generator: nn.Module, spec):
        from ..synthesizers import FeatureExchangeSynthesizer

        return FeatureExchangeSynthesizer(generator, spec.num_classes, p=self.p, fraction=self.fraction)

    def generator_loss(self, step: Step):
        ce = F.cross_entropy(step.teacher_logits, step.labels)
        loss = self.lambda_cls * ce + self.lambda_bn * step.bn_loss
        return loss, {"L_cls": ce.item(), "L_BN": step.bn_loss.item()}

    def cams(self, net: nn.Module, logits: torch.Tensor, stages: list[torch.Tensor], classes: torch.Tensor,
             create_graph: bool) -> list[torch.Tensor]:
        """CAMs of ``net`` at every stage: Grad-CAM-style for ``classes`` ``(N,)`` before the last stage, all
        classes through the final linear layer at the last one (see :mod:`dfkd_lib.losses.msarc`)."""
        scores = logits.gather(1, classes[:, None])[:, 0]
        maps = [grad_weighted_cam(f, scores, create_graph) for f in stages[:-1]]
        return maps + [fc_cam(stages[-1], final_linear_weight(net))]

    def student_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits.detach(), self.temperature)
        logs = {"L_KD": kd.item()}
        if self.lambda_msarc == 0:
            return kd, logs
        teacher, student = self._nets
        t_logits, t_feats = step.teacher_logits, step.teacher_features   # with their graph (teacher_graph)
        classes = t_logits.argmax(1)
        with torch.enable_grad():
            t_cams = [c.detach() for c in self.cams(teacher, t_logits, t_feats.stages, classes, False)]
        s_cams = self.cams(student, step.student_logits, step.student_features.stages, classes, self.second_order)
        msarc = msarc_loss(s_cams, t_cams)
        logs["L_mSARC"] = msarc.item()
        return kd + self.lambda_msarc * msarc, logs
