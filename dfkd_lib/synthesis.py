"""Images optimised from noise: DeepInversion, Adaptive DeepInversion and ZSKD, and the pool that keeps them.

Instead of training a generator, these baselines optimise the *pixels* of a batch of images against a frozen
teacher, then distil the student on the results:

DeepInversion (DI; Yin et al. CVPR 2020, Sec. 3.2: ``R_DI = R_prior + alpha_f * R_feature``)
    ``min_x CE(T(x), y) + alpha_tv * R_TV(x) + alpha_l2 * R_l2(x) + alpha_f * R_feature(x)`` for chosen
    classes ``y``, where ``R_feature`` is the BN-statistics distance (:class:`~dfkd_lib.hooks.BNStatistics`)
    and ``R_TV``, ``R_l2`` the image priors (:mod:`dfkd_lib.losses.priors`). Every step the batch is randomly
    jittered (``torch.roll``) and flipped before the teacher sees it. :func:`deep_inversion`.
Adaptive DeepInversion (ADI; same paper, Sec. 3.3: ``R_compete``)
    adds ``alpha_c * (1 - JS(p_T(x), p_S(x)))`` against the *current* student
    (:func:`~dfkd_lib.losses.js.competition_loss`) and alternates synthesis with student training.
ZSKD (Nayak et al. ICML 2019)
    soft targets drawn from a Dirichlet whose concentration is the class similarity of the teacher's final
    layer (:func:`class_similarity`, :func:`sample_dirichlet_targets`); images are optimised so that the
    teacher's temperature-20 softmax matches them (:func:`zskd_synthesize`).

:class:`InversionSynthesizer` and :class:`ZSKDSynthesizer` plug these into the one training loop
(:func:`dfkd_lib.engine.distill`): each ``synthesis_step`` optimises one batch and adds it to an
:class:`ImagePool`, each student step samples from the pool.

All images live in the teacher's (normalised) input space and are clamped to the valid range of
:meth:`~dfkd_lib.data.DatasetSpec.pixel_bounds`; :meth:`~dfkd_lib.data.DatasetSpec.denormalize` maps them to
``[0, 1]`` pixels for display.
"""
from __future__ import annotations

import contextlib
import inspect
import math
from typing import Callable, Iterator, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from .data import DatasetSpec
from .engine import DistillConfig, Synthesizer
from .hooks import BNStatistics, NoBatchNormError, batchnorm_layers
from .losses.js import competition_loss
from .pool import ImagePool
from .losses.priors import l2_prior, total_variation
from .teachers import autocast

__all__ = ["InversionResult", "deep_inversion", "zskd_synthesize", "ImagePool", "InversionSynthesizer",
           "ZSKDSynthesizer", "class_similarity", "sample_dirichlet_targets", "final_linear_weight", "frozen"]


class InversionResult(NamedTuple):
    """What :func:`deep_inversion` and :func:`zskd_synthesize` return.

    Attributes:
        images: the optimised batch ``(N, C, H, W)`` in the teacher's input space, detached, within
            ``spec.pixel_bounds()``; on the teacher's device.
        targets: what the images were optimised for: class indices ``(N,)`` (DI/ADI) or soft targets
            ``(N, K)`` (ZSKD).
        history: one dict of float loss terms per optimisation step (computed on that step's jittered batch,
            before its update); see the function for the keys.
        snapshots: ``(step, images)`` pairs, ``images`` a CPU copy ``(N, C, H, W)`` after ``step`` updates
            (step 0 is the initial noise), every ``snapshot_every`` steps and at the end; empty when
            ``snapshot_every`` is ``None``.
        final: terms on the final, un-jittered images: ``"CE"`` and ``"teacher_acc"`` (fraction of images the
            teacher assigns to their target class, in ``[0, 1]``).
    """

    images: torch.Tensor
    targets: torch.Tensor
    history: list[dict]
    snapshots: list[tuple[int, torch.Tensor]]
    final: dict


