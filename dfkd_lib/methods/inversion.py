"""Distillation on optimised images: the student half of DeepInversion, ADI and ZSKD.

These baselines have no generator loss: the images come from a synthesizer that optimises pixels
(:class:`~dfkd_lib.synthesizers.InversionSynthesizer`, :class:`~dfkd_lib.synthesizers.ZSKDSynthesizer`), and the
student minimises plain KD on them, ``T^2 * KL(p_T || p_S)`` at temperature ``T``
(:func:`~dfkd_lib.losses.kd_loss`; Hinton et al. 2015). Registered names:

``"deepinversion"``
    DeepInversion (Yin et al. CVPR 2020), KD at ``T = 1`` (the library's KD default; the paper's CIFAR-10
    KD temperature is not given).
``"adi"``
    Adaptive DeepInversion (same paper); the student side is the same KD, the competition lives in the
    synthesizer (``alpha_c > 0``).
``"zskd"``
    Zero-shot KD (Nayak et al. ICML 2019), KD at ``T = 20`` as in the paper.

:func:`make_inversion_run` builds a matching ``(synthesizer, method)`` pair for :func:`dfkd_lib.engine.distill`.
"""
from __future__ import annotations

from ..losses import kd_loss
from ..synthesizers import InversionSynthesizer, ZSKDSynthesizer
from . import register_method
from .base import Method, Step

#: ADI's competition weight used when :func:`make_inversion_run` builds an "adi" run without ``alpha_c``.
#: The paper's ImageNet runs use 0.2 with a BN weight of 0.01 (ratio 20); with dfkd_lib's Fashion-MNIST
#: default ``alpha_f = 1`` the same ratio gives 20, and measurements agree: against a student that nearly
#: agrees with the teacher, 0.2 or 2 leave ``1 - JS`` where DI alone puts it (0.977 after 100 steps), 20
#: lowers it to 0.91 while the teacher still classifies every image correctly.
ADI_ALPHA_C = 20.0
#: KD temperature of each kind when :func:`make_inversion_run` is given none (the papers' values, see above).
INVERSION_TEMPERATURE = {"deepinversion": 1.0, "adi": 1.0, "zskd": 20.0}


class KDOnSynthetic(Method):
    """Student loss ``T^2 * KL(p_T || p_S)`` on synthesised images; no generator loss.

    ``uses_bn = False`` (the BN term, if any, is inside the synthesizer's inversion) and
    ``generator_steps = 1`` (one synthesised batch per iteration of the loop).

    Args:
        temperature: KD temperature ``T > 0``.
        student_steps: ``k``, student steps per iteration (each on a batch sampled from the pool).
        name: the registry name shown in logs.

    Raises:
        ValueError: ``temperature <= 0`` or ``student_steps < 1``.
    """

    name = "kd-on-synthetic"
    uses_bn = False
    generator_steps = 1
    synthesis = "optimised pixels, pooled (InversionSynthesizer)"

    def __init__(self, temperature: float = 1.0, student_steps: int = 5, name: str | None = None):
        super().__init__()
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if student_steps < 1:
            raise ValueError(f"student_steps must be >= 1, got {student_steps}")
        self.temperature = float(temperature)
        self.student_steps = int(student_steps)
        if name is not None:
            self.name = name

    def generator_loss(self, step: Step):
        raise NotImplementedError(f"{self.name!r} has no generator loss: its images are optimised by the "
                                  "synthesizer (InversionSynthesizer / ZSKDSynthesizer), not by a generator")

    def student_loss(self, step: Step):
        kd = kd_loss(step.student_logits, step.teacher_logits, self.temperature)
        return kd, {"L_KD": kd.item()}

    def extra_repr(self) -> str:
        return f"T={self.temperature}, " + super().extra_repr()


def _described(method: KDOnSynthetic, bn_prior: bool, synthesis: str | None = None) -> KDOnSynthetic:
    method.bn_prior = bn_prior
    if synthesis is not None:
        method.synthesis = synthesis
    return method


