"""The shape every DFKD method shares: two losses and a schedule, never a loop of its own.

A :class:`Method` says what the synthesiser (generator) minimises and what the student minimises, given a
:class:`Step` that the engine (:mod:`dfkd_lib.engine`) fills with the synthetic batch and the outputs of the
teacher and the student on it. Trainable helpers of a method (MHA modules, projectors, adapters) are
sub-modules of the ``Method`` and are trained with the student.
"""
from __future__ import annotations

import torch
from torch import nn

from ..step import Step


def check_weights(**weights: float) -> None:
    """``ValueError`` unless every named loss weight is ``>= 0`` (the message names them all)."""
    if any(v < 0 for v in weights.values()):
        raise ValueError(f"{' and '.join(weights)} must be >= 0, got {', '.join(str(v) for v in weights.values())}")


def check_temperature(temperature: float) -> None:
    """``ValueError`` unless the softmax temperature is ``> 0``."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")


class Method(nn.Module):
    """Base class of a DFKD method: the losses of Algorithm 1's two stages and its step counts.

    Subclasses set :attr:`name`, :attr:`uses_bn`, :attr:`generator_steps` (``t``) and :attr:`student_steps`
    (``k``), and implement :meth:`generator_loss` and :meth:`student_loss`. They may override :meth:`setup`
    to build modules that depend on the teacher and the student (called once by the engine before any
    optimiser is created).
    """

    name = "method"
    uses_bn = False
    generator_steps = 1
    student_steps = 5
    #: How the student's images are made, in words (for tables such as :func:`dfkd_lib.methods.describe_methods`).
    synthesis = "an adversarial generator (GeneratorSynthesizer)"
    #: Whether the images are shaped by the teacher's BN statistics (``None``: the same as :attr:`uses_bn`).
    bn_prior: bool | None = None
    #: Whether the student loss needs the teacher's autograd graph (gradients within the frozen teacher, e.g. its
    #: Grad-CAMs); then :func:`~dfkd_lib.step.forward_step` records it in student steps too.
    teacher_graph = False

    def setup(self, teacher: nn.Module, student: nn.Module, example: torch.Tensor) -> None:
        """Build teacher/student-dependent modules; ``example`` is one synthetic batch ``(N, C, H, W)``."""

    def set_steps(self, generator_steps: int, student_steps: int) -> None:
        """Set ``t`` and ``k`` (``ValueError`` when one is below 1)."""
        if generator_steps < 1 or student_steps < 1:
            raise ValueError(f"generator_steps and student_steps must be >= 1, got {generator_steps}, {student_steps}")
        self.generator_steps, self.student_steps = int(generator_steps), int(student_steps)

    def make_synthesizer(self, generator: nn.Module, spec):
        """The synthesiser that trains ``generator`` for this method in a run built by name
        (:func:`~dfkd_lib.experiment.run_distillation`), for the teacher's data set ``spec``:
        :class:`~dfkd_lib.synthesizers.GeneratorSynthesizer` unless a method needs another (MAD: a momentum copy;
        CMI: a generator re-initialised per batch)."""
        from ..synthesizers import GeneratorSynthesizer

        return GeneratorSynthesizer(generator)

    def networks(self) -> list[nn.Module]:
        """This method's own modules that its losses call (its children, the members of a ``ModuleList`` or
        ``ModuleDict`` one by one), for :func:`~dfkd_lib.engine.compile_networks`."""
        out = []
        for child in self.children():
            out.extend(child.values() if isinstance(child, nn.ModuleDict) else
                       child if isinstance(child, nn.ModuleList) else [child])
        return out

    def generator_loss(self, step: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss the generator minimises, and named float terms for logging."""
        raise NotImplementedError

    def student_loss(self, step: Step) -> tuple[torch.Tensor, dict[str, float]]:
        """Scalar loss the student (and this method's own modules) minimise, and named float terms."""
        raise NotImplementedError

    def extra_repr(self) -> str:
        return f"t={self.generator_steps}, k={self.student_steps}, uses_bn={self.uses_bn}"
