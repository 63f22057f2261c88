"""ZSKD (Nayak et al. ICML 2019): pixels optimised towards soft targets drawn from the teacher's class similarity.

Soft targets come from a Dirichlet whose concentration is the class similarity of the teacher's final layer
(:func:`class_similarity`, :func:`sample_dirichlet_targets`); images are optimised so that the teacher's
temperature-20 softmax matches them (:func:`zskd_synthesize`). :class:`ZSKDSynthesizer` feeds them to the loop.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..data import DatasetSpec
from ..utils import autocast
from .pixels import (InversionResult, PixelPoolSynthesizer, _bounds, _check_common, _check_options, _clamp_,
                     _device_of, _jitter_flip, _record_and_ask, _update_pixels, final_linear_weight, frozen)


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




class ZSKDSynthesizer(PixelPoolSynthesizer):
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