# ------------------------------------------------------------------------------------------------ helpers
@contextlib.contextmanager
def frozen(model: nn.Module | None) -> Iterator[nn.Module | None]:
    """Put ``model`` in eval mode with ``requires_grad=False`` inside the block, then restore every flag.

    Inversion needs the teacher (and ADI's student) in eval mode: in train mode BatchNorm would normalise with
    the synthetic batch's own statistics and overwrite the running statistics the BN loss compares against.
    Gradients still flow through the model into its input. ``None`` is accepted and ignored.
    """
    if model is None:
        yield None
        return
    modes = [(m, m.training) for m in model.modules()]
    flags = [(p, p.requires_grad) for p in model.parameters()]
    model.eval()
    model.requires_grad_(False)
    try:
        yield model
    finally:
        for m, mode in modes:
            m.training = mode
        for p, flag in flags:
            p.requires_grad_(flag)


def _device_of(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    for b in model.buffers():
        return b.device
    return torch.device("cpu")


def _bounds(spec: DatasetSpec, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    lo, hi = spec.pixel_bounds()
    return lo.to(device), hi.to(device)


def _clamp_(x: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> None:
    with torch.no_grad():
        x.copy_(torch.minimum(torch.maximum(x, lo), hi))


def _jitter_flip(x: torch.Tensor, jitter: int, flip: bool, gen: torch.Generator) -> torch.Tensor:
    """Random roll by up to ``jitter`` pixels in each spatial direction and, with probability 1/2, a
    horizontal flip (DeepInversion's augmentation, drawn from ``gen`` on the CPU)."""
    if jitter > 0:
        dy, dx = (int(v) for v in torch.randint(-jitter, jitter + 1, (2,), generator=gen))
        if dy or dx:
            x = torch.roll(x, shifts=(dy, dx), dims=(2, 3))
    if flip and bool(torch.rand((), generator=gen) < 0.5):
        x = torch.flip(x, dims=(3,))
    return x


def _snapshot_due(done: int, steps: int, every: int | None) -> bool:
    return every is not None and (done % every == 0 or done == steps)


def _update_pixels(opt: torch.optim.Optimizer, loss: torch.Tensor, x: torch.Tensor, lo: torch.Tensor,
                   hi: torch.Tensor) -> None:
    """One optimiser step on the pixels ``x``, then clamp them to the valid (normalised) range."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    _clamp_(x, lo, hi)


def _record_and_ask(done: int, steps: int, x: torch.Tensor, terms: dict, snapshot_every: int | None,
                    snapshots: list, callback) -> bool:
    """After step ``done``: keep a snapshot when one is due, then ask the callback; ``True`` means stop (the
    stopping batch is snapshotted too)."""
    if _snapshot_due(done, steps, snapshot_every):
        snapshots.append((done, x.detach().cpu().clone()))
    if callback is not None and callback(done, x.detach(), terms):
        if snapshot_every is not None and snapshots[-1][0] != done:
            snapshots.append((done, x.detach().cpu().clone()))
        return True
    return False


def _check_common(steps: int, lr: float, jitter: int, amp: str | None = None) -> None:
    if amp not in (None, "bf16"):
        raise ValueError(f"amp must be None (fp32) or 'bf16', got {amp!r}")
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if lr <= 0:
        raise ValueError(f"lr must be > 0, got {lr}")
    if jitter < 0:
        raise ValueError(f"jitter must be >= 0 pixels, got {jitter}")


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

    Defaults for 32x32 grey Fashion-MNIST (the papers give none for this data set; measured on dfkd_lib's
    resnet34 width-16 teacher, a checkpoint at 90 % test accuracy, 20 images, 300 steps: teacher accuracy on the images
    100 %, BN distance 86 -> 18, pixel mean 0.21 against the data's 0.22, garments recognisable):
    ``steps=300`` (NVlabs' CIFAR-10 script runs 2000), ``lr=0.05`` Adam with betas ``(0.9, 0.999)`` (the
    CIFAR-10 script's optimiser), ``alpha_f=1`` (NVlabs' CIFAR-10 weights of 10-100 let the BN term, summed
    over the 36 BN layers of a resnet34, swamp CE here: teacher accuracy 17 % after 300 steps at 10),
    ``alpha_tv=3e-2`` (smooths the high-frequency stripes that 4e-4, the CIFAR-10 weight converted to this
    batch-mean form, leaves; 0.1 darkens the images and raises the first-layer BN distance),
    ``alpha_l2=0`` (off, as in the CIFAR-10 script; the clamp bounds the pixels), ``jitter=2`` px and flips
    (NVlabs), ``temperature_c=3`` (NVlabs). For ADI see :data:`dfkd_lib.methods.inversion.ADI_ALPHA_C`.

    The teacher (and the student) run in eval mode with frozen weights during the call (see :func:`frozen`);
    their modes and ``requires_grad`` flags are restored afterwards and their weights and BN running
    statistics are never changed. Randomness (noise, jitter, flips) comes from a private generator seeded
    with ``seed``, so equal arguments give equal images on one device, and the global RNG is untouched.

    With ``amp="bf16"`` only the teacher's (and ADI's student's) forward passes run under bfloat16 autocast
    (about 3x faster on CPUs with AMX); the image tensor, its gradient, the Adam update, the clamp, CE, the
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


# ------------------------------------------------------------------------------------------------- ZSKD
def final_linear_weight(model: nn.Module) -> torch.Tensor:
    """Weight ``(K, D)`` of the last ``nn.Linear`` of ``model`` (the classifier head of dfkd_lib's ResNets).

    Raises:
        ValueError: the model has no ``nn.Linear``.
    """
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ValueError(f"{type(model).__name__} has no nn.Linear layer: pass the final layer's weight "
                         "(K, D) explicitly")
    return linears[-1].weight


def class_similarity(teacher_fc_weight: torch.Tensor) -> torch.Tensor:
    """ZSKD's class-similarity matrix from the final layer's weights (Nayak et al. ICML 2019, Sec. 3.1).

    ``C[i, j] = cos(w_i, w_j) = w_i . w_j / (||w_i|| ||w_j||)`` over the rows ``w_i`` of the weight, then each
    row is min-max normalised to ``[0, 1]``: ``C[i] = (C[i] - min C[i]) / (max C[i] - min C[i])``, as in the
    paper. The diagonal is 1 (a class is most similar to itself) and each row has a 0 at its least similar
    class. A row whose entries are all equal (parallel weight vectors) becomes all ones. The matrix is in
    general *not* symmetric after the row normalisation.

    Args:
        teacher_fc_weight: ``(K, D)`` weight of the teacher's final linear layer (``K >= 2`` classes).

    Returns:
        ``(K, K)`` float tensor with entries in ``[0, 1]`` (detached, on the weight's device).

    Raises:
        ValueError: not 2-D, or fewer than 2 classes.
    """
    w = teacher_fc_weight.detach().float()
    if w.dim() != 2 or w.shape[0] < 2:
        raise ValueError(f"expected a (K, D) weight with K >= 2 classes, got shape {tuple(w.shape)}")
    wn = F.normalize(w, dim=1)
    cos = wn @ wn.t()
    lo = cos.min(dim=1, keepdim=True).values
    hi = cos.max(dim=1, keepdim=True).values
    span = hi - lo
    sim = (cos - lo) / span.clamp_min(1e-12)
    return torch.where(span > 1e-12, sim, torch.ones_like(sim)).clamp(0.0, 1.0)


def _numpy_rng(generator: torch.Generator | int | None) -> np.random.Generator:
    if isinstance(generator, torch.Generator):
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    elif generator is None:
        seed = int(torch.randint(0, 2**62, (1,)))
    else:
        seed = int(generator)
    return np.random.default_rng(seed)


def sample_dirichlet_targets(similarity: torch.Tensor, n_per_class: int, beta_scales: tuple[float, ...] = (1.0, 0.1),
                             generator: torch.Generator | int | None = None, min_concentration: float = 1e-3
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Soft targets of ZSKD: ``y ~ Dir(beta * C[k])`` for every class ``k`` (Nayak et al. ICML 2019, Sec. 3.1).

    For each class ``k`` the ``n_per_class`` samples are split as evenly as possible between the scaling
    factors ``beta_scales`` (the paper uses 1.0 and 0.1 with equal numbers: a large ``beta`` gives soft
    vectors spread over similar classes, a small one nearly one-hot vectors), the first ones getting the first
    scale. Concentrations are floored at ``min_concentration``: the min-max normalisation puts a 0 in every row
    and no Dirichlet accepts a zero concentration (the paper is silent on this). Sampling is done in float64
    by numpy's Dirichlet, seeded from ``generator``, so a seeded generator gives reproducible targets.

    Args:
        similarity: ``(K, K)`` class similarity, rows in ``[0, 1]`` (:func:`class_similarity`).
        n_per_class: samples per class (``>= 1``).
        beta_scales: positive scaling factors ``beta``.
        generator: a ``torch.Generator``, an integer seed, or ``None`` (the global torch RNG).
        min_concentration: floor of the Dirichlet concentration (``> 0``).

    Returns:
        ``(soft_targets, classes)``: ``(K * n_per_class, K)`` float32 rows that are probability vectors (non-
        negative, summing to 1), and ``(K * n_per_class,)`` long class indices, class-major
        (``n_per_class`` rows of class 0 first); on the similarity's device.

    Raises:
        ValueError: ``similarity`` not square, ``n_per_class < 1``, an empty or non-positive ``beta_scales``,
            or ``min_concentration <= 0``.
    """
    if similarity.dim() != 2 or similarity.shape[0] != similarity.shape[1]:
        raise ValueError(f"similarity must be a square (K, K) matrix, got {tuple(similarity.shape)}")
    if n_per_class < 1:
        raise ValueError(f"n_per_class must be >= 1, got {n_per_class}")
    if not beta_scales or any(b <= 0 for b in beta_scales):
        raise ValueError(f"beta_scales must be a non-empty sequence of positive numbers, got {beta_scales}")
    if min_concentration <= 0:
        raise ValueError(f"min_concentration must be > 0, got {min_concentration}")
    rng = _numpy_rng(generator)
    sim = similarity.detach().double().cpu().numpy()
    k = sim.shape[0]
    rows, classes = [], []
    for c in range(k):
        for i in range(n_per_class):
            beta = beta_scales[i * len(beta_scales) // n_per_class]
            alpha = np.maximum(beta * sim[c], min_concentration)
            y = rng.dirichlet(alpha)
            s = y.sum()
            if not np.isfinite(s) or s <= 0:  # every gamma draw underflowed: fall back to the mode class
                y = np.zeros(k)
                y[int(np.argmax(alpha))] = 1.0
            rows.append(y / y.sum())
            classes.append(c)
    soft = torch.from_numpy(np.stack(rows)).float().to(similarity.device)
    return soft, torch.tensor(classes, dtype=torch.long, device=similarity.device)


def zskd_synthesize(teacher: nn.Module, soft_targets: torch.Tensor, spec: DatasetSpec, steps: int = 300,
                    lr: float = 0.05, temperature: float = 20.0, seed: int = 0, progress: bool = True,
                    callback: Callable[[int, torch.Tensor, dict], bool | None] | None = None, *,
                    jitter: int = 0, flip: bool = False, betas: tuple[float, float] = (0.9, 0.999),
                    snapshot_every: int | None = None, amp: str | None = None) -> InversionResult:
    """Optimise "data impressions" whose teacher softmax matches ZSKD soft targets (Nayak et al. ICML 2019, Eq. 1).

    Minimises by Adam on the pixels the cross-entropy against the soft targets at temperature ``T``::

        L(x) = - mean_i sum_k y_ik log softmax(T(x_i) / T)_k        (T = 20 in the paper)

    whose minimum over the teacher's outputs is the entropy of ``y`` (the history also logs
    ``KL = L - H(y)``, which reaches 0 when the softmax equals the targets). The images start as uniform noise
    in ``[0, 1]`` pixels (the paper's "random noise"), normalised by ``spec``, and are clamped to
    ``spec.pixel_bounds()`` after every step (the paper is silent; it keeps images valid). ZSKD uses no image
    prior and no BN term, so any teacher works, BatchNorm or not. The teacher runs frozen in eval mode
    (:func:`frozen`); randomness comes from a private generator seeded with ``seed``.

    Defaults: ``T=20`` (paper); ``steps=300``, ``lr=0.05`` chosen for 32x32 Fashion-MNIST (the paper's
    iteration count and learning rate are for CIFAR-10); no jitter or flips (offered as options). Measured on
    the resnet34 width-16 Fashion-MNIST teacher (90 % test accuracy), 20 impressions: the teacher's argmax
    matches the target's for 95 % after 300 steps while ``KL`` only falls from 1.7 to 1.0 nats: nearly
    one-hot targets (``beta = 0.1``) at ``T = 20`` need logit gaps that clamped pixels hardly reach.

    Args:
        teacher: frozen classifier ``(N, C, H, W) -> (N, K)``.
        soft_targets: ``(N, K)`` probability vectors (rows non-negative, summing to 1).
        spec: the teacher's data set.
        steps, lr, temperature, seed, progress, callback, jitter, flip, betas, snapshot_every, amp: as in
            :func:`deep_inversion` (``temperature`` is the softmax temperature ``T > 0``; ``amp="bf16"``
            autocasts the teacher's forward only, the soft cross-entropy and the update stay fp32).

    Returns:
        :class:`InversionResult` with ``targets`` the soft targets; history keys ``step``, ``loss``, ``KL``,
        ``teacher_acc`` (argmax of the teacher equals argmax of the target); ``final`` has ``CE`` (the soft
        cross-entropy at ``T``), ``KL`` and ``teacher_acc``.

    Raises:
        ValueError: targets not ``(N, K)`` probability rows matching the teacher's classes, ``temperature <= 0``,
            ``steps < 0``, ``lr <= 0``, ``jitter < 0`` or ``amp`` not ``None``/``"bf16"``.
    """
    _check_common(steps, lr, jitter, amp)
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if soft_targets.dim() != 2:
        raise ValueError(f"soft_targets must be (N, K), got shape {tuple(soft_targets.shape)}")
    y = soft_targets.detach().float()
    if y.shape[0] < 1 or (y < 0).any() or not torch.allclose(y.sum(1), torch.ones_like(y[:, 0]), atol=1e-4):
        raise ValueError("soft_targets rows must be probability vectors (non-negative, summing to 1)")
    device = _device_of(teacher)
    y = y.to(device)
    n = y.shape[0]
    entropy = -torch.special.xlogy(y, y).sum(1).mean()
    hard = y.argmax(1)
    gen = torch.Generator().manual_seed(int(seed))
    lo, hi = _bounds(spec, device)
    x = spec.normalize(torch.rand((n, spec.in_channels, spec.image_size, spec.image_size), generator=gen))
    x = x.to(device)
    _clamp_(x, lo, hi)
    x.requires_grad_(True)
    opt = torch.optim.Adam([x], lr=lr, betas=betas)
    history: list[dict] = []
    snapshots = [(0, x.detach().cpu().clone())] if snapshot_every is not None else []

    def soft_ce(logits: torch.Tensor) -> torch.Tensor:
        return -(y * F.log_softmax(logits / temperature, dim=1)).sum(1).mean()

    with frozen(teacher):
        with torch.no_grad():
            k = teacher(x[:1]).shape[1]
        if y.shape[1] != k:
            raise ValueError(f"soft_targets have {y.shape[1]} classes but the teacher predicts {k}")
        bar = tqdm(range(steps), desc="ZSKD", disable=not progress, leave=False)
        for step in bar:
            with autocast(device, amp):
                logits = teacher(_jitter_flip(x, jitter, flip, gen))
            logits = logits.float()
            loss = soft_ce(logits)
            terms = {"step": step, "loss": loss.item(), "KL": loss.item() - entropy.item(),
                     "teacher_acc": (logits.argmax(1) == hard).float().mean().item()}
            history.append(terms)
            _update_pixels(opt, loss, x, lo, hi)
            if progress and (step % 10 == 0 or step + 1 == steps):
                bar.set_postfix(loss=f"{terms['loss']:.3f}", KL=f"{terms['KL']:.4f}")
            if _record_and_ask(step + 1, steps, x, terms, snapshot_every, snapshots, callback):
                break
        images = x.detach()
        with torch.no_grad():
            logits = teacher(images)
            ce = soft_ce(logits).item()
            final = {"CE": ce, "KL": ce - entropy.item(),
                     "teacher_acc": (logits.argmax(1) == hard).float().mean().item()}
    return InversionResult(images, y, history, snapshots, final)


# ------------------------------------------------------------------------------------------------- pool
# ----------------------------------------------------------------------------------------- synthesizers
class _PoolSynthesizer(Synthesizer):
    """Shared part of the inversion synthesizers: a pool, per-batch seeds, sampling and checkpoint state."""

    kind = "pool"

    def __init__(self, spec: DatasetSpec, batch_size: int | None, pool_capacity: int, seed: int | None,
                 progress: bool, max_batches: int | None):
        if max_batches is not None and max_batches < 0:
            raise ValueError(f"max_batches must be >= 0 or None, got {max_batches}")
        self.spec = spec
        self.batch_size = batch_size
        self.pool = ImagePool(pool_capacity)
        self.seed = seed
        self.progress = progress
        self.max_batches = max_batches
        self.batches = 0
        self.device = torch.device("cpu")
        self._sample_gen = torch.Generator()
        self.last_result: InversionResult | None = None
        self.options: dict = {}
        self._amp_from_config = True

    def _take_amp(self, options: dict) -> None:
        """Keep the options; without an explicit ``amp`` the run's ``config.amp`` is used (set in :meth:`setup`)."""
        self.options = options
        self._amp_from_config = "amp" not in options
        if not self._amp_from_config:
            _check_common(0, 1.0, 0, options["amp"])

    def setup(self, config: DistillConfig, device: torch.device) -> None:
        self.device = torch.device(device)
        if self._amp_from_config:
            self.options["amp"] = config.amp
        if self.batch_size is None:
            self.batch_size = config.batch_size
        if self.seed is None:
            self.seed = config.seed
        self._sample_gen.manual_seed(int(self.seed) + 1)

    def _batch_seed(self) -> int:
        return (int(self.seed or 0) * 1_000_003 + self.batches) % (2**62)

    def _done(self) -> bool:
        return self.max_batches is not None and self.batches >= self.max_batches

    def sample(self, n: int) -> torch.Tensor:
        """``n`` pooled images on the synthesizer's device.

        Before the first synthesis step the pool is empty; the engine then only probes shapes
        (``sample(2)``), and this returns uniform noise in the valid pixel range instead of failing.
        """
        if len(self.pool) == 0:
            gen = torch.Generator().manual_seed(int(self.seed or 0))
            x01 = torch.rand((n, self.spec.in_channels, self.spec.image_size, self.spec.image_size), generator=gen)
            return self.spec.normalize(x01).to(self.device)
        return self.pool.sample(n, generator=self._sample_gen).to(self.device)

    def state_dict(self) -> dict:
        return {"pool": self.pool.state_dict(), "batches": self.batches, "seed": self.seed,
                "batch_size": self.batch_size, "sample_rng": self._sample_gen.get_state()}

    def load_state_dict(self, state: dict) -> None:
        self.pool.load_state_dict(state["pool"])
        self.batches, self.seed, self.batch_size = int(state["batches"]), state["seed"], state["batch_size"]
        self._sample_gen.set_state(state["sample_rng"])

    def _logs(self, result: InversionResult) -> dict[str, float]:
        last = result.history[-1] if result.history else {}
        logs = {k: float(v) for k, v in last.items() if k not in ("step", "BN_layers")}
        logs.update({f"final_{k}": float(v) for k, v in result.final.items()})
        logs["pool"] = float(len(self.pool))
        return logs


def _check_options(fn: Callable, options: dict, reserved: tuple[str, ...]) -> None:
    allowed = set(inspect.signature(fn).parameters) - set(reserved)
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise TypeError(f"unknown {fn.__name__} option(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")


class InversionSynthesizer(_PoolSynthesizer):
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


class ZSKDSynthesizer(_PoolSynthesizer):
    """ZSKD's data impressions (Nayak et al. ICML 2019) as a :class:`~dfkd_lib.engine.Synthesizer`.

    On the first :meth:`synthesis_step` the class similarity is computed from the teacher's final linear
    layer (:func:`class_similarity`, or from ``fc_weight``); every step then draws ``batch_size`` Dirichlet
    soft targets (:func:`sample_dirichlet_targets`: classes balanced, ``beta_scales`` split evenly; the
    ``batch_size`` rows are a seeded random subset when ``batch_size`` is not a multiple of ``K``), optimises
    them with :func:`zskd_synthesize` and adds the images with their target classes to the pool. The paper
    builds one fixed set of impressions before distilling; ``max_batches`` reproduces that.

    Args:
        spec, batch_size, pool_capacity, seed, progress, max_batches: as :class:`InversionSynthesizer`.
        beta_scales: Dirichlet scaling factors (1.0 and 0.1 in the paper).
        fc_weight: ``(K, D)`` weight to compute the similarity from (default: the teacher's last ``nn.Linear``).
        **zskd_options: keyword arguments of :func:`zskd_synthesize` (``steps``, ``lr``, ``temperature``,
            ``jitter``, ``flip``, ``betas``, ``amp``; ``amp`` defaults to the run's ``config.amp``).

    Raises:
        TypeError: an unknown option.
    """

    kind = "zskd"

    def __init__(self, spec: DatasetSpec, batch_size: int | None = None, pool_capacity: int = 10_000,
                 beta_scales: tuple[float, ...] = (1.0, 0.1), fc_weight: torch.Tensor | None = None,
                 seed: int | None = None, progress: bool = False, max_batches: int | None = None,
                 **zskd_options):
        super().__init__(spec, batch_size, pool_capacity, seed, progress, max_batches)
        _check_options(zskd_synthesize, zskd_options,
                       ("teacher", "soft_targets", "spec", "seed", "progress", "callback", "snapshot_every"))
        self.beta_scales = tuple(beta_scales)
        self.fc_weight = fc_weight
        self._take_amp(zskd_options)
        self.similarity: torch.Tensor | None = None

    def next_targets(self, similarity: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft targets ``(batch_size, K)`` and their classes ``(batch_size,)`` for the next batch."""
        n, k = int(self.batch_size), similarity.shape[0]
        gen = torch.Generator().manual_seed(self._batch_seed())
        soft, classes = sample_dirichlet_targets(similarity, math.ceil(n / k), self.beta_scales, generator=gen)
        keep = torch.randperm(soft.shape[0], generator=gen)[:n].to(soft.device)
        return soft[keep], classes[keep]

    def synthesis_step(self, teacher, student, method, config):
        if self._done():
            return {}
        if self.similarity is None:
            w = self.fc_weight if self.fc_weight is not None else final_linear_weight(teacher)
            self.similarity = class_similarity(w).cpu()
        soft, classes = self.next_targets(self.similarity)
        result = zskd_synthesize(teacher, soft.to(self.device), self.spec, seed=self._batch_seed(),
                                 progress=self.progress, **self.options)
        self.pool.add(result.images, classes.to(self.device))
        self.batches += 1
        self.last_result = result
        return self._logs(result)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "similarity": self.similarity}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.similarity = state.get("similarity")
