"""DeepInversion and Adaptive DeepInversion: a batch of pixels optimised against a frozen teacher.

DeepInversion (DI; Yin et al. CVPR 2020, Sec. 3.2: ``R_DI = R_prior + alpha_f * R_feature``)
    ``min_x CE(T(x), y) + alpha_tv * R_TV(x) + alpha_l2 * R_l2(x) + alpha_f * R_feature(x)`` for chosen
    classes ``y``, where ``R_feature`` is the BN-statistics distance (:class:`~dfkd_lib.hooks.BNStatistics`)
    and ``R_TV``, ``R_l2`` the image priors (:mod:`dfkd_lib.losses.priors`). Every step the batch is randomly
    jittered (``torch.roll``) and flipped before the teacher sees it. :func:`deep_inversion`.
Adaptive DeepInversion (ADI; same paper, Sec. 3.3: ``R_compete``)
    adds ``alpha_c * (1 - JS(p_T(x), p_S(x)))`` against the *current* student
    (:func:`~dfkd_lib.losses.js.competition_loss`) and alternates synthesis with student training.

:class:`InversionSynthesizer` plugs them into the one training loop (:func:`dfkd_lib.engine.distill`): each
``synthesis_step`` optimises one batch and adds it to an :class:`~dfkd_lib.synthesizers.pool.ImagePool`, each
student step samples from the pool.
"""
from __future__ import annotations

import contextlib
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import DatasetSpec
from ..hooks import BNStatistics, NoBatchNormError, batchnorm_layers
from ..losses.js import competition_loss
from ..losses.priors import l2_prior, total_variation
from ..utils import autocast
from .pixels import (InversionResult, PixelPoolSynthesizer, _bounds, _check_common, _check_options, _clamp_,
                     _device_of, _jitter_flip, _record_and_ask, _update_pixels, final_linear_weight, frozen)