@register_method("deepinversion",
                 citation='Yin et al., "Dreaming to Distill: Data-free Knowledge Transfer via DeepInversion", '
                          'CVPR 2020')
def deepinversion(temperature: float = INVERSION_TEMPERATURE["deepinversion"], student_steps: int = 5) -> KDOnSynthetic:
    """The student side of DeepInversion: :class:`KDOnSynthetic` named ``"deepinversion"``."""
    return _described(KDOnSynthetic(temperature, student_steps, name="deepinversion"), bn_prior=True)


@register_method("adi",
                 citation="Yin et al., \"Dreaming to Distill\" (Adaptive DeepInversion), CVPR 2020")
def adi(temperature: float = INVERSION_TEMPERATURE["adi"], student_steps: int = 5) -> KDOnSynthetic:
    """The student side of Adaptive DeepInversion: :class:`KDOnSynthetic` named ``"adi"``."""
    return _described(KDOnSynthetic(temperature, student_steps, name="adi"), bn_prior=True)


@register_method("zskd",
                 citation="Nayak et al., \"Zero-Shot Knowledge Distillation in Deep Networks\", ICML 2019")
def zskd(temperature: float = INVERSION_TEMPERATURE["zskd"], student_steps: int = 5) -> KDOnSynthetic:
    """The student side of ZSKD: :class:`KDOnSynthetic` at ``T = 20`` named ``"zskd"``."""
    return _described(KDOnSynthetic(temperature, student_steps, name="zskd"), bn_prior=False,
                      synthesis="optimised pixels towards Dirichlet soft targets, pooled (ZSKDSynthesizer)")


def make_inversion_run(kind: str, spec, *, temperature: float | None = None, student_steps: int = 5,
                       **synthesizer_options):
    """A matching ``(synthesizer, method)`` pair for :func:`dfkd_lib.engine.distill`.

    Args:
        kind: ``"deepinversion"`` (alias ``"di"``), ``"adi"`` or ``"zskd"``.
        spec: the teacher's :class:`~dfkd_lib.data.DatasetSpec`.
        temperature: KD temperature (default 1 for DI/ADI, 20 for ZSKD).
        student_steps: ``k``.
        **synthesizer_options: passed to :class:`~dfkd_lib.synthesizers.InversionSynthesizer` (DI, ADI) or
            :class:`~dfkd_lib.synthesizers.ZSKDSynthesizer`; for ``"adi"`` ``alpha_c`` defaults to
            :data:`ADI_ALPHA_C`, for ``"deepinversion"`` it must stay 0.

    Returns:
        ``(synthesizer, method)``.

    Raises:
        KeyError: unknown ``kind``. ValueError: ``alpha_c`` inconsistent with ``kind``.
        TypeError: an unknown synthesizer option.
    """
    kind = {"di": "deepinversion"}.get(kind, kind)
    if kind not in INVERSION_TEMPERATURE:
        raise KeyError(f"unknown inversion method {kind!r}; known: deepinversion (di), adi, zskd")
    temperature = INVERSION_TEMPERATURE[kind] if temperature is None else temperature
    if kind == "deepinversion":
        if synthesizer_options.get("alpha_c", 0.0) != 0.0:
            raise ValueError("DeepInversion has alpha_c = 0; use kind='adi' for the competition term")
        synth = InversionSynthesizer(spec, **synthesizer_options)
        method = deepinversion(temperature, student_steps)
    elif kind == "adi":
        synthesizer_options.setdefault("alpha_c", ADI_ALPHA_C)
        if synthesizer_options["alpha_c"] <= 0:
            raise ValueError(f"ADI needs alpha_c > 0, got {synthesizer_options['alpha_c']}")
        synth = InversionSynthesizer(spec, **synthesizer_options)
        method = adi(temperature, student_steps)
    else:
        synth = ZSKDSynthesizer(spec, **synthesizer_options)
        method = zskd(temperature, student_steps)
    return synth, method
