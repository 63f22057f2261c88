"""Contrastive model inversion (CMI; Fang, Song, Wang, Shen, Wang, Song; IJCAI 2021): one batch at a time from a
re-initialised generator, made different from the batches before it by a contrastive term."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
from torchvision.transforms import v2

from ..augment import augment_batch
from ..data import DatasetSpec
from ..hooks import BNStatistics
from ..losses.contrastive import instance_contrastive_loss
from ..models.mlp import two_hidden_layer_mlp
from ..step import check_finite
from ..utils import autocast
from .pixels import PixelPoolSynthesizer, frozen


def local_views(x: torch.Tensor, scale: tuple[float, float] = (0.25, 1.0)) -> torch.Tensor:
    """CMI's local view of each image of ``x`` ``(N, C, H, W)``: a random crop of ``scale`` of its area, resized
    back to ``(H, W)``, flipped with probability 1/2 (torch's global RNG; differentiable in ``x``)."""
    h, w = x.shape[-2:]
    view = v2.Compose([v2.RandomResizedCrop((h, w), scale=scale, antialias=True), v2.RandomHorizontalFlip()])
    return torch.stack([view(img) for img in x])


def redraw_weights(module: nn.Module, seed: int) -> None:
    """New random weights for every layer of ``module``, in place, drawn as at construction (each layer's
    ``reset_parameters``: weights, biases, BatchNorm's affine parameters and running statistics) from torch's RNG
    seeded with ``seed``; torch's global RNG is left as it was. CMI's ``reset_model`` before each batch.

    A parametrised weight (spectral norm) is drawn in its original tensor as torch's Linear and Conv layers draw
    theirs (``kaiming_uniform_`` with ``a = sqrt(5)``); the parametrisation's buffers (spectral norm's singular-vector
    estimates) are drawn from N(0, 1) and iterated 15 times on the new tensor, as at construction."""
    devices = sorted({p.device.index or 0 for p in module.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=devices), torch.no_grad():
        torch.manual_seed(seed)
        for layer in module.modules():
            if hasattr(layer, "reset_parameters"):
                layer.reset_parameters()  # a parametrised weight is not reached here: drawn below
            if not parametrize.is_parametrized(layer):
                continue
            was_training = layer.training
            layer.train()
            for name, chain in layer.parametrizations.items():
                nn.init.kaiming_uniform_(chain.original, a=math.sqrt(5))
                for buffer in chain.buffers():
                    buffer.normal_()
                for _ in range(15):  # spectral norm's power iteration, as at construction
                    getattr(layer, name)
            layer.train(was_training)


class CMISynthesizer(PixelPoolSynthesizer):
    """Each :meth:`synthesis_step` makes one batch by CMI's inversion and adds it to the image pool.

    The generator gets new random weights (:func:`redraw_weights`, from the batch's seed) and a fresh latent ``z`` is
    drawn; both are optimised by Adam for ``steps`` steps on ``B`` images of balanced target classes ``y``,
    minimising (CMI Eq. 9)::

        alpha_bn * L_BN(x_g) + alpha_oh * CE(T(x_g), y) + alpha_adv * L_adv + alpha_cr * L_cr

    where ``x_g`` is the global view (random crop with 4 px padding and flip, :func:`~dfkd_lib.augment.augment_batch`)
    of ``x = G(z)`` and ``x_l`` its local view (:func:`local_views`); ``L_adv = -mean_i m_i KL(p_T(x_i) || p_S(x_i))``
    with ``m_i = 1`` where student and teacher agree on the class (images the student already gets right are pushed
    towards its decision boundary); ``L_cr`` is :func:`~dfkd_lib.losses.instance_contrastive_loss` at
    ``cr_temperature`` between the projected embeddings of ``x_g`` and ``x_l`` against a memory bank of the
    embeddings of earlier batches. An image's embedding is the per-channel mean of every BN layer's input in the
    teacher (:meth:`~dfkd_lib.hooks.BNStatistics.channel_means`), projected by an MLP head that is trained
    with the generator and kept across batches. The batch with the lowest loss over the steps is kept.

    As in CMI's public code, the generator is re-initialised for every batch; where we differ from it: the bank holds
    the embeddings of the kept batches only.

    Args:
        generator: maps ``z (N, nz)`` to images ``(N, C, H, W)`` in the teacher's input space (``nz`` and
            ``sample_z`` as :class:`~dfkd_lib.models.generators.DCGANGenerator`).
        spec: the teacher's data set.
        steps: Adam steps per batch; lr: their learning rate (generator, ``z`` and head).
        alpha_bn, alpha_oh, alpha_adv, alpha_cr: loss weights (``>= 0``).
        cr_temperature: ``tau`` of the contrastive loss.
        bank_size: embeddings kept in the memory bank (FIFO).
        head_dim: output size of the projection head (hidden layers of the same size).
        batch_size, pool_capacity, seed, progress, max_batches: as :class:`PixelPoolSynthesizer`.

    Raises:
        ValueError: ``steps < 1``, ``lr <= 0``, a negative weight, ``cr_temperature <= 0``, ``bank_size < 0``.
    """

    kind = "cmi"

    def __init__(self, generator: nn.Module, spec: DatasetSpec, steps: int = 50, lr: float = 1e-3,
                 alpha_bn: float = 1.0, alpha_oh: float = 1.0, alpha_adv: float = 0.5, alpha_cr: float = 0.8,
                 cr_temperature: float = 0.1, bank_size: int = 4096, head_dim: int = 128,
                 batch_size: int | None = None, pool_capacity: int = 10_000, seed: int | None = None,
                 progress: bool = False, max_batches: int | None = None):
        super().__init__(spec, batch_size, pool_capacity, seed, progress, max_batches)
        if steps < 1 or lr <= 0 or cr_temperature <= 0 or bank_size < 0:
            raise ValueError(f"need steps >= 1, lr > 0, cr_temperature > 0 and bank_size >= 0; got {steps}, {lr}, "
                             f"{cr_temperature}, {bank_size}")
        if min(alpha_bn, alpha_oh, alpha_adv, alpha_cr) < 0:
            raise ValueError("the weights alpha_bn, alpha_oh, alpha_adv, alpha_cr must be >= 0")
        self.generator, self.steps, self.lr = generator, int(steps), float(lr)
        self.alpha = {"bn": alpha_bn, "oh": alpha_oh, "adv": alpha_adv, "cr": alpha_cr}
        self.cr_temperature, self.bank_size, self.head_dim = float(cr_temperature), int(bank_size), int(head_dim)
        self.head: nn.Module | None = None
        self.head_optimizer: torch.optim.Optimizer | None = None
        self.bank: torch.Tensor | None = None
        self._amp_from_config = True

    def _build_head(self, dim: int) -> None:
        self.head = two_hidden_layer_mlp(dim, self.head_dim, self.head_dim).to(self.device)
        self.head_optimizer = torch.optim.Adam(self.head.parameters(), lr=self.lr, betas=(0.5, 0.999))

    def _embed(self, teacher: nn.Module, x: torch.Tensor, amp) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        with autocast(x.device, amp), BNStatistics(teacher) as bn:
            logits = teacher(x)
        return logits.float(), bn.loss(), bn.channel_means()

    def synthesis_step(self, teacher, student, method, config):
        if self._done():
            return {}
        amp, n = self.options.get("amp"), int(self.batch_size)
        self.generator.to(self.device).train()
        redraw_weights(self.generator, self._batch_seed())
        gen = torch.Generator().manual_seed(self._batch_seed())
        z = torch.randn(n, self.generator.nz, generator=gen).to(self.device).requires_grad_(True)
        k = self.spec.num_classes
        targets = ((torch.arange(n) + self.batches * n) % k).to(self.device)
        opt = torch.optim.Adam([*self.generator.parameters(), z], lr=self.lr, betas=(0.5, 0.999))
        best, best_loss, logs = None, float("inf"), {}
        with frozen(teacher), frozen(student):
            for _ in range(self.steps):
                x = self.generator(z)
                x_g, x_l = augment_batch(x), local_views(x)
                t_logits, l_bn, emb_g = self._embed(teacher, x_g, amp)
                _, _, emb_l = self._embed(teacher, x_l, amp)
                if self.head is None:
                    self._build_head(emb_g.shape[1])
                with autocast(self.device, amp):
                    s_logits = student(x_g).float()
                l_oh = F.cross_entropy(t_logits, targets)
                agree = (s_logits.argmax(1) == t_logits.argmax(1)).float()
                kl = F.kl_div(F.log_softmax(s_logits, 1), F.log_softmax(t_logits, 1), reduction="none",
                              log_target=True).sum(1)
                l_adv = -(kl * agree).mean()
                bank = self.head(self.bank) if self.bank is not None else None
                l_cr = instance_contrastive_loss(self.head(emb_g), self.head(emb_l), bank, self.cr_temperature)
                loss = (self.alpha["bn"] * l_bn + self.alpha["oh"] * l_oh + self.alpha["adv"] * l_adv
                        + self.alpha["cr"] * l_cr)
                check_finite(loss, "generator")
                if loss.item() < best_loss:
                    best, best_loss = x.detach().clone(), loss.item()
                    logs = {"L_BN": l_bn.item(), "L_oh": l_oh.item(), "L_adv": l_adv.item(), "L_cr": l_cr.item(),
                            "loss": loss.item(), "agree": agree.mean().item()}
                opt.zero_grad(set_to_none=True)
                self.head_optimizer.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                self.head_optimizer.step()
            with torch.no_grad():
                _, _, emb = self._embed(teacher, best, amp)
        self.pool.add(best, targets)
        self.bank = emb.detach() if self.bank is None else torch.cat([self.bank, emb.detach()])[-self.bank_size:]
        self.batches += 1
        return {**logs, "pool": float(len(self.pool))}

    def state_dict(self) -> dict:
        return {**super().state_dict(), "bank": self.bank,
                "head": None if self.head is None else self.head.state_dict(),
                "head_optimizer": None if self.head is None else self.head_optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.bank = state["bank"]
        if state["head"] is not None:
            self._build_head(self.bank.shape[1])
            self.head.load_state_dict(state["head"])
            self.head_optimizer.load_state_dict(state["head_optimizer"])