# ------------------------------------------------------------------------------------------ DeepInversion
def deep_inversion(teacher: nn.Module, targets: torch.Tensor, spec: DatasetSpec, steps: int = 300,
                   lr: float = 0.05, alpha_tv: float = 3e-2, alpha_l2: float = 0.0, alpha_f: float = 1.0,
                   alpha_c: float = 0.0, student: nn.Module | None = None, jitter: int = 2, flip: bool = True,
                   first_bn_multiplier: float = 1.0, seed: int = 0, progress: bool = True,
                   callback: Callable[[int, torch.Tensor, dict], bool | None] | None = None, *,
                   temperature_c: float = 3.0, tv_norm: str = "l2", betas: tuple[float, float] = (0.9, 0.999),
                   snapshot_every: int | None = None, bn_layers_every: int | None = None,
                   amp: str | None = None) -> InversionResult:
    """Optimise a batch of images from noise for class ``targets``: DeepInversion, or ADI with a student.

    Minimises, by Adam on the pixels (Yin et al. CVPR 2020, Sec. 3.2-3.3)::

        CE(T(x'), y) + alpha_tv * R_TV(x') + alpha_l2 * R_l2(x') + alpha_f * R_feature(x')
                     [+ alpha_c * (1 - JS(p_T(x'), p_S(x')))       ADI, when a student is given]

    where ``x'`` is ``x`` rolled by a random offset in ``[-jitter, jitter]`` pixels per axis and flipped
    horizontally with probability 1/2, freshly drawn every step; ``CE`` is the batch-mean cross-entropy;
    ``R_TV`` is :func:`~dfkd_lib.losses.priors.total_variation` (four directions, ``tv_norm``, batch mean);
    ``R_l2`` is :func:`~dfkd_lib.losses.priors.l2_prior` (per-image norm, batch mean); ``R_feature`` is the
    BN-statistics distance of :class:`~dfkd_lib.hooks.BNStatistics` (sum over the teacher's BN layers, first
    layer weighted by ``first_bn_multiplier``); ``JS`` is the textbook JS divergence at temperature
    ``temperature_c`` (:func:`~dfkd_lib.losses.js.competition_loss`). After every step the pixels are clamped
    to ``spec.pixel_bounds()``. The images start as standard normal noise in the normalised space (as in
    NVlabs' code), clamped to the same range.

    The defaults are for 32x32 grey Fashion-MNIST, for which the papers give none; the measurements behind
    them are in the book's chapter on BN inversion ("Why these defaults"). For ADI see
    :data:`dfkd_lib.methods.inversion.ADI_ALPHA_C`.

    The teacher (and the student) run in eval mode with frozen weights during the call (see :func:`frozen`);
    their modes and ``requires_grad`` flags are restored afterwards and their weights and BN running
    statistics are never changed. Randomness (noise, jitter, flips) comes from a private generator seeded
    with ``seed``, so equal arguments give equal images on one device, and the global RNG is untouched.

    With ``amp="bf16"`` only the teacher's (and ADI's student's) forward passes run under bfloat16 autocast;
    the image tensor, its gradient, the Adam update, the clamp, CE, the
    priors, the competition term and the BN statistics (:class:`~dfkd_lib.hooks.BNStatistics` casts each BN
    input to fp32) stay in fp32. The final evaluation of ``final`` runs in fp32.

    Args:
        teacher: frozen classifier ``(N, C, H, W) -> (N, K)``.
        targets: class indices ``(N,)`` in ``[0, K)``, one per image to synthesise.
        spec: the data set the teacher was trained on (channels, image size, pixel bounds).
        steps: optimisation steps (0 returns the clamped initial noise).
        lr: Adam learning rate on the pixels (normalised units).
        alpha_tv, alpha_l2, alpha_f: weights of TV, l2 and BN-statistics terms (``>= 0``).
        alpha_c: weight of ADI's competition term; ``> 0`` needs ``student``.
        student: the current student (ADI); ignored when ``alpha_c == 0``.
        jitter: maximal roll in pixels (0 disables); flip: random horizontal flips.
        first_bn_multiplier: weight of the first BN layer in ``R_feature`` (NVlabs use 10 on ImageNet).
        seed: seed of the private generator.
        progress: show a ``tqdm.auto`` bar.
        callback: ``callback(step, images, terms)`` after every update (``step`` counts updates from 1,
            ``images`` detached); returning ``True`` stops early.
        temperature_c: softmax temperature of the competition term.
        tv_norm: ``"l2"`` (default) or ``"l1"`` total variation.
        betas: Adam betas.
        snapshot_every: keep a CPU copy of the images every this many steps (for a slider); ``None``: none.
        bn_layers_every: add the per-layer BN distances (``"BN_layers"``, a list of floats, first layer
            unweighted) to the history every this many steps and at the first and last steps;
            default ``max(1, steps // 10)``.
        amp: ``None`` (fp32) or ``"bf16"`` (autocast around the network forwards only, see above).

    Returns:
        :class:`InversionResult`; its ``history`` entries have keys ``step`` (0-based), ``loss`` (weighted
        total), ``CE``, ``TV``, ``l2``, ``BN`` (unweighted terms; ``BN`` only when the teacher has BN
        layers), ``compete`` (ADI only), ``teacher_acc`` (on the jittered batch), and ``BN_layers`` at a few
        steps.

    Raises:
        NoBatchNormError: ``alpha_f > 0`` but the teacher has no ``BatchNorm2d`` (set ``alpha_f=0`` for a
            DeepDream-style inversion with priors only).
        ValueError: ``targets`` not 1-D integer classes of the teacher, a negative weight, ``alpha_c > 0``
            without a student, ``steps < 0`` / ``lr <= 0`` / ``jitter < 0``, or ``amp`` not ``None``/``"bf16"``.
    """
    _check_common(steps, lr, jitter, amp)
    for name, value in (("alpha_tv", alpha_tv), ("alpha_l2", alpha_l2), ("alpha_f", alpha_f),
                        ("alpha_c", alpha_c)):
        if value < 0:
            raise ValueError(f"{name} must be >= 0, got {value}")
    if alpha_c > 0 and student is None:
        raise ValueError("alpha_c > 0 (Adaptive DeepInversion) needs the current student: pass student=...")
    has_bn = bool(batchnorm_layers(teacher))
    if alpha_f > 0 and not has_bn:
        raise NoBatchNormError(
            f"{type(teacher).__name__} has no BatchNorm2d layer, so DeepInversion's feature term R_feature "
            "(BN statistics) cannot be computed; use a teacher trained with BatchNorm, or alpha_f=0 for an "
            "inversion with image priors only")
    if targets.dim() != 1 or targets.numel() < 1 or targets.dtype.is_floating_point or targets.dtype == torch.bool:
        raise ValueError(f"targets must be a non-empty 1-D tensor of class indices, got {targets.dtype} of shape "
                         f"{tuple(targets.shape)}")
    device = _device_of(teacher)
    targets = targets.to(device=device, dtype=torch.long)
    n = targets.shape[0]
    use_student = alpha_c > 0
    gen = torch.Generator().manual_seed(int(seed))
    lo, hi = _bounds(spec, device)
    x = torch.randn((n, spec.in_channels, spec.image_size, spec.image_size), generator=gen).to(device)
    _clamp_(x, lo, hi)
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, betas=betas)
    every_bn = bn_layers_every if bn_layers_every is not None else max(1, steps // 10)
    history: list[dict] = []
    snapshots = [(0, x.detach().cpu().clone())] if snapshot_every is not None else []
    with frozen(teacher), frozen(student if use_student else None), \
            (BNStatistics(teacher, first_bn_multiplier) if has_bn else contextlib.nullcontext()) as bn:
        with torch.no_grad():
            k = teacher(x[:1]).shape[1]
        if int(targets.min()) < 0 or int(targets.max()) >= k:
            raise ValueError(f"targets must lie in [0, {k}) for a teacher with {k} classes, got "
                             f"[{int(targets.min())}, {int(targets.max())}]")
        bar = tqdm(range(steps), desc="DeepInversion" if not use_student else "ADI", disable=not progress,
                   leave=False)
        for step in bar:
            xj = _jitter_flip(x, jitter, flip, gen)
            with autocast(device, amp):
                logits = teacher(xj)
            logits = logits.float()
            ce = F.cross_entropy(logits, targets)
            tv = total_variation(xj, reduction="mean", norm=tv_norm)
            l2 = l2_prior(xj, reduction="mean")
            loss = ce + alpha_tv * tv + alpha_l2 * l2
            terms = {"step": step, "CE": ce.item(), "TV": tv.item(), "l2": l2.item()}
            if has_bn:
                l_bn = bn.loss()
                if alpha_f > 0:
                    loss = loss + alpha_f * l_bn
                terms["BN"] = l_bn.item()
                if step % every_bn == 0 or step == steps - 1:
                    terms["BN_layers"] = [float(l.detach()) for l in bn.layer_losses]
            if use_student:
                with autocast(device, amp):
                    s_logits = student(xj)
                compete = competition_loss(logits, s_logits.float(), temperature_c)
                loss = loss + alpha_c * compete
                terms["compete"] = compete.item()
            terms["loss"] = loss.item()
            terms["teacher_acc"] = (logits.argmax(1) == targets).float().mean().item()
            history.append(terms)
            _update_pixels(opt, loss, x, lo, hi)
            if progress and (step % 10 == 0 or step + 1 == steps):
                bar.set_postfix(loss=f"{terms['loss']:.3f}", CE=f"{terms['CE']:.3f}",
                                acc=f"{terms['teacher_acc']:.2f}")
            if _record_and_ask(step + 1, steps, x, terms, snapshot_every, snapshots, callback):
                break
        images = x.detach()
        with torch.no_grad():
            logits = teacher(images)
            final = {"CE": F.cross_entropy(logits, targets).item(),
                     "teacher_acc": (logits.argmax(1) == targets).float().mean().item()}
    return InversionResult(images, targets, history, snapshots, final)




class InversionSynthesizer(PixelPoolSynthesizer):
    """DeepInversion / Adaptive DeepInversion as a :class:`~dfkd_lib.engine.Synthesizer` of the shared loop.

    Each :meth:`synthesis_step` optimises one batch of ``batch_size`` images with :func:`deep_inversion`
    (passing the current student when ``alpha_c > 0``: ADI) and adds it, with its target classes, to an
    :class:`ImagePool`; :meth:`sample` draws student batches from the pool. With ``generator_steps=1`` each
    iteration of :func:`~dfkd_lib.engine.distill` thus synthesises one batch and runs ``k`` KD steps on the
    pool, which is ADI's alternation (the paper's DI first builds a fixed set; ``max_batches`` reproduces
    that: after ``max_batches`` batches synthesis stops and the student trains on the fixed pool).
    The inversion's network forwards use the run's ``config.amp`` (bf16 autocast or fp32) unless ``amp`` is
    given explicitly among the options; pixels, losses and updates are always fp32 (see
    :func:`deep_inversion`). The last :class:`InversionResult` is kept in :attr:`last_result` for plots.

    Args:
        spec: the teacher's data set.
        batch_size: images per synthesised batch (default: the run's ``config.batch_size``).
        pool_capacity: images kept (FIFO).
        targets: ``"balanced"`` (classes cycle through ``0..K-1`` across batches, so every class is equally
            represented) or ``"random"`` (uniform, independent).
        seed: base seed (default: ``config.seed``); batch ``b`` is synthesised with its own derived seed.
        progress: show the inner inversion bar.
        max_batches: stop synthesising after this many batches (``None``: never).
        **inversion_options: keyword arguments of :func:`deep_inversion` (``steps``, ``lr``, ``alpha_tv``,
            ``alpha_l2``, ``alpha_f``, ``alpha_c``, ``jitter``, ``flip``, ``first_bn_multiplier``,
            ``temperature_c``, ``tv_norm``, ``betas``, ``amp``); its defaults apply to the rest, except
            ``amp``, which defaults to the run's ``config.amp``.

    Raises:
        TypeError: an unknown inversion option. ValueError: unknown ``targets`` mode or ``amp``.
    """

    kind = "deepinversion"

    def __init__(self, spec: DatasetSpec, batch_size: int | None = None, pool_capacity: int = 10_000,
                 targets: str = "balanced", seed: int | None = None, progress: bool = False,
                 max_batches: int | None = None, **inversion_options):
        super().__init__(spec, batch_size, pool_capacity, seed, progress, max_batches)
        _check_options(deep_inversion, inversion_options,
                       ("teacher", "targets", "spec", "student", "seed", "progress", "callback", "snapshot_every"))
        if targets not in ("balanced", "random"):
            raise ValueError(f"targets must be 'balanced' or 'random', got {targets!r}")
        self.targets = targets
        self._take_amp(inversion_options)
        self.alpha_c = float(inversion_options.get("alpha_c", 0.0))

    def next_targets(self, num_classes: int) -> torch.Tensor:
        """Class indices ``(batch_size,)`` of the next batch (deterministic given the seed and batch count)."""
        n = int(self.batch_size)
        if self.targets == "balanced":
            return (torch.arange(n) + self.batches * n) % num_classes
        gen = torch.Generator().manual_seed(self._batch_seed())
        return torch.randint(0, num_classes, (n,), generator=gen)

    def synthesis_step(self, teacher, student, method, config):
        if self._done():
            return {}
        k = self.spec.num_classes or final_linear_weight(teacher).shape[0]
        targets = self.next_targets(k).to(self.device)
        result = deep_inversion(teacher, targets, self.spec, student=student if self.alpha_c > 0 else None,
                                seed=self._batch_seed(), progress=self.progress, **self.options)
        self.pool.add(result.images, result.targets)
        self.batches += 1
        self.last_result = result
        return self._logs(result)


