"""DFKD-FGVC (Shao et al., "Data-free knowledge distillation for fine-grained visual categorization", ICCV 2023).

Adversarial distillation with a BN prior (the baseline, :class:`~dfkd_lib.methods.baseline.
AdversarialBNDistillation`) plus two student terms (Sec. 4.4)::

    generator:  min_G  alpha * L_BN - L_KD                                   (Eq. 10)
    student:    min_S  L_KD + beta * L_MHAD + gamma * L_SFCL                 (Eq. 11)

* ``L_MHAD`` (Sec. 4.2, Eq. 7, :func:`~dfkd_lib.losses.mhad.mhad_loss`): teacher and student features of each
  tapped stage pass through one mixed high-order attention module per stage
  (:class:`~dfkd_lib.models.attention.MixedHighOrderAttention`, order ``R``), shared by both sides and trained
  with the student; a 1x1 :class:`~dfkd_lib.models.attention.Adapter` lifts the student's channels to the
  teacher's where they differ.
* ``L_SFCL`` (Sec. 4.3, Eq. 8-9, :func:`~dfkd_lib.losses.sfcl.sfcl_loss`): the penultimate features of both go
  through one shared :class:`~dfkd_lib.losses.sfcl.Projector`, then NT-Xent at temperature ``tau``.

The attention generator (Sec. 4.1) is a synthesiser choice, not part of the losses: pair this method with
:class:`~dfkd_lib.models.attention_generator.AttentionGenerator` in a
:class:`~dfkd_lib.engine.GeneratorSynthesizer`. With ``beta = gamma = 0`` this method *is* the baseline
(Table 3, first row): same losses, no extra module, no extra random draw.
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..losses.mhad import mhad_loss
from ..losses.sfcl import Projector, sfcl_loss
from ..models.attention import Adapter, MixedHighOrderAttention
from . import register_method
from .base import Step
from .baseline import AdversarialBNDistillation

FEATURE_LEVELS = ("stages", "penultimate")


@register_method("dfkd-fgvc",
                 citation='Shao et al., "Data-free Knowledge Distillation for Fine-grained Visual Categorization", '
                          'ICCV 2023')
class DFKDFGVC(AdversarialBNDistillation):
    """DFKD-FGVC losses: Eq. 10 for the generator, Eq. 11 for the student.

    Args:
        alpha: weight of ``L_BN`` in the generator loss (0.3).
        beta: weight of ``L_MHAD`` (10, Fig. 7a); 0 switches MHAD off.
        gamma: weight of ``L_SFCL`` (8, Fig. 7b); 0 switches SFCL off.
        order: ``R`` of the MHA modules (3, "mixed 3-order", Table 5).
        tau: SFCL temperature (0.07; not given by the paper).
        temperature: KD temperature ``T`` (1).
        generator_steps, student_steps: ``t`` and ``k`` of Algorithm 1 (20 and 15).
        stages: indices into ``Features.stages`` of the tapped stages, ``None`` (default) for every stage of
            the teacher: the four ResNet stages, as the paper applies MHA "at each block" (Fig. 1, Sec. 4.2).
            Negative indices count from the end (``(-3, -2, -1)``: the last three).
        feature_level: ``"stages"`` (default, Sec. 4.2) or ``"penultimate"`` (Sec. 5.2, heterogeneous
            students: MHAD on the pooled vectors seen as ``(N, D, 1, 1)`` maps).
        normalize: MHAD compares per-sample L2-normalised attended features (default; the guard against the
            MHA module shrinking both sides to 0, see :mod:`dfkd_lib.losses.mhad`), or the plain MSE of Eq. 7.
        train_mha: train the MHA modules with the student (default), or freeze them at their random
            initialisation (removes the MHA module's own shortcut entirely; an ablation).
        proj_hidden: hidden width of the SFCL projector (default: the teacher's penultimate width ``D_t``).
        proj_dim: output width of the projector (128, as in SimCLR; the paper does not give it).
        adapter_hidden: hidden width of the penultimate MLP adapter (default ``D_t``).

    Modules built by :meth:`setup` (trained with the student by the engine): ``mha`` (one per tapped stage),
    ``adapters`` (1x1 conv where student and teacher channels differ, identity elsewhere), ``pen_adapter``
    (MLP ``D_s -> D_t`` with two hidden layers, only when the penultimate widths differ and a term uses it),
    ``projector`` (when ``gamma > 0``). Nothing is built for a term whose weight is 0.

    Raises:
        ValueError: negative weights, ``tau <= 0``, ``order < 1``, an unknown ``feature_level``; in
            :meth:`setup`, tapped stages that the student lacks or whose spatial sizes differ.
        RuntimeError: a student loss with ``beta`` or ``gamma > 0`` before :meth:`setup`.
    """

    name = "dfkd-fgvc"

    def __init__(self, alpha: float = 0.3, beta: float = 10.0, gamma: float = 8.0, order: int = 3,
                 tau: float = 0.07, temperature: float = 1.0, generator_steps: int = 20, student_steps: int = 15,
                 stages: Sequence[int] | None = None, feature_level: str = "stages", normalize: bool = True,
                 train_mha: bool = True, proj_hidden: int | None = None, proj_dim: int = 128,
                 adapter_hidden: int | None = None):
        super().__init__(alpha=alpha, temperature=temperature, generator_steps=generator_steps,
                         student_steps=student_steps)
        if beta < 0 or gamma < 0:
            raise ValueError(f"beta and gamma must be >= 0, got {beta}, {gamma}")
        if not tau > 0:
            raise ValueError(f"tau must be > 0, got {tau}")
        if order < 1:
            raise ValueError(f"order R must be >= 1, got {order}")
        if feature_level not in FEATURE_LEVELS:
            raise ValueError(f"feature_level must be one of {FEATURE_LEVELS}, got {feature_level!r}")
        self.beta, self.gamma, self.order, self.tau = float(beta), float(gamma), order, float(tau)
        self.stages = tuple(stages) if stages is not None else None
        self.feature_level, self.normalize, self.train_mha = feature_level, normalize, train_mha
        self.proj_hidden, self.proj_dim, self.adapter_hidden = proj_hidden, proj_dim, adapter_hidden
        self.mha: nn.ModuleList | None = None
        self.adapters: nn.ModuleList | None = None
        self.pen_adapter: nn.Module | None = None
        self.projector: nn.Module | None = None
        self.stage_indices: tuple[int, ...] = ()
        self._ready = False

    # ------------------------------------------------------------------------------------------------ setup
    def setup(self, teacher: nn.Module, student: nn.Module, example: torch.Tensor) -> None:
        """Build the MHA modules, adapters and projector from the shapes of both networks' features on
        ``example`` (``(N, C, H, W)``, a forward in eval mode without gradients; modes are restored)."""
        self._ready = True
        use_mhad, use_sfcl = self.beta > 0, self.gamma > 0
        if not (use_mhad or use_sfcl):
            return
        t_feats, s_feats = _probe(teacher, example), _probe(student, example)
        d_t, d_s = t_feats.penultimate.shape[1], s_feats.penultimate.shape[1]
        needs_pen = use_sfcl or (use_mhad and self.feature_level == "penultimate")
        if needs_pen and d_s != d_t:
            self.pen_adapter = Adapter(d_s, d_t, penultimate=True, hidden=self.adapter_hidden)
        if use_mhad and self.feature_level == "stages":
            self.stage_indices = self._resolve_stages(t_feats, s_feats)
            self.mha = nn.ModuleList(MixedHighOrderAttention(t_feats.stages[i].shape[1], self.order)
                                     for i in self.stage_indices)
            self.adapters = nn.ModuleList(
                Adapter(s_feats.stages[i].shape[1], t_feats.stages[i].shape[1])
                if s_feats.stages[i].shape[1] != t_feats.stages[i].shape[1] else nn.Identity()
                for i in self.stage_indices)
        elif use_mhad:
            self.mha = nn.ModuleList([MixedHighOrderAttention(d_t, self.order)])
        if self.mha is not None and not self.train_mha:
            self.mha.requires_grad_(False)
        if use_sfcl:
            self.projector = Projector(d_t, self.proj_hidden or d_t, self.proj_dim)

    def _resolve_stages(self, t_feats, s_feats) -> tuple[int, ...]:
        n_t, n_s = len(t_feats.stages), len(s_feats.stages)
        wanted = self.stages if self.stages is not None else tuple(range(n_t))
        resolved = []
        for i in wanted:
            if not (-n_t <= i < n_t and -n_s <= i < n_s):
                raise ValueError(f"stage {i} is not a stage of both networks (teacher has {n_t}, student {n_s}); "
                                 "choose stages= both have, or feature_level='penultimate' (Sec. 5.2)")
            j = i % n_t
            if i % n_s != j:
                raise ValueError(f"stage {i} means stage {j} of the teacher but {i % n_s} of the student; use "
                                 "non-negative stage indices")
            t_map, s_map = t_feats.stages[j], s_feats.stages[j]
            if t_map.shape[2:] != s_map.shape[2:]:
                raise ValueError(f"stage {j}: teacher map {tuple(t_map.shape[1:])} and student map "
                                 f"{tuple(s_map.shape[1:])} differ in spatial size; choose other stages= or "
                                 "feature_level='penultimate' (Sec. 5.2)")
            resolved.append(j)
        if not resolved:
            raise ValueError("stages= selects no stage")
        return tuple(resolved)

    # ------------------------------------------------------------------------------------------------ losses
    def _student_penultimate(self, step: Step) -> torch.Tensor:
        s = step.student_features.penultimate.float()
        return self.pen_adapter(s) if self.pen_adapter is not None else s

    def mhad(self, step: Step) -> torch.Tensor:
        """``L_MHAD`` on the step's features (Eq. 7), a scalar."""
        if self.feature_level == "penultimate":
            t = step.teacher_features.penultimate.float()[:, :, None, None]
            s = self._student_penultimate(step)[:, :, None, None]
            return mhad_loss([s], [t], self.mha, None, self.normalize)
        t = [step.teacher_features.stages[i].float() for i in self.stage_indices]
        s = [step.student_features.stages[i].float() for i in self.stage_indices]
        return mhad_loss(s, t, self.mha, self.adapters, self.normalize)

    def sfcl(self, step: Step) -> torch.Tensor:
        """``L_SFCL`` on the step's penultimate features (Eq. 9), a scalar."""
        z_t = self.projector(step.teacher_features.penultimate.float())
        z_s = self.projector(self._student_penultimate(step))
        return sfcl_loss(z_t, z_s, self.tau)

    def student_loss(self, step: Step):
        """``L_KD + beta * L_MHAD + gamma * L_SFCL`` (Eq. 11); a term with weight 0 is not computed."""
        loss, logs = super().student_loss(step)
        if (self.beta > 0 or self.gamma > 0) and not self._ready:
            raise RuntimeError("DFKDFGVC.setup(teacher, student, example) must run before the student loss "
                               "(the engine calls it)")
        if self.beta > 0:
            mhad = self.mhad(step)
            loss = loss + self.beta * mhad
            logs["L_MHAD"] = mhad.item()
        if self.gamma > 0:
            sfcl = self.sfcl(step)
            loss = loss + self.gamma * sfcl
            logs["L_SFCL"] = sfcl.item()
        return loss, logs

    def extra_repr(self) -> str:
        return (f"alpha={self.alpha}, beta={self.beta}, gamma={self.gamma}, R={self.order}, tau={self.tau}, "
                f"feature_level={self.feature_level!r}, stages={self.stages}, normalize={self.normalize}, "
                + super().extra_repr())


@torch.no_grad()
def _probe(model: nn.Module, example: torch.Tensor):
    """``Features`` of ``model`` on ``example`` in eval mode (no BN statistics change), mode restored."""
    was_training = model.training
    model.eval()
    try:
        _, feats = model(example, return_features=True)
    finally:
        model.train(was_training)
    return feats


__all__ = ["DFKDFGVC", "FEATURE_LEVELS"]
